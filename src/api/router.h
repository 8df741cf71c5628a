// The route table: one declarative list of every route (method, pattern,
// scope, handler), and the dispatch that applies, in order: CORS preflight,
// route match (404/405), shutdown (503), authentication (401), rate limit
// (429), scope (403), media type (415), then the handler: async handlers run
// on the calling I/O thread and must not block; sync handlers run on the
// blocking pool.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

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

// One row of the route table, for checks of the API's description
// (tests/unit/api/openapi_test.cc compares it with docs/openapi.yaml).
struct RouteInfo {
  std::string_view method;   // "GET", "POST", ...
  std::string_view pattern;  // "/v1/events/{id}"
  std::string_view access;   // "public", "public or admin", "tenant", "tenant or admin"
  std::string_view scope;    // "ingest", "read", "consume", "manage"; empty when public
};

// Every route, in the order the router tries them. Static storage.
std::vector<RouteInfo> RouteTable();

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
