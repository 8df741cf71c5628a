#include "http/codec.h"

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/string.hpp>

#include "core/ids.h"
#include "triggers/clock.h"

namespace triggers::http {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;

namespace {

bool IsPrintableId(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

std::string_view Sv(beast::string_view s) { return {s.data(), s.size()}; }

}  // namespace

size_t ReadBufferLimit(const ServerOptions& opts) {
  return opts.max_header + opts.max_body + 64 * 1024;
}

void ResetParser(std::optional<RequestParser>& parser, const ServerOptions& opts) {
  parser.emplace();
  parser->header_limit(static_cast<uint32_t>(opts.max_header));
  parser->body_limit(opts.max_body);
}

void CheckHeaderBytes(size_t header_bytes, const ServerOptions& opts, beast::error_code& ec) {
  if (!ec && header_bytes > opts.max_header) ec = bhttp::error::header_limit;
}

bool ReadErrorCloses(beast::error_code ec) {
  return ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
         ec == net::error::operation_aborted || ec == net::error::eof ||
         ec == net::error::connection_reset;
}

api::Response ReadErrorResponse(beast::error_code ec, const ServerOptions& opts,
                                const std::string& request_id) {
  if (ec == bhttp::error::body_limit) {
    return api::ErrorResponse(
        413, "payload_too_large",
        "the body is larger than the limit of " + std::to_string(opts.max_body) + " bytes",
        request_id);
  }
  if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
    return api::ErrorResponse(431, "request_header_too_large",
                              "the header block is larger than 16 KiB", request_id);
  }
  // Anything else that failed to parse: say so once and close.
  return api::ErrorResponse(400, "invalid_request", "malformed HTTP request", request_id);
}

void ToApiRequest(ParsedRequest& m, int home, std::string* request_id, api::Request* req) {
  auto rid = m.find("X-Request-Id");
  if (rid != m.end() && IsPrintableId(Sv(rid->value()))) {
    request_id->assign(rid->value().data(), rid->value().size());
  } else {
    *request_id = core::NewId("req_", SystemClock()->NowMs());
  }
  *req = api::Request{};
  req->method = Sv(m.method_string());
  std::string_view target = Sv(m.target());
  size_t q = target.find('?');
  req->path = target.substr(0, q);
  if (q != std::string_view::npos) req->query = target.substr(q + 1);
  req->body = m.body();
  req->has_body = !m.body().empty();
  req->authorization = Sv(m[bhttp::field::authorization]);
  req->x_api_key = Sv(m["X-API-Key"]);
  req->repeated_credential_header =
      m.count(boost::beast::http::field::authorization) > 1 || m.count("X-API-Key") > 1;
  req->content_type = Sv(m[bhttp::field::content_type]);
  auto idem = m.find("Idempotency-Key");
  req->has_idempotency_key = idem != m.end();
  if (req->has_idempotency_key) req->idempotency_key = Sv(idem->value());
  req->origin = Sv(m[bhttp::field::origin]);
  req->if_none_match = Sv(m[bhttp::field::if_none_match]);
  req->request_id = *request_id;
  req->home = home;
  for (const auto& f : m) req->headers.emplace_back(Sv(f.name_string()), Sv(f.value()));
}

template <typename Message>
void SetCommonHeaders(Message& res, const api::Response& r, const api::Request& req,
                      const std::string& request_id, const std::string& cors_origins) {
  res.version(11);
  res.result(static_cast<unsigned>(r.status));
  res.set(bhttp::field::server, "triggers");
  if (r.status != 204 && r.status != 304) res.set(bhttp::field::content_type, r.content_type);
  res.set("X-Request-Id", request_id);
  if (cors_origins == "*") {
    res.set(bhttp::field::access_control_allow_origin, "*");
  } else if (!req.origin.empty()) {
    // A list of origins: echo the request's origin when it is in the list.
    std::string_view list = cors_origins;
    while (!list.empty()) {
      size_t comma = list.find(',');
      std::string_view o = list.substr(0, comma);
      while (!o.empty() && o.front() == ' ') o.remove_prefix(1);
      if (o == req.origin) {
        res.set(bhttp::field::access_control_allow_origin, req.origin);
        break;
      }
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
    res.set(bhttp::field::vary, "Origin");
  }
  for (auto& [k, v] : r.headers) res.set(k, v);
}

template void SetCommonHeaders<StringResponse>(StringResponse&, const api::Response&,
                                               const api::Request&, const std::string&,
                                               const std::string&);
template void SetCommonHeaders<bhttp::response<bhttp::empty_body>>(
    bhttp::response<bhttp::empty_body>&, const api::Response&, const api::Request&,
    const std::string&, const std::string&);

void BuildResponse(api::Response&& r, const api::Request& req, const std::string& request_id,
                   const std::string& cors_origins, bool keep_alive, StringResponse* out) {
  *out = StringResponse{};
  SetCommonHeaders(*out, r, req, request_id, cors_origins);
  out->body() = std::move(r.body);
  out->keep_alive(keep_alive);
  out->prepare_payload();
}

std::string SerializeHeader(const StringResponse& res) {
  std::string out;
  out.reserve(256);
  out.append(res.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  const unsigned code = res.result_int();
  out.push_back(static_cast<char>('0' + code / 100 % 10));
  out.push_back(static_cast<char>('0' + code / 10 % 10));
  out.push_back(static_cast<char>('0' + code % 10));
  out.push_back(' ');
  out.append(res.reason());
  out.append("\r\n");
  for (const auto& f : res) {
    out.append(f.name_string());
    out.append(": ");
    out.append(f.value());
    out.append("\r\n");
  }
  out.append("\r\n");
  return out;
}

}  // namespace triggers::http
