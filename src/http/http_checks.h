// Small pure rules of the HTTP layer (src/http/server.cc), apart so they can
// be tested alone: which targets the connection reserve serves, which
// Transfer-Encoding is accepted, which accept errors pause accepting, and the
// open-file limit.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace triggers::http {

// A target (path and query) a connection from the reserve beyond
// --max-connections may ask for: /health, /health/*, /metrics.
bool IsReservedPath(std::string_view target);

// `values`: every Transfer-Encoding field of a request, in order. True only
// for one field holding exactly the token "chunked" (any case, spaces around
// it allowed). Beast 1.81 treats "gzip, chunked" as chunked and ignores the
// gzip; we refuse every other coding instead.
bool IsPlainChunked(const std::vector<std::string_view>& values);

// An errno from accept() after which the next accept fails the same way at
// once (out of descriptors or kernel memory): accepting must pause.
bool IsResourceExhaustion(int errno_value);

// Raises the soft RLIMIT_NOFILE to the hard limit (to 2^20 when the hard
// limit is unlimited). Returns the soft limit now in force; 0 when unknown.
size_t RaiseFdLimit();

}  // namespace triggers::http
