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

Response Serve(const Call& call, std::string_view name) {
  const UiAsset* asset = FindUiAsset(name);
  if (asset == nullptr) {
    return ErrorResponse(404, "not_found", "no such dashboard file", call.req->request_id);
  }
  Response r;
  r.status = 200;
  r.content_type = asset->content_type;  // static storage: the generated table
  r.body.assign(reinterpret_cast<const char*>(asset->bytes), asset->size);
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
