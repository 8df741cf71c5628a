// What the SQS actions share: finding the queue (a pull subscription of the
// caller's tenant, by name) from QueueUrl or the request's path, reading
// parameters in either protocol's spelling, receipts, and SQS's MD5 digests.
#pragma once

#include <boost/json.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "aws/endpoint.h"
#include "delivery/subscription_cache.h"

namespace triggers::aws {

using Queue = std::shared_ptr<const delivery::CompiledSubscription>;

std::string QueueUrl(const AwsCall& call, std::string_view name);
// The queue named by QueueUrl (or the path the request was posted to).
// QueueDoesNotExist for a queue of another tenant, as for a missing one.
bool ResolveQueue(const AwsCall& call, Queue* out, Error* err);

// An integer parameter (a JSON number, or the query protocol's text):
// `def` when absent; InvalidParameterValue outside [lo, hi].
bool IntParam(const boost::json::object& in, std::string_view name, int64_t lo, int64_t hi,
              int64_t def, int64_t* out, Error* err);
// A string parameter; nullopt when absent or not a string.
std::optional<std::string> StrParam(const boost::json::object& in, std::string_view name);
// A list of strings (absent: empty).
std::vector<std::string> StrList(const boost::json::object& in, std::string_view name);

// A receipt handle as this server makes them: "dlv_<ulid>.<token>".
bool LooksLikeReceipt(std::string_view r);

// Hex MD5 of `bytes`; and MD5OfMessageAttributes over {name: {DataType,
// StringValue | BinaryValue (base64)}} as SQS computes it (names sorted;
// each length-prefixed, transport type 1 = string, 2 = binary).
std::string Md5Hex(std::string_view bytes);
std::string Md5OfMessageAttributes(const boost::json::object& attrs);

// Checks a batch's Entries: 1-10, Ids 1-80 of [A-Za-z0-9_-], distinct.
bool BatchEntries(const boost::json::object& in, const boost::json::array** out, Error* err);
// {"Id","SenderFault":true,"Code","Message"} for a batch's Failed list.
boost::json::object FailedEntry(std::string_view id, ErrorKind kind, std::string_view message);

}  // namespace triggers::aws
