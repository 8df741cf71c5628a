// The composition root of `triggers serve` and of the offline key commands.
#pragma once

#include <string>

#include "app/config.h"

namespace triggers::app {

// Runs the server until SIGTERM/SIGINT. Returns the process exit code.
int RunServe(Config& config);

struct KeysArgs {
  std::string tenant;
  std::string scopes;
  std::string name;
  std::string key_id;
  std::string kind = "api";  // api | aws
};
int RunKeysCreate(Config& config, const KeysArgs& args);
int RunKeysList(Config& config, const KeysArgs& args);
int RunKeysRevoke(Config& config, const KeysArgs& args);

// `triggers tail`: prints the tenant's events as they are committed.
struct TailArgs {
  std::string url = "http://127.0.0.1:8080";
  std::string key;
  std::string type;  // a type glob; empty = every type
};
int RunTail(const TailArgs& args);

}  // namespace triggers::app
