// The server's translation between HTTP bytes and the API's plain data, kept
// apart from the socket code so the same steps can run without a socket (the
// request fuzzer in fuzz/ drives them): the parser's limits, what a failed
// read answers, a parsed request as an api::Request, and an api::Response as
// a Beast response with the common headers.
#pragma once

#include <boost/beast/core/error.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <optional>
#include <string>

#include "api/http_types.h"
#include "http/server.h"

namespace triggers::http {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;
using ParsedRequest = boost::beast::http::request<boost::beast::http::string_body>;
using StringResponse = boost::beast::http::response<boost::beast::http::string_body>;

// The most a connection's read buffer may hold. Bounded: Beast 1.81 does not
// limit a chunk-size line or the trailer, so without this a chunked body
// could grow the buffer without end.
size_t ReadBufferLimit(const ServerOptions& opts);

// A fresh parser for the next request on a connection, with its limits.
void ResetParser(std::optional<RequestParser>& parser, const ServerOptions& opts);

// Beast's header_limit can miss a block that arrives in one piece; the byte
// count of the header read is exact. Turns an oversized header into the
// header_limit error.
void CheckHeaderBytes(size_t header_bytes, const ServerOptions& opts, boost::beast::error_code& ec);

// True when a failed read just ends the connection (the peer went away, a
// timeout, the server stopping): nothing is answered.
bool ReadErrorCloses(boost::beast::error_code ec);

// The answer to a read that failed otherwise (413, 431 or 400); the
// connection closes after it.
api::Response ReadErrorResponse(boost::beast::error_code ec, const ServerOptions& opts,
                                const std::string& request_id);

// Fills `*req` (views into `m`, valid while `m` is) and `*request_id` (the
// client's X-Request-Id when it is printable, else a fresh one).
void ToApiRequest(ParsedRequest& m, int home, std::string* request_id, api::Request* req);

// The status, content type, X-Request-Id, CORS and handler headers of a
// response to `req` (also for streamed responses).
template <typename Message>
void SetCommonHeaders(Message& res, const api::Response& r, const api::Request& req,
                      const std::string& request_id, const std::string& cors_origins);

// The whole response (not streamed), ready to write.
void BuildResponse(api::Response&& r, const api::Request& req, const std::string& request_id,
                   const std::string& cors_origins, bool keep_alive, StringResponse* out);

// The status line and header block of `res` (through the blank line), the
// bytes Beast's serializer writes before the body. The server writes this
// and the body in one gather write: Beast's serializer (its buffer views)
// was ~5% of the server's CPU per single-event ingest.
std::string SerializeHeader(const StringResponse& res);

extern template void SetCommonHeaders<StringResponse>(StringResponse&, const api::Response&,
                                                      const api::Request&, const std::string&,
                                                      const std::string&);
extern template void SetCommonHeaders<boost::beast::http::response<boost::beast::http::empty_body>>(
    boost::beast::http::response<boost::beast::http::empty_body>&, const api::Response&,
    const api::Request&, const std::string&, const std::string&);

}  // namespace triggers::http
