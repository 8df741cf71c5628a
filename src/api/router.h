// The route table: one declarative list of every route (method, pattern,
// scope, handler), and the dispatch that applies, in order: CORS preflight,
// route match (404/405), shutdown (503), authentication (401), rate limit
// (429), scope (403), media type (415), then the handler: async handlers run
// on the calling I/O thread and must not block; sync handlers run on the
// blocking pool.
#pragma once

#include <memory>
#include <string_view>

#include "api/auth.h"
#include "api/context.h"
#include "api/http_types.h"

namespace triggers::api {

// What a handler sees of one request.
struct Call {
  const Request* req = nullptr;
  std::shared_ptr<const Principal> who;  // never null once routed
  std::string_view param;                // the {id} of the pattern, if any
  std::string_view route;
};

using SyncHandler = Response (*)(Context& ctx, const Call& call);
using AsyncHandler = void (*)(Context& ctx, const Call& call, Respond respond);

class Router {
 public:
  explicit Router(Context* ctx) : ctx_(ctx) {}
  // `req` must stay valid until `respond` has been called.
  void Handle(const Request& req, Respond respond);

 private:
  void Authorized(const Request& req, Call call, int route_index, Respond respond);
  Context* ctx_;
};

}  // namespace triggers::api
