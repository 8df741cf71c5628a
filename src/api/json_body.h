// Parsing request bodies of the management API with Boost.JSON (not a hot
// path): syntax errors become invalid_json with the byte offset, a depth
// limit keeps hostile nesting harmless.
#pragma once

#include <boost/json/value.hpp>
#include <string_view>

#include "triggers/status.h"

namespace triggers::api {

// Parses `body` as a JSON object into `out`.
Status ParseJsonObject(std::string_view body, boost::json::object* out);

// Rejects any member of `obj` not in `allowed` (validation_error naming it).
Status CheckFields(const boost::json::object& obj, std::initializer_list<std::string_view> allowed);

}  // namespace triggers::api
