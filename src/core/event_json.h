// The stored event object of SPEC section 4, as listed, read and delivered:
// {"id","type","source","subject","ordering_key","time","data"}, with `data`
// copied byte-for-byte as the producer sent it.
#pragma once

#include <string>

#include "triggers/model.h"

namespace triggers::core {

// Appends the object without its closing brace (callers may add fields).
void AppendEventJsonOpen(std::string& out, const Event& ev);
// Appends the whole object.
void AppendEventJson(std::string& out, const Event& ev);

}  // namespace triggers::core
