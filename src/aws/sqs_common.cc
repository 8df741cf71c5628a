#include "aws/sqs_common.h"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "aws/envelope.h"
#include "core/crypto.h"
#include "core/ids.h"

namespace triggers::aws {
namespace json = boost::json;

std::string QueueUrl(const AwsCall& call, std::string_view name) {
  return call.base_url + std::string(kQueuePathPrefix) + call.who->tenant + "/" + std::string(name);
}

bool ResolveQueue(const AwsCall& call, Queue* out, Error* err) {
  std::string url = StrParam(call.input, "QueueUrl").value_or(std::string(call.req->path));
  *err = {ErrorKind::kQueueDoesNotExist, "The specified queue does not exist."};
  size_t at = url.find(kQueuePathPrefix);
  if (at == std::string::npos) {
    if (!call.input.contains("QueueUrl")) {
      *err = {ErrorKind::kMissingParameter, "The request must contain the parameter QueueUrl."};
    }
    return false;
  }
  std::string_view rest = std::string_view(url).substr(at + kQueuePathPrefix.size());
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return false;
  std::string_view tenant = rest.substr(0, slash), name = rest.substr(slash + 1);
  if (tenant != call.who->tenant || !IsValidQueueName(name)) return false;
  for (const auto& c : call.ctx->subscriptions->TenantList(call.who->tenant)) {
    if (c->sub.kind == "pull" && c->sub.name && *c->sub.name == name) {
      *out = c;
      return true;
    }
  }
  return false;
}

bool IntParam(const json::object& in, std::string_view name, int64_t lo, int64_t hi, int64_t def,
              int64_t* out, Error* err) {
  *out = def;
  const json::value* v = in.if_contains(name);
  if (!v || v->is_null()) return true;
  bool ok = false;
  if (v->is_int64()) {
    *out = v->as_int64(), ok = true;
  } else if (v->is_string()) {
    std::string_view s = v->as_string();
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    ok = ec == std::errc() && p == s.data() + s.size();
  }
  if (ok && *out >= lo && *out <= hi) return true;
  *err = {ErrorKind::kInvalidParameterValue,
          "Value for parameter " + std::string(name) + " is invalid. Reason: it must be between " +
              std::to_string(lo) + " and " + std::to_string(hi) + "."};
  return false;
}

std::optional<std::string> StrParam(const json::object& in, std::string_view name) {
  const json::value* v = in.if_contains(name);
  if (!v || !v->is_string()) return std::nullopt;
  return std::string(v->as_string());
}

std::vector<std::string> StrList(const json::object& in, std::string_view name) {
  std::vector<std::string> out;
  const json::value* v = in.if_contains(name);
  if (!v) return out;
  if (v->is_string()) out.emplace_back(v->as_string());
  if (v->is_array()) {
    for (const auto& e : v->as_array()) {
      if (e.is_string() && out.size() < 64) out.emplace_back(e.as_string());
    }
  }
  return out;
}

bool LooksLikeReceipt(std::string_view r) {
  size_t dot = r.find('.');
  return r.size() <= 128 && dot != std::string_view::npos && dot + 1 < r.size() &&
         core::IsValidId(r.substr(0, dot), "dlv_");
}

std::string Md5Hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &n, EVP_md5(), nullptr);
  return core::Hex(std::string_view(reinterpret_cast<char*>(md), n));
}

namespace {

void AppendLengthPrefixed(std::string& out, std::string_view s) {
  uint32_t n = static_cast<uint32_t>(s.size());
  out += static_cast<char>(n >> 24);
  out += static_cast<char>(n >> 16);
  out += static_cast<char>(n >> 8);
  out += static_cast<char>(n);
  out += s;
}

}  // namespace

std::string Md5OfMessageAttributes(const json::object& attrs) {
  std::vector<std::string> names;
  for (const auto& [k, v] : attrs) names.emplace_back(k);
  std::sort(names.begin(), names.end());
  std::string buf;
  for (const auto& name : names) {
    const json::object* a = attrs.at(name).if_object();
    if (!a) continue;
    std::string type = StrParam(*a, "DataType").value_or("");
    AppendLengthPrefixed(buf, name);
    AppendLengthPrefixed(buf, type);
    if (auto s = StrParam(*a, "StringValue")) {
      buf += static_cast<char>(1);
      AppendLengthPrefixed(buf, *s);
    } else {
      std::string bin;
      core::Base64Decode(StrParam(*a, "BinaryValue").value_or(""), bin);
      buf += static_cast<char>(2);
      AppendLengthPrefixed(buf, bin);
    }
  }
  return Md5Hex(buf);
}

bool BatchEntries(const json::object& in, const json::array** out, Error* err) {
  const json::value* v = in.if_contains("Entries");
  if (!v || !v->is_array() || v->as_array().empty()) {
    *err = {ErrorKind::kEmptyBatch, "There should be at least one entry in the request."};
    return false;
  }
  if (v->as_array().size() > 10) {
    *err = {ErrorKind::kTooManyEntries,
            "Maximum number of entries per request are 10. You have sent " +
                std::to_string(v->as_array().size()) + "."};
    return false;
  }
  std::set<std::string> ids;
  for (const auto& e : v->as_array()) {
    std::string id = e.is_object() ? StrParam(e.as_object(), "Id").value_or("") : "";
    if (!IsValidQueueName(id)) {
      *err = {ErrorKind::kInvalidBatchEntryId,
              "A batch entry id can only contain alphanumeric characters, hyphens and "
              "underscores. It can be at most 80 letters long."};
      return false;
    }
    if (!ids.insert(id).second) {
      *err = {ErrorKind::kBatchEntryIdsNotDistinct, "Id " + id + " repeated."};
      return false;
    }
  }
  *out = &v->as_array();
  return true;
}

json::object FailedEntry(std::string_view id, ErrorKind kind, std::string_view message) {
  json::object o;
  o["Id"] = id;
  o["SenderFault"] = true;
  o["Code"] = CodesOf(kind).sqs_json;
  o["Message"] = message;
  return o;
}

}  // namespace triggers::aws
