// triggers: the command line. `serve`, `keys create|list|revoke`, `migrate-store`, `tail`,
// `config check|show`, `version`, `help [command]`. Usage errors exit 2.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "app/config_file.h"
#include "app/migrate_store.h"
#include "app/serve.h"
#include "triggers/version.h"

using triggers::Status;

namespace {

std::string EnvName(const std::string& flag) {
  std::string env = "TRIGGERS_";
  for (char c : flag) env += c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return env;
}

// Adds --flag with its TRIGGERS_FLAG environment fallback.
template <typename T>
CLI::Option* Flag(CLI::App* app, const std::string& name, T& var, const std::string& help) {
  return app->add_option("--" + name, var, help)->envname(EnvName(name))->capture_default_str();
}

// Every flag of `serve` reads TRIGGERS_<FLAG> (SPEC 1), also one added
// without Flag(): --allow-private-destinations <- TRIGGERS_ALLOW_PRIVATE_DESTINATIONS.
void EnvForEveryFlag(CLI::App* serve) {
  for (CLI::Option* o : serve->get_options()) {
    if (o->get_lnames().empty() || o->get_lnames()[0] == "help") continue;
    if (o->get_envname().empty()) o->envname(EnvName(o->get_lnames()[0]));
  }
}

void StoreFlags(CLI::App* app, triggers::app::Config& c) {
  Flag(app, "data-dir", c.data_dir, "directory of the embedded store");
  Flag(app, "store", c.store, "sqlite (embedded) or postgres");
  Flag(app, "postgres-url", c.postgres_url, "postgresql://... when --store postgres");
  Flag(app, "postgres-pool", c.postgres_pool, "connections to PostgreSQL per node");
}

// `triggers help [command...]`: the help of the whole tree, or of one command.
int PrintHelp(CLI::App& app, const std::vector<std::string>& topic) {
  if (topic.empty()) {
    std::printf("%s",
                app.get_formatter()->make_help(&app, "triggers", CLI::AppFormatMode::All).c_str());
    return 0;
  }
  CLI::App* target = &app;
  std::string prefix = "triggers";
  for (const std::string& name : topic) {
    CLI::App* sub = nullptr;
    for (CLI::App* s : target->get_subcommands({})) {
      if (s->get_name() == name) sub = s;
    }
    if (!sub) {
      std::fprintf(stderr, "triggers help: no command '%s %s'; see triggers help\n", prefix.c_str(),
                   name.c_str());
      return 2;
    }
    target = sub;
    prefix += " " + name;
  }
  std::printf("%s", target->help(prefix.substr(0, prefix.rfind(' '))).c_str());
  return 0;
}

// Applies --config (when given) under the flags and the environment; false,
// with the error printed, on a bad file.
bool LoadConfig(CLI::App* serve, triggers::app::Config&, const std::string& path,
                triggers::app::ConfigSources* sources) {
  if (path.empty()) return true;
  if (Status s = triggers::app::ApplyConfigFile(serve, path, sources); !s.ok()) {
    std::fprintf(stderr, "triggers: %s\n", s.message().c_str());
    return false;
  }
  return true;
}

// `triggers config check --config PATH`: the file alone (no flags, no environment).
int CheckConfig(CLI::App* serve, triggers::app::Config& cfg, const std::string& path) {
  serve->clear();  // CLI11 read the environment into it: the file alone counts here
  cfg = triggers::app::Config{};
  triggers::app::ConfigSources sources;
  if (!LoadConfig(serve, cfg, path, &sources)) return 2;
  if (Status s = cfg.Validate(); !s.ok()) {
    std::string msg = triggers::app::LocateError(s.message(), *serve, sources);
    std::fprintf(stderr, "triggers: %s\n", msg.c_str());
    return 2;
  }
  std::printf("%s: ok (%zu keys set)\n", path.c_str(), sources.line.size());
  return 0;
}

// CLI11 answers an unknown command word with "A subcommand is required":
// name the word and the commands that exist there instead. True when the
// command line starts with such a word (the message is printed).
bool UnknownCommand(const CLI::App& app, int argc, char** argv) {
  const CLI::App* at = &app;
  std::string path = "triggers";
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word.empty() || word[0] == '-' || at->get_require_subcommand_min() == 0) return false;
    const CLI::App* next = nullptr;
    std::string names;
    for (const CLI::App* sub : at->get_subcommands(nullptr)) {
      if (sub->check_name(word)) next = sub;
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (next == nullptr) {
      std::fprintf(stderr, "%s: unknown command '%s' (commands: %s)\n", path.c_str(), word.c_str(),
                   names.c_str());
      return true;
    }
    path += " " + word;
    at = next;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  triggers::app::Config cfg;
  triggers::app::KeysArgs keys;
  CLI::App app{"triggers: event ingestion and delivery service"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "help for every subcommand");
  app.set_version_flag("--version", "triggers " TRIGGERS_VERSION);

  CLI::App* serve = app.add_subcommand("serve", "run the HTTP API and the delivery workers");
  std::string config_path;
  serve
      ->add_option("--config", config_path,
                   "TOML file of settings: each key a flag's long name, e.g. data-dir = \"/srv\" "
                   "(flags and TRIGGERS_* variables win over it)")
      ->envname("TRIGGERS_CONFIG");
  StoreFlags(serve, cfg);
  Flag(serve, "listen", cfg.listen, "host:port to listen on (port 0: any free port)");
  Flag(serve, "threads", cfg.threads, "I/O threads (0: one per core)");
  Flag(serve, "max-body", cfg.max_body, "largest request body (bytes, KiB, MiB)");
  Flag(serve, "max-connections", cfg.max_connections, "open connections at most");
  Flag(serve, "retention", cfg.retention, "delete events older than this");
  Flag(serve, "purge-interval", cfg.purge_interval, "how often the retention purge runs");
  Flag(serve, "rate-limit-per-key", cfg.rate_limit_per_key, "requests per second per key (0: off)");
  Flag(serve, "cors-origins", cfg.cors_origins, "allowed CORS origins, comma-separated, or *");
  Flag(serve, "log-level", cfg.log_level, "debug, info, warn or error");
  Flag(serve, "request-timeout", cfg.request_timeout, "time allowed to send one request");
  Flag(serve, "idle-timeout", cfg.idle_timeout, "keep-alive idle time before closing");
  Flag(serve, "delivery-timeout", cfg.delivery_timeout, "time allowed for one webhook attempt");
  Flag(serve, "retry-schedule", cfg.retry_schedule, "delays between attempts, e.g. 1s,2s,5s");
  Flag(serve, "delivery-max-in-flight", cfg.delivery_max_in_flight,
       "webhook attempts (and connections) at once, all tenants");
  Flag(serve, "delivery-max-in-flight-per-tenant", cfg.delivery_max_in_flight_per_tenant,
       "webhook attempts at once for one tenant");
  Flag(serve, "max-subscriptions-per-tenant", cfg.max_subscriptions_per_tenant,
       "subscriptions one tenant may have (all nodes together)");
  Flag(serve, "max-filter-size", cfg.max_filter_size,
       "largest subscription filter, as JSON (bytes, KiB)");
  Flag(serve, "max-parked-receives-per-tenant", cfg.max_parked_receives_per_tenant,
       "long-poll receives one tenant may have waiting, per node");
  Flag(serve, "max-streams-per-tenant", cfg.max_streams_per_tenant,
       "live tails (GET /v1/events/stream) one tenant may have open, per node");
  serve
      ->add_flag("--allow-private-destinations", cfg.allow_private_destinations,
                 "allow webhook URLs on loopback/private/link-local addresses (development, tests)")
      ->envname("TRIGGERS_ALLOW_PRIVATE_DESTINATIONS");
  serve
      ->add_flag("--metrics-require-admin", cfg.metrics_require_admin,
                 "serve /metrics to the admin key only")
      ->envname("TRIGGERS_METRICS_REQUIRE_ADMIN");

  EnvForEveryFlag(serve);

  CLI::App* keys_cmd = app.add_subcommand("keys", "manage API keys offline, on the store");
  keys_cmd->require_subcommand(1);
  CLI::App* kc = keys_cmd->add_subcommand("create", "create a key and print it");
  StoreFlags(kc, cfg);
  kc->add_option("--tenant", keys.tenant, "tenant name")->required();
  kc->add_option("--scopes", keys.scopes, "ingest,read,consume,manage")->required();
  kc->add_option("--name", keys.name, "a label for the key");
  kc->add_option("--kind", keys.kind, "api (a trg_ key) or aws (an access key id and secret)")
      ->check(CLI::IsMember({"api", "aws"}));
  CLI::App* kl = keys_cmd->add_subcommand("list", "list keys");
  StoreFlags(kl, cfg);
  kl->add_option("--tenant", keys.tenant, "only this tenant");
  CLI::App* kr = keys_cmd->add_subcommand("revoke", "revoke a key");
  StoreFlags(kr, cfg);
  kr->add_option("key_id", keys.key_id, "key_...")->required();

  CLI::App* mig = app.add_subcommand(
      "migrate-store",
      "copy everything from the embedded SQLite store into an empty PostgreSQL database (stop "
      "the server first)");
  Flag(mig, "data-dir", cfg.data_dir, "directory of the embedded store (the source)");
  Flag(mig, "postgres-url", cfg.postgres_url, "postgresql://... of the target (required)");
  mig->footer(
      "Stop `triggers serve` first: a store open in another process is refused. The SQLite store "
      "is read, never changed; the copy is one PostgreSQL transaction (all or nothing) into a "
      "database without Triggers data (its schema is created if missing). Then serve with "
      "--store postgres, the same --postgres-url and the same --data-dir (admin.key stays "
      "valid). Exit status: 0 copied, 1 failed (nothing copied), 2 bad flags.");

  triggers::app::TailArgs tail;
  CLI::App* tail_cmd = app.add_subcommand(
      "tail", "print the events of a key's tenant as they arrive (one JSON per line)");
  Flag(tail_cmd, "url", tail.url, "base URL of a triggers server");
  Flag(tail_cmd, "key", tail.key, "an API key with the read scope (better: TRIGGERS_KEY)");
  Flag(tail_cmd, "type", tail.type, "only event types matching this glob, e.g. order.*");

  CLI::App* config_cmd =
      app.add_subcommand("config", "check or show the configuration of `triggers serve`");
  config_cmd->require_subcommand(1);
  std::string check_path;
  CLI::App* check = config_cmd->add_subcommand(
      "check", "validate a config file as `triggers serve --config` would (exit 0, or 2 and why)");
  check->add_option("--config", check_path, "the TOML file")->required();
  CLI::App* show = config_cmd->add_subcommand(
      "show", "print the effective configuration of `triggers serve` as TOML, secrets masked");
  show->allow_extras();
  show->footer("Takes --config and every flag of `triggers serve`; reads TRIGGERS_* too.");

  CLI::App* version = app.add_subcommand("version", "print the version");
  std::vector<std::string> help_topic;
  CLI::App* help = app.add_subcommand("help", "print the help of every command, or of one");
  help->add_option("command", help_topic, "a command, e.g. keys, or keys create");

  if (UnknownCommand(app, argc, argv)) return 2;
  try {
    app.parse(argc, argv);
    if (*show) {
      // Parsed as serve's flags, so that every one of them is accepted here.
      // CLI11 read the environment into serve's options already (it does so
      // for unselected subcommands too): start from a clean slate.
      serve->clear();
      cfg = triggers::app::Config{};
      std::vector<std::string> rest = show->remaining_for_passthrough();
      serve->parse(rest);
    }
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // CLI11's own codes (106, 109...) are usage errors
  }
  if (*help) return PrintHelp(app, help_topic);
  if (*version) {
    std::printf("triggers %s\n", TRIGGERS_VERSION);
    return 0;
  }
  if (*check) return CheckConfig(serve, cfg, check_path);
  if (*serve || *show) {
    std::vector<std::string> args(argv + 1, argv + argc);
    auto sources = triggers::app::ParsedOrigins(*serve, args);
    if (!LoadConfig(serve, cfg, config_path, &sources)) return 2;
    Status valid = cfg.Validate();
    if (*show) std::printf("%s", triggers::app::ShowConfig(*serve, sources).c_str());
    if (!valid.ok()) {
      std::string msg = triggers::app::LocateError(valid.message(), *serve, sources);
      std::fprintf(stderr, "triggers: %s\n", msg.c_str());
      return 2;
    }
    if (*show) return 0;
    return triggers::app::RunServe(cfg);
  }
  if (*tail_cmd) return triggers::app::RunTail(tail);
  if (*kc) return triggers::app::RunKeysCreate(cfg, keys);
  if (*kl) return triggers::app::RunKeysList(cfg, keys);
  if (*kr) return triggers::app::RunKeysRevoke(cfg, keys);
  if (*mig) return triggers::app::RunMigrateStore(cfg);
  return 2;
}
