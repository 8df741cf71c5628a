// triggers: the command line. `serve`, `keys create|list|revoke`, `migrate-store`, `version`,
// `help`.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "app/migrate_store.h"
#include "app/serve.h"
#include "triggers/version.h"

namespace {

// Adds --flag with its TRIGGERS_FLAG environment fallback.
template <typename T>
CLI::Option* Flag(CLI::App* app, const std::string& name, T& var, const std::string& help) {
  std::string env = "TRIGGERS_";
  for (char c : name) env += c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return app->add_option("--" + name, var, help)->envname(env)->capture_default_str();
}

void StoreFlags(CLI::App* app, triggers::app::Config& c) {
  Flag(app, "data-dir", c.data_dir, "directory of the embedded store");
  Flag(app, "store", c.store, "sqlite (embedded) or postgres");
  Flag(app, "postgres-url", c.postgres_url, "postgresql://... when --store postgres");
  Flag(app, "postgres-pool", c.postgres_pool, "connections to PostgreSQL per node");
}

}  // namespace

int main(int argc, char** argv) {
  triggers::app::Config cfg;
  triggers::app::KeysArgs keys;
  CLI::App app{"triggers: event ingestion and delivery service"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "help for every subcommand");

  CLI::App* serve = app.add_subcommand("serve", "run the HTTP API and the delivery workers");
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
  serve
      ->add_flag("--allow-private-destinations", cfg.allow_private_destinations,
                 "allow webhook URLs on loopback/private/link-local addresses (development, tests)")
      ->envname("TRIGGERS_ALLOW_PRIVATE_DESTINATIONS");
  serve
      ->add_flag("--metrics-require-admin", cfg.metrics_require_admin,
                 "serve /metrics to the admin key only")
      ->envname("TRIGGERS_METRICS_REQUIRE_ADMIN");

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

  CLI::App* version = app.add_subcommand("version", "print the version");
  CLI::App* help = app.add_subcommand("help", "print this help");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (*help) {
    std::printf("%s",
                app.get_formatter()->make_help(&app, "triggers", CLI::AppFormatMode::All).c_str());
    return 0;
  }
  if (*version) {
    std::printf("triggers %s\n", TRIGGERS_VERSION);
    return 0;
  }
  if (*serve) return triggers::app::RunServe(cfg);
  if (*tail_cmd) return triggers::app::RunTail(tail);
  if (*kc) return triggers::app::RunKeysCreate(cfg, keys);
  if (*kl) return triggers::app::RunKeysList(cfg, keys);
  if (*kr) return triggers::app::RunKeysRevoke(cfg, keys);
  if (*mig) return triggers::app::RunMigrateStore(cfg);
  return 2;
}
