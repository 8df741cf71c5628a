// The `--config` file of `triggers serve` (TOML, flat): its keys are the long
// names of serve's flags without the dashes, e.g. `data-dir = "/var/lib/triggers"`.
// The key set is read from the CLI11 definitions of `serve`, so every flag is a
// key with nothing to register. Precedence: flags, then TRIGGERS_* environment,
// then the file, then the defaults: the file only sets an option that neither
// the command line nor the environment set.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "triggers/status.h"

namespace CLI {
class App;
}

namespace triggers::app {

enum class Origin { kDefault, kFile, kEnv, kFlag };

// Where each option of `serve` got its value, by key (long name without dashes).
struct ConfigSources {
  std::string path;  // the config file; empty when none
  std::map<std::string, Origin> origin;
  std::map<std::string, int64_t> line;  // line in the file of each key it holds (1-based)
};

// The options of `serve` that are config keys, in definition order: every
// option with a long name except --help and --config.
std::vector<std::string> ConfigKeys(const CLI::App& serve);

// After CLI11 parsed `serve` from `args` (the arguments after the subcommand)
// and the environment: records for each key whether a flag, the environment
// or nothing set it.
ConfigSources ParsedOrigins(const CLI::App& serve, const std::vector<std::string>& args);

// Reads the TOML file `path` and sets each option the file holds that neither
// a flag nor the environment set (running the option's own conversion and
// checks). A validation error naming the file, the line and the key on an
// unreadable file, a TOML syntax error, an unknown key, a value of the wrong
// type, or a value the option refuses. Options set earlier stay as they are.
Status ApplyConfigFile(CLI::App* serve, const std::string& path, ConfigSources* sources);

// Names where the value came from in an error message of Config::Validate
// ("--retention: ..."): prefixed with the file and line when the key came
// from the file, suffixed with the variable when from the environment.
std::string LocateError(const std::string& message, const CLI::App& serve,
                        const ConfigSources& sources);

// The effective configuration as a TOML document accepted by --config: every
// key, its description and where its value came from as comments; passwords
// in URLs and values of key/token/secret/password options masked.
std::string ShowConfig(const CLI::App& serve, const ConfigSources& sources);

// A URL with the password of its userinfo and any password= parameter masked.
std::string MaskUrl(const std::string& url);

}  // namespace triggers::app
