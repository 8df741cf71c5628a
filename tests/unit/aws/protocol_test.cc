// The query protocol's form nesting and XML, SQS's MD5 digests, and the
// sealing of AWS secrets.
#include "aws/protocol.h"

#include <gtest/gtest.h>

#include "aws/credentials.h"
#include "aws/envelope.h"
#include "aws/secret_box.h"
#include "aws/sqs_common.h"

namespace triggers::aws {
namespace json = boost::json;
namespace {

TEST(QueryProtocol, NestsListsAndMapsInJsonNames) {
  json::object o = NestForm(
      "Action=DeleteMessageBatch&QueueUrl=http%3A%2F%2Fh%2Fsqs%2Ft%2Fq"
      "&DeleteMessageBatchRequestEntry.2.Id=b&DeleteMessageBatchRequestEntry.1.Id=a"
      "&DeleteMessageBatchRequestEntry.1.ReceiptHandle=r+1&AttributeName.1=All"
      "&MessageAttribute.1.Name=k&MessageAttribute.1.Value.StringValue=v"
      "&MessageAttribute.1.Value.DataType=String");
  EXPECT_EQ(json::serialize(o.at("Entries")), R"([{"Id":"a","ReceiptHandle":"r 1"},{"Id":"b"}])");
  EXPECT_EQ(json::serialize(o.at("AttributeNames")), R"(["All"])");
  EXPECT_EQ(json::serialize(o.at("MessageAttributes")),
            R"({"k":{"StringValue":"v","DataType":"String"}})");
  EXPECT_EQ(o.at("QueueUrl").as_string(), "http://h/sqs/t/q");
}

TEST(QueryProtocol, RendersFlattenedXml) {
  json::object msg{{"MessageId", "m"}, {"Body", "<&>"}, {"Attributes", json::object{{"A", "1"}}}};
  json::object out{{"Messages", json::array{msg}}};
  api::Response r = RenderResult(Protocol::kSqsQuery, "ReceiveMessage", out, "rid");
  EXPECT_EQ(r.body,
            "<?xml version=\"1.0\"?><ReceiveMessageResponse "
            "xmlns=\"http://queue.amazonaws.com/doc/2012-11-05/\"><ReceiveMessageResult><Message>"
            "<MessageId>m</MessageId><Body>&lt;&amp;&gt;</Body><Attribute><Name>A</Name><Value>1"
            "</Value></Attribute></Message></ReceiveMessageResult><ResponseMetadata><RequestId>"
            "rid</RequestId></ResponseMetadata></ReceiveMessageResponse>");
  api::Response e = RenderError(Protocol::kSqsJson, {ErrorKind::kQueueDoesNotExist, "no"}, "rid");
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.body, R"({"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"no"})");
}

// Values computed with the reference algorithm of the AWS SDKs' checksum
// validation (botocore's _get_md5_of_message_attributes equivalent).
TEST(Sqs, Md5Digests) {
  EXPECT_EQ(Md5Hex("hello"), "5d41402abc4b2a76b9719d911017c592");
  json::object attrs{{"k", json::object{{"DataType", "String"}, {"StringValue", "v"}}}};
  std::string expected;
  // name, type, transport 1, value: each length-prefixed (4 bytes, big endian)
  std::string buf = std::string("\0\0\0\1k\0\0\0\6String\1\0\0\0\1v", 21);
  EXPECT_EQ(Md5OfMessageAttributes(attrs), Md5Hex(buf));
}

TEST(Envelope, DetailTypeMapping) {
  EXPECT_EQ(EventTypeFromDetailType("order.created"), "order.created");
  EXPECT_EQ(EventTypeFromDetailType("Order Created"), "Order-Created");
  Event ev;
  ev.id = "evt_1";
  ev.tenant = "acme";
  ev.type = "Order-Created";
  ev.subject = "Order Created";
  ev.source = "shop";
  ev.data = R"({"a":1})";
  ev.received_at_ms = 1'700'000'000'123;
  EXPECT_EQ(DetailTypeOf(ev), "Order Created");
  EXPECT_EQ(EnvelopeJson(ev, "us-east-1"),
            R"({"version":"0","id":"evt_1","detail-type":"Order Created","source":"shop",)"
            R"("account":"acme","time":"2023-11-14T22:13:20Z","region":"us-east-1",)"
            R"("resources":[],"detail":{"a":1}})");
  ev.subject = "order/42";  // a /v1 event's own subject
  EXPECT_EQ(DetailTypeOf(ev), "Order-Created");
  EXPECT_TRUE(IsValidQueueName("orders_q-1"));
  EXPECT_FALSE(IsValidQueueName(""));
  EXPECT_FALSE(IsValidQueueName("a.b"));
  EXPECT_FALSE(IsValidQueueName(std::string(81, 'a')));
}

TEST(SecretBox, SealsBoundToTheKeyId) {
  SecretBox box = SecretBox::FromKey(std::string(32, 'k'));
  ApiKey key;
  std::string secret = MakeAwsCredentials(box, &key);
  ASSERT_EQ(secret.size(), 40u);
  EXPECT_TRUE(LooksLikeAccessKeyId(key.access_key_id));
  EXPECT_EQ(key.sealed_secret.find(secret), std::string::npos);
  std::string opened;
  EXPECT_TRUE(box.Open(key.sealed_secret, key.access_key_id, &opened));
  EXPECT_EQ(opened, secret);
  EXPECT_FALSE(box.Open(key.sealed_secret, "TRGOTHERKEYID00000", &opened));
  SecretBox other = SecretBox::FromKey(std::string(32, 'x'));
  EXPECT_FALSE(other.Open(key.sealed_secret, key.access_key_id, &opened));
  std::string tampered = key.sealed_secret;
  tampered[14] ^= 1;
  EXPECT_FALSE(box.Open(tampered, key.access_key_id, &opened));
}

}  // namespace
}  // namespace triggers::aws
