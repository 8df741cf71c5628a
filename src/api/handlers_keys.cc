// POST /v1/keys, GET /v1/keys, DELETE /v1/keys/{id} (SPEC section 3).
#include <boost/json/serialize.hpp>

#include "api/handlers.h"
#include "api/json_body.h"
#include "aws/credentials.h"
#include "core/crypto.h"
#include "core/cursor.h"
#include "core/ids.h"
#include "core/keys.h"
#include "core/time_util.h"

namespace triggers::api {
namespace json = boost::json;
namespace {

json::object KeyJson(const ApiKey& k) {
  json::object o;
  o["id"] = k.id;
  o["tenant"] = k.tenant;
  json::array scopes;
  for (auto& s : core::ScopeNames(k.scopes)) scopes.emplace_back(s);
  o["scopes"] = std::move(scopes);
  o["name"] = k.name ? json::value(*k.name) : json::value(nullptr);
  o["created_at"] = core::FormatTimeMs(k.created_at_ms);
  o["revoked_at"] =
      k.revoked_at_ms ? json::value(core::FormatTimeMs(*k.revoked_at_ms)) : json::value(nullptr);
  if (!k.access_key_id.empty()) {  // only AWS keys say so (trg_ keys keep their shape)
    o["kind"] = "aws";
    o["access_key_id"] = k.access_key_id;
  }
  return o;
}

Response JsonResponse(int status, const json::value& v) {
  Response r;
  r.status = status;
  r.body = json::serialize(v);
  return r;
}

}  // namespace

Response PostKey(Context& ctx, const Call& call) {
  const std::string& rid = call.req->request_id;
  json::object body;
  if (Status s = ParseJsonObject(call.req->body, &body); !s.ok()) return StatusResponse(s, rid);
  if (Status s = CheckFields(body, {"tenant", "scopes", "name", "kind"}); !s.ok()) {
    return StatusResponse(s, rid);
  }
  ApiKey key;
  const json::value* tenant = body.if_contains("tenant");
  if (tenant && !tenant->is_null()) {
    if (!tenant->is_string() || !core::IsValidTenant(tenant->as_string())) {
      return StatusResponse(Status::Validation("tenant must match [a-z0-9_-]{1,64}"), rid);
    }
    key.tenant = tenant->as_string();
  }
  if (call.who->admin) {
    if (key.tenant.empty()) return StatusResponse(Status::Validation("tenant is required"), rid);
  } else if (key.tenant.empty()) {
    key.tenant = call.who->tenant;
  } else if (key.tenant != call.who->tenant) {
    return ErrorResponse(403, "forbidden", "a manage key can create keys only for its own tenant",
                         rid);
  }
  const json::value* scopes = body.if_contains("scopes");
  if (!scopes || !scopes->is_array() || scopes->as_array().empty()) {
    return StatusResponse(
        Status::Validation("scopes must be a non-empty array of ingest, read, consume, manage"),
        rid);
  }
  for (const auto& s : scopes->as_array()) {
    std::optional<uint32_t> bit;
    if (s.is_string()) bit = core::ScopeFromName(s.as_string());
    if (!bit) {
      return StatusResponse(
          Status::Validation("scopes: each entry must be one of ingest, read, consume, manage"),
          rid);
    }
    key.scopes |= *bit;
  }
  if (const json::value* name = body.if_contains("name"); name && !name->is_null()) {
    if (!name->is_string() || name->as_string().size() > 128 ||
        std::string_view(name->as_string()).find('\0') != std::string_view::npos) {
      return StatusResponse(
          Status::Validation("name must be a string of at most 128 characters, without NUL"), rid);
    }
    key.name = std::string(name->as_string());
  }
  bool aws = false;
  if (const json::value* kind = body.if_contains("kind"); kind && !kind->is_null()) {
    if (!kind->is_string() || (kind->as_string() != "api" && kind->as_string() != "aws")) {
      return StatusResponse(Status::Validation("kind must be \"api\" or \"aws\""), rid);
    }
    aws = kind->as_string() == "aws";
  }
  if (aws && (!ctx.aws_box || !ctx.aws_box->loaded())) {
    return ErrorResponse(503, "unavailable", "the AWS server key is not loaded", rid);
  }
  std::string plain = aws ? aws::MakeAwsCredentials(*ctx.aws_box, &key) : core::GenerateApiKey();
  if (plain.empty()) return ErrorResponse(500, "internal", "could not seal the secret", rid);
  if (!aws) key.hash = core::Sha256(plain);
  key.created_at_ms = ctx.clock->NowMs();
  key.id = core::NewId("key_", key.created_at_ms);
  if (Status s = ctx.store->CreateKey(key); !s.ok()) return StatusResponse(s, rid);
  ctx.keys->Insert(key);
  json::object o = KeyJson(key);
  // The only time the plain key (or secret) is shown.
  if (aws) {
    o["secret_access_key"] = plain;
  } else {
    o["key"] = plain;
  }
  return JsonResponse(201, o);
}

Response ListKeys(Context& ctx, const Call& call) {
  const std::string& rid = call.req->request_id;
  store::ListOptions opts;
  if (Status s = ParseListParams(call.req->query, "key_", &opts.limit, &opts.after_id); !s.ok()) {
    return StatusResponse(s, rid);
  }
  std::string tenant = call.who->tenant;
  if (call.who->admin) {
    tenant = QueryParam(call.req->query, "tenant").value_or("");
    if (!tenant.empty() && !core::IsValidTenant(tenant)) {
      return StatusResponse(Status::Validation("tenant must match [a-z0-9_-]{1,64}"), rid);
    }
  }
  const int limit = opts.limit;
  opts.limit = limit + 1;
  auto r = ctx.store->ListKeys(tenant, opts);
  if (!r.ok()) return StatusResponse(r.status(), rid);
  auto& keys = r.value();
  bool more = static_cast<int>(keys.size()) > limit;
  if (more) keys.resize(static_cast<size_t>(limit));
  json::array data;
  for (const auto& k : keys) data.emplace_back(KeyJson(k));
  json::object o;
  o["data"] = std::move(data);
  o["next_cursor"] = more ? json::value(core::EncodeCursor(keys.back().id)) : json::value(nullptr);
  return JsonResponse(200, o);
}

Response DeleteKey(Context& ctx, const Call& call) {
  const std::string& rid = call.req->request_id;
  if (!core::IsValidId(call.param, "key_"))
    return ErrorResponse(404, "not_found", "key not found", rid);
  auto r = ctx.store->RevokeKey(call.who->admin ? "" : call.who->tenant, std::string(call.param),
                                ctx.clock->NowMs());
  if (!r.ok()) {
    if (r.status().IsNotFound()) return ErrorResponse(404, "not_found", "key not found", rid);
    return StatusResponse(r.status(), rid);
  }
  ctx.keys->MarkRevoked(r.value());
  Response resp;
  resp.status = 204;
  return resp;
}

}  // namespace triggers::api
