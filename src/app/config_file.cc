#include "app/config_file.h"

#include <toml++/toml.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

namespace triggers::app {
namespace {

// What a TOML value must be for an option, from CLI11's type name.
enum class Kind { kText, kInt, kFloat, kBool };

Kind KindOf(const CLI::Option& o) {
  if (o.get_expected_max() == 0) return Kind::kBool;  // a flag: --allow-private-destinations
  std::string t = o.get_type_name();
  auto starts = [&t](std::string_view p) { return t.compare(0, p.size(), p) == 0; };
  if (starts("INT") || starts("UINT")) return Kind::kInt;
  if (starts("FLOAT")) return Kind::kFloat;
  if (starts("BOOLEAN")) return Kind::kBool;
  return Kind::kText;
}

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kInt:
      return "an integer";
    case Kind::kFloat:
      return "a number";
    case Kind::kBool:
      return "true or false";
    case Kind::kText:
      break;
  }
  return "a string (in quotes)";
}

std::string KeyOf(const CLI::Option& o) { return o.get_lnames().empty() ? "" : o.get_lnames()[0]; }

bool IsKey(const CLI::Option& o) {
  std::string k = KeyOf(o);
  return !k.empty() && k != "help" && k != "help-all" && k != "config";
}

const CLI::Option* FindKey(const CLI::App& serve, const std::string& key) {
  for (const CLI::Option* o : serve.get_options()) {
    if (IsKey(*o) && KeyOf(*o) == key) return o;
  }
  return nullptr;
}

std::string FormatDouble(double d) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(d);
}

// The CLI11 argument for one TOML scalar, or false when its type is not `kind`.
bool ScalarArg(const toml::node& n, Kind kind, std::string* out) {
  switch (kind) {
    case Kind::kText:
      if (!n.is_string()) return false;
      *out = *n.value<std::string>();
      return true;
    case Kind::kInt:
      if (!n.is_integer()) return false;
      *out = std::to_string(*n.value<int64_t>());
      return true;
    case Kind::kFloat:
      if (n.is_integer()) {
        *out = std::to_string(*n.value<int64_t>());
        return true;
      }
      if (!n.is_floating_point()) return false;
      *out = FormatDouble(*n.value<double>());
      return true;
    case Kind::kBool:
      if (!n.is_boolean()) return false;
      *out = *n.value<bool>() ? "true" : "false";
      return true;
  }
  return false;
}

std::string At(const std::string& path, int64_t line) {
  return path + " line " + std::to_string(line);
}

Status ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::Validation("cannot read the config file " + path + ": " + std::strerror(errno));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return Status::Ok();
}

// Sets `o` from the TOML value `n` unless a flag or the environment set it.
Status ApplyKey(CLI::Option* o, const toml::node& n, const std::string& where,
                const std::string& key) {
  Kind kind = KindOf(*o);
  std::vector<std::string> args;
  std::string arg;
  if (const toml::array* arr = n.as_array(); arr && o->get_expected_max() > 1) {
    for (const toml::node& e : *arr) {
      if (!ScalarArg(e, kind, &arg)) {
        return Status::Validation(where + ": key '" + key + "' takes a list of " + KindName(kind));
      }
      args.push_back(arg);
    }
  } else if (ScalarArg(n, kind, &arg)) {
    args.push_back(arg);
  } else {
    return Status::Validation(where + ": key '" + key + "' must be " + KindName(kind));
  }
  try {
    o->clear();
    o->add_result(args);
    o->run_callback();
  } catch (const CLI::Error& e) {
    return Status::Validation(where + ": key '" + key + "': " + e.what());
  }
  return Status::Ok();
}

std::string TomlString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// True for an option whose value is a credential: a dash-separated word of
// its name is key, token, secret or password (rate-limit-per-key is a number).
bool IsSecretOption(const std::string& key, Kind kind) {
  if (kind != Kind::kText) return false;
  std::string padded = "-" + key + "-";
  for (const char* w : {"-key-", "-token-", "-secret-", "-password-"}) {
    if (padded.find(w) != std::string::npos) return true;
  }
  return false;
}

// The effective value of `o` as a TOML value.
std::string TomlValue(const CLI::Option& o, Kind kind) {
  if (kind == Kind::kBool) {
    if (o.count() == 0) {
      std::string d = o.get_default_str();
      return d == "true" || d == "1" ? "true" : "false";
    }
    return o.as<bool>() ? "true" : "false";
  }
  std::vector<std::string> vals;
  if (o.count() > 0) {
    vals = o.results();
  } else {
    vals.push_back(o.get_default_str());
  }
  std::string key = KeyOf(o);
  for (std::string& v : vals) {
    if (IsSecretOption(key, kind) && !v.empty()) v = "********";
    if (kind == Kind::kText) v = TomlString(key.find("url") != std::string::npos ? MaskUrl(v) : v);
  }
  if (o.get_expected_max() > 1) {
    std::string out = "[";
    for (size_t i = 0; i < vals.size(); ++i) out += (i ? ", " : "") + vals[i];
    return out + "]";
  }
  return vals.empty() ? "\"\"" : vals.back();
}

std::string OriginComment(const CLI::Option& o, const ConfigSources& src) {
  std::string key = KeyOf(o);
  auto it = src.origin.find(key);
  Origin origin = it == src.origin.end() ? Origin::kDefault : it->second;
  switch (origin) {
    case Origin::kFlag:
      return "flag --" + key;
    case Origin::kEnv:
      return "environment " + o.get_envname();
    case Origin::kFile:
      return "file " + At(src.path, src.line.at(key));
    case Origin::kDefault:
      break;
  }
  return "default";
}

}  // namespace

std::vector<std::string> ConfigKeys(const CLI::App& serve) {
  std::vector<std::string> keys;
  for (const CLI::Option* o : serve.get_options()) {
    if (IsKey(*o)) keys.push_back(KeyOf(*o));
  }
  return keys;
}

ConfigSources ParsedOrigins(const CLI::App& serve, const std::vector<std::string>& args) {
  ConfigSources src;
  for (const CLI::Option* o : serve.get_options()) {
    if (!IsKey(*o)) continue;
    std::string key = KeyOf(*o);
    Origin origin = Origin::kDefault;
    if (o->count() > 0) {
      // CLI11 reads the environment only for an option the command line left
      // unset, so a set option not on the command line came from there.
      origin = Origin::kEnv;
      std::string flag = "--" + key;
      for (const std::string& a : args) {
        if (a == "--") break;
        if (a == flag || a.compare(0, flag.size() + 1, flag + "=") == 0) origin = Origin::kFlag;
      }
    }
    src.origin[key] = origin;
  }
  return src;
}

Status ApplyConfigFile(CLI::App* serve, const std::string& path, ConfigSources* src) {
  src->path = path;
  std::string text;
  if (Status s = ReadFile(path, &text); !s.ok()) return s;
  toml::table table;
  try {
    table = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    return Status::Validation(At(path, e.source().begin.line) + ": " +
                              std::string(e.description()));
  }
  for (auto&& [k, node] : table) {
    std::string key(k.str());
    std::string where = At(path, k.source().begin.line);
    CLI::Option* o = const_cast<CLI::Option*>(FindKey(*serve, key));
    if (!o) {
      return Status::Validation(
          where + ": unknown key '" + key + "'" +
          (node.is_table() ? " (the file is flat: no [sections])" : "") +
          "; the keys are the long flags of `triggers serve` without the dashes, e.g. data-dir");
    }
    src->line[key] = k.source().begin.line;
    Origin& origin = src->origin[key];
    // A value the flag or the environment overrides must be valid too: it is
    // checked by applying it, then the winning value is put back.
    std::vector<std::string> winner = o->results();
    if (Status s = ApplyKey(o, node, where, key); !s.ok()) return s;
    if (origin == Origin::kFlag || origin == Origin::kEnv) {
      o->clear();
      o->add_result(winner);
      o->run_callback();
      continue;
    }
    origin = Origin::kFile;
  }
  return Status::Ok();
}

std::string LocateError(const std::string& message, const CLI::App& serve,
                        const ConfigSources& src) {
  for (size_t pos = message.find("--"); pos != std::string::npos;
       pos = message.find("--", pos + 2)) {
    size_t end = pos + 2;
    while (end < message.size() &&
           (std::isalnum(static_cast<unsigned char>(message[end])) || message[end] == '-')) {
      ++end;
    }
    std::string key = message.substr(pos + 2, end - pos - 2);
    auto it = src.origin.find(key);
    if (it == src.origin.end()) continue;
    if (it->second == Origin::kFile) {
      return At(src.path, src.line.at(key)) + ": key '" + key + "': " + message;
    }
    if (it->second == Origin::kEnv) {
      const CLI::Option* o = FindKey(serve, key);
      return message + " (from the environment: " + (o ? o->get_envname() : key) + ")";
    }
    return message;
  }
  return message;
}

std::string ShowConfig(const CLI::App& serve, const ConfigSources& src) {
  std::string out =
      "# The effective configuration of `triggers serve` (flags, then TRIGGERS_* environment,\n"
      "# then the config file, then defaults). Secrets are masked.\n";
  for (const CLI::Option* o : serve.get_options()) {
    if (!IsKey(*o)) continue;
    out += "\n# " + o->get_description() + "\n";
    out += KeyOf(*o) + " = " + TomlValue(*o, KindOf(*o)) + "  # " + OriginComment(*o, src) + "\n";
  }
  return out;
}

std::string MaskUrl(const std::string& url) {
  std::string out = url;
  size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    size_t start = scheme + 3;
    size_t at = out.find('@', start);
    size_t slash = out.find('/', start);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "****");
    }
  }
  // password=... in a query string or a key=value connection string
  for (size_t p = out.find("password="); p != std::string::npos; p = out.find("password=", p + 1)) {
    size_t v = p + 9;
    size_t end = out.find_first_of("& ", v);
    if (end == std::string::npos) end = out.size();
    out.replace(v, end - v, "****");
  }
  return out;
}

}  // namespace triggers::app
