// The schema migrations of each store, as .sql files (src/store/sqlite/migrations,
// src/store/postgres/migrations) compiled into the binary by cmake/embed_sql.cmake.
// File i (in name order, 0001_... first) brings the schema to version i; a store
// applies the ones past its recorded version at start, in one transaction.
#pragma once

#include <cstddef>

namespace triggers::store {

struct Migration {
  const char* name;  // the file name, e.g. "0005_generations.sql"
  const char* sql;   // one or more statements
};

extern const Migration kSqliteMigrations[];
extern const size_t kSqliteMigrationsCount;
extern const Migration kPostgresMigrations[];
extern const size_t kPostgresMigrationsCount;

}  // namespace triggers::store
