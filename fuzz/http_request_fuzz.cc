// One connection's bytes through the server's request path without a
// socket: the same Beast parser with the same limits and buffer bound
// (src/http/codec.h), requests pipelined while keep-alive lasts, each routed
// through api::Router to the real handlers (HttpHarness), each answer built
// into the bytes the server would write.
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <optional>
#include <sstream>
#include <string>

#include "http/codec.h"
#include "http_harness.h"
#include "targets.h"

namespace triggers::fuzz {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;

// The connection's bytes as Beast's synchronous read sees a socket: at most
// one TCP read's worth per call, then end of stream.
class MemoryStream {
 public:
  explicit MemoryStream(std::string_view in) : in_(in) {}

  template <typename Buffers>
  size_t read_some(const Buffers& buffers, beast::error_code& ec) {
    ec = {};
    if (in_.empty()) {
      ec = net::error::eof;
      return 0;
    }
    size_t n =
        net::buffer_copy(buffers, net::buffer(in_.data(), std::min<size_t>(in_.size(), 8192)));
    in_.remove_prefix(n);
    return n;
  }

  template <typename Buffers>
  size_t read_some(const Buffers& buffers) {
    beast::error_code ec;
    size_t n = read_some(buffers, ec);
    if (ec) throw beast::system_error(ec);
    return n;
  }

 private:
  std::string_view in_;
};

// A connection ends within this many requests (inputs are small; this only
// bounds the time of one input).
constexpr int kMaxRequests = 16;

}  // namespace

void HttpRequestOne(const uint8_t* data, size_t size) {
  HttpHarness& harness = HttpHarness::Get();
  const http::ServerOptions opts;  // the server's defaults: 16 KiB header, 256 KiB body
  MemoryStream stream(std::string_view(reinterpret_cast<const char*>(data), size));
  beast::flat_buffer buffer(http::ReadBufferLimit(opts));
  std::optional<http::RequestParser> parser;
  std::ostringstream out;
  for (int i = 0; i < kMaxRequests; ++i) {
    http::ResetParser(parser, opts);
    beast::error_code ec;
    size_t header_bytes = bhttp::read_header(stream, buffer, *parser, ec);
    http::CheckHeaderBytes(header_bytes, opts, ec);
    if (!ec && !parser->is_done()) bhttp::read(stream, buffer, *parser, ec);
    api::Request req;
    std::string request_id = "req_fuzz";
    if (ec) {
      if (http::ReadErrorCloses(ec)) break;
      http::StringResponse res;
      http::BuildResponse(http::ReadErrorResponse(ec, opts, request_id), req, request_id,
                          opts.cors_origins, false, &res);
      out << res;
      break;
    }
    http::ToApiRequest(parser->get(), 0, &request_id, &req);
    api::Response r = harness.Dispatch(req);
    FUZZ_CHECK(r.status >= 100 && r.status <= 599, "a response without a valid status");
    if (!r.stream && r.content_type == "application/json" && !r.body.empty()) {
      boost::system::error_code jec;
      boost::json::parse(r.body, jec);
      FUZZ_CHECK(!jec, "a JSON response whose body is not JSON");
    }
    bool keep_alive = parser->get().keep_alive() && !r.close;
    if (r.stream) {
      bhttp::response<bhttp::empty_body> head;
      http::SetCommonHeaders(head, r, req, request_id, opts.cors_origins);
      head.chunked(true);
      out << head.base();
      break;  // a streamed response ends the connection
    }
    http::StringResponse res;
    http::BuildResponse(std::move(r), req, request_id, opts.cors_origins, keep_alive, &res);
    out << res;
    if (!keep_alive) break;
  }
  // TRIGGERS_FUZZ_PRINT=1: what the server would have written, to look at
  // what a seed reaches (`build-fuzz/http_request_fuzz <file>`).
  static const bool print = std::getenv("TRIGGERS_FUZZ_PRINT") != nullptr;
  if (print) std::fprintf(stderr, "%s\n", out.str().c_str());
}

}  // namespace triggers::fuzz
