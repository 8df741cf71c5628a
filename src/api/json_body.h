// Parsing request bodies of the management API (not a hot path): the body is
// checked by the one JSON reader of every body (core/json_reader.h: syntax,
// depth, duplicate keys), then Boost.JSON builds the DOM.
#pragma once

#include <boost/json/value.hpp>
#include <string_view>

#include "triggers/status.h"

namespace triggers::api {

// Parses `body` as a JSON object into `out`. InvalidJson (syntax, depth, a
// duplicate key, named) or Validation (not an object).
Status ParseJsonObject(std::string_view body, boost::json::object* out);

// Rejects any member of `obj` not in `allowed` (validation_error naming it).
Status CheckFields(const boost::json::object& obj, std::initializer_list<std::string_view> allowed);

}  // namespace triggers::api
