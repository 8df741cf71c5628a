// GET /openapi.json (the OpenAPI document, compiled in) and GET / (a redirect
// to the dashboard). Public: neither holds data. Both answer from memory on
// the I/O thread: nothing blocks.
#include "api/handlers.h"
#include "api/openapi_document.h"

namespace triggers::api {

void GetOpenApi(Context&, const Call&, Respond respond) {
  Response r;
  r.status = 200;
  r.body = OpenApiJson();
  r.headers.emplace_back("Cache-Control", "no-cache");
  respond(std::move(r));
}

// 302, not 301/308: a browser must not remember it, so that `/` may serve
// something else in a later version.
void GetRoot(Context&, const Call&, Respond respond) {
  Response r;
  r.status = 302;
  r.content_type = "text/plain; charset=utf-8";
  r.body = "The dashboard is at /ui\n";
  r.headers.emplace_back("Location", "/ui");
  respond(std::move(r));
}

}  // namespace triggers::api
