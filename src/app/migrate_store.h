// `triggers migrate-store`: copies every row of the embedded SQLite store
// (<data-dir>/triggers.db) into an empty PostgreSQL database, so a deployment
// can move from one machine to the shared store.
#pragma once

#include "app/config.h"

namespace triggers::app {

// Uses config.data_dir and config.postgres_url. Prints progress and a
// summary on stdout. Returns the exit code: 0 copied and committed; 1 nothing
// was copied (the reason on stderr, one line); 2 a missing flag.
int RunMigrateStore(Config& config);

}  // namespace triggers::app
