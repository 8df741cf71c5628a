// The OpenAPI 3.1 document of the HTTP API (docs/openapi.yaml), converted to
// JSON and compiled into the binary at build time by cmake/embed_openapi.py:
// GET /openapi.json serves it from memory, nothing is read at run time.
#pragma once

#include <string_view>

namespace triggers::api {

// The document as compact JSON (UTF-8). Static storage.
std::string_view OpenApiJson();

}  // namespace triggers::api
