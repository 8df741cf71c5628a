// GET /ui and GET /ui/{name}: the operator dashboard (SPEC section 7). Public:
// the page holds no data; it asks for a key and then uses the JSON API. The
// files are compiled in (src/api/ui_assets.h) and served from memory.
#include "api/handlers.h"
#include "api/ui_assets.h"

namespace triggers::api {
namespace {

// Only this node's own files and API: no inline script or style, no framing.
constexpr char kCsp[] =
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'";

// If-None-Match: "*" or a comma-separated list of entity tags (W/ weak
// ones compare equal too, RFC 9110 13.1.2).
bool EtagMatches(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view t = header.substr(0, comma);
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    if (t.size() >= 2 && t.substr(0, 2) == "W/") t.remove_prefix(2);
    if (t == "*" || t == etag) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

Response Serve(const Call& call, std::string_view name) {
  const UiAsset* asset = FindUiAsset(name);
  if (asset == nullptr) {
    return ErrorResponse(404, "not_found", "no such dashboard file", call.req->request_id);
  }
  Response r;
  r.content_type = asset->content_type;  // static storage: the generated table
  if (EtagMatches(call.req->if_none_match, asset->etag)) {
    r.status = 304;  // the browser's copy is current (Cache-Control: no-cache revalidates)
  } else {
    r.status = 200;
    r.body.assign(reinterpret_cast<const char*>(asset->bytes), asset->size);
  }
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("ETag", std::string(asset->etag));
  r.headers.emplace_back("Content-Security-Policy", kCsp);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  return r;
}

}  // namespace

const UiAsset* FindUiAsset(std::string_view name) {
  for (size_t i = 0; i < kUiAssetCount; ++i) {
    if (kUiAssets[i].path == name) return &kUiAssets[i];
  }
  return nullptr;
}

// Served on the I/O thread: the files are in memory, nothing blocks.
void GetUi(Context&, const Call& call, Respond respond) { respond(Serve(call, "index.html")); }

void GetUiAsset(Context&, const Call& call, Respond respond) { respond(Serve(call, call.param)); }

}  // namespace triggers::api
