// How a Triggers event and an EventBridge event map onto each other (pure,
// no I/O; docs/aws.md states the mapping for users):
// - PutEvents: type = DetailType when it is a valid event type, else
//   DetailType with every character outside [A-Za-z0-9._:/-] replaced by
//   '-' ("Order Created" -> "Order-Created"); subject = DetailType exactly;
//   source = Source; data = Detail byte for byte.
// - The detail-type of an event is its subject when the subject maps to its
//   type that way (an event put through PutEvents), else its type.
// - SendMessage: an event of type kSqsMessageType, source kSqsMessageSource,
//   subject = the queue name, data = {"Body": the body as sent,
//   "MessageAttributes": {...} as sent}.
// - An SQS body is the EventBridge envelope of the event, or, for an event
//   made by SendMessage, the body exactly as sent.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>

#include "triggers/model.h"

namespace triggers::aws {

inline constexpr std::string_view kSqsMessageType = "aws.sqs.message";
inline constexpr std::string_view kSqsMessageSource = "aws.sqs";

// An SQS queue name, and so a pull subscription's `name`: 1-80 of [A-Za-z0-9_-].
bool IsValidQueueName(std::string_view name);

std::string EventTypeFromDetailType(std::string_view detail_type);
std::string DetailTypeOf(const Event& ev);
// True for an event made by SendMessage (its body is data.Body).
bool IsSqsMessage(const Event& ev);
// {"version":"0","id","detail-type","source","account","time","region",
//  "resources","detail"} with detail = data byte for byte, resources those
// of PutEvents ([] for other events) and account =
// the tenant; time in seconds, as EventBridge writes it.
std::string EnvelopeJson(const Event& ev, std::string_view region);
// The SQS message body of an event (see above).
// Sets *body, and *attributes to the SendMessage's MessageAttributes (an
// empty object for any other event).
void MessageOf(const Event& ev, std::string_view region, std::string* body,
               boost::json::object* attributes);

}  // namespace triggers::aws
