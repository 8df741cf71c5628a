#include "http/http_checks.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace triggers::http {
namespace {

TEST(HttpChecksTest, ReservedPaths) {
  for (const char* t : {"/health", "/health?x=1", "/health/live", "/health/ready", "/metrics"}) {
    EXPECT_TRUE(IsReservedPath(t)) << t;
  }
  for (const char* t : {"/healthz", "/metrics/x", "/v1/events", "/", "", "/ui"}) {
    EXPECT_FALSE(IsReservedPath(t)) << t;
  }
}

TEST(HttpChecksTest, OnlyOnePlainChunkedCoding) {
  EXPECT_TRUE(IsPlainChunked({"chunked"}));
  EXPECT_TRUE(IsPlainChunked({" Chunked\t"}));
  EXPECT_FALSE(IsPlainChunked({}));
  EXPECT_FALSE(IsPlainChunked({"gzip, chunked"}));
  EXPECT_FALSE(IsPlainChunked({"chunked, chunked"}));
  EXPECT_FALSE(IsPlainChunked({"gzip", "chunked"}));
  EXPECT_FALSE(IsPlainChunked({"chunked", "chunked"}));
  EXPECT_FALSE(IsPlainChunked({"identity"}));
  EXPECT_FALSE(IsPlainChunked({"chunked;x=1"}));
}

TEST(HttpChecksTest, ResourceExhaustion) {
  for (int e : {EMFILE, ENFILE, ENOBUFS, ENOMEM}) EXPECT_TRUE(IsResourceExhaustion(e));
  for (int e : {ECONNABORTED, EINTR, EPROTO, 0}) EXPECT_FALSE(IsResourceExhaustion(e));
}

}  // namespace
}  // namespace triggers::http
