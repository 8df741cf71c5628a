#include "delivery/retry_schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace triggers::delivery {
namespace {

constexpr int64_t kS = 1000, kM = 60 * kS, kH = 60 * kM;

TEST(RetrySchedule, DefaultIsTheSpecSchedule) {
  RetrySchedule s = RetrySchedule::Default();
  EXPECT_EQ(s.max_attempts(), 10u);
  const int64_t expected[] = {5 * kS, 30 * kS, 2 * kM, 10 * kM, 30 * kM,
                              1 * kH, 3 * kH,  6 * kH, 12 * kH};
  for (int i = 0; i < 9; ++i) {
    EXPECT_EQ(s.DelayAfterFailure(i + 1, 0.5), expected[i]) << "after failure " << i + 1;
  }
  EXPECT_EQ(s.DelayAfterFailure(10, 0.5), std::nullopt);  // the 10th attempt failed: dead
  EXPECT_EQ(s.DelayAfterFailure(1000, 0.5), std::nullopt);
}

TEST(RetrySchedule, JitterIsPlusMinusTwentyPercentFromTheInjectedRandom) {
  RetrySchedule s = RetrySchedule::Default();
  EXPECT_EQ(s.DelayAfterFailure(1, 0.0), 4000);
  EXPECT_EQ(s.DelayAfterFailure(1, 0.25), 4500);
  EXPECT_EQ(s.DelayAfterFailure(1, 0.5), 5000);
  EXPECT_EQ(s.DelayAfterFailure(1, 0.75), 5500);
  EXPECT_EQ(s.DelayAfterFailure(1, 0.999999), 6000);
  EXPECT_EQ(s.DelayAfterFailure(9, 0.0), 12 * kH * 8 / 10);
  // Out-of-range randomness is clamped, never outside +-20%.
  EXPECT_EQ(s.DelayAfterFailure(1, -3.0), 4000);
  EXPECT_EQ(s.DelayAfterFailure(1, 7.0), 6000);
  EXPECT_EQ(s.DelayAfterFailure(1, std::nan("")), 4000);
  for (double u = 0.0; u < 1.0; u += 0.01) {
    int64_t d = *s.DelayAfterFailure(2, u);
    EXPECT_GE(d, 24000);
    EXPECT_LE(d, 36000);
  }
}

TEST(RetrySchedule, ZeroOrNegativeFailuresCountAsOne) {
  RetrySchedule s = RetrySchedule::Default();
  EXPECT_EQ(s.DelayAfterFailure(0, 0.5), 5000);
  EXPECT_EQ(s.DelayAfterFailure(-1, 0.5), 5000);
}

TEST(RetrySchedule, ParsesAList) {
  Result<RetrySchedule> r = RetrySchedule::Parse("1s,2s,500ms");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->delays_ms(), (std::vector<int64_t>{1000, 2000, 500}));
  EXPECT_EQ(r->max_attempts(), 4u);
  EXPECT_EQ(r->DelayAfterFailure(3, 0.5), 500);
  EXPECT_EQ(r->DelayAfterFailure(4, 0.5), std::nullopt);

  r = RetrySchedule::Parse(" 1s , 7d ");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->delays_ms(), (std::vector<int64_t>{1000, 7 * 24 * kH}));

  r = RetrySchedule::Parse("1ms");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->DelayAfterFailure(1, 0.0), 1);  // never 0 ms
}

TEST(RetrySchedule, RejectsBadItemsNamingThem) {
  struct Case {
    const char* csv;
    const char* must_mention;
  } cases[] = {
      {"", "item 1 ''"},         {"1s,,2s", "item 2 ''"}, {"1s,2x", "item 2 '2x'"},
      {"0s", "item 1 '0s'"},     {"-1s", "item 1 '-1s'"}, {"8d", "item 1 '8d'"},
      {"169h", "item 1 '169h'"}, {"1s,", "item 2 ''"},    {"5", "item 1 '5'"},
  };
  for (const Case& c : cases) {
    Result<RetrySchedule> r = RetrySchedule::Parse(c.csv);
    ASSERT_FALSE(r.ok()) << c.csv;
    EXPECT_EQ(r.status().code(), Status::Code::kValidation);
    EXPECT_NE(r.status().message().find(c.must_mention), std::string::npos)
        << c.csv << " -> " << r.status().message();
    EXPECT_NE(r.status().message().find("retry_schedule"), std::string::npos);
  }
}

TEST(RetrySchedule, AcceptsFiftyItemsButNotFiftyOne) {
  std::string csv = "1s";
  for (int i = 1; i < 50; ++i) csv += ",1s";
  Result<RetrySchedule> r = RetrySchedule::Parse(csv);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->max_attempts(), 51u);
  r = RetrySchedule::Parse(csv + ",1s");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kValidation);
  EXPECT_NE(r.status().message().find("1 to 50"), std::string::npos);
}

TEST(RetryAfter, DeltaSeconds) {
  EXPECT_EQ(ParseRetryAfterMs("0", 0), 0);
  EXPECT_EQ(ParseRetryAfterMs("120", 0), 120000);
  EXPECT_EQ(ParseRetryAfterMs(" 7 ", 0), 7000);
  EXPECT_EQ(ParseRetryAfterMs("3600", 0), kH);
  EXPECT_EQ(ParseRetryAfterMs("3601", 0), kH);  // capped
  EXPECT_EQ(ParseRetryAfterMs("99999999999999999999999", 0), kH);
}

TEST(RetryAfter, RejectsGarbageAndNegatives) {
  EXPECT_EQ(ParseRetryAfterMs("", 0), std::nullopt);
  EXPECT_EQ(ParseRetryAfterMs("-5", 0), std::nullopt);
  EXPECT_EQ(ParseRetryAfterMs("1.5", 0), std::nullopt);
  EXPECT_EQ(ParseRetryAfterMs("5s", 0), std::nullopt);
  EXPECT_EQ(ParseRetryAfterMs("soon", 0), std::nullopt);
  EXPECT_EQ(ParseRetryAfterMs("+5", 0), std::nullopt);
}

TEST(RetryAfter, ImfFixdateRelativeToNow) {
  // Sun, 06 Nov 1994 08:49:37 GMT = 784111777 s.
  const int64_t at = 784111777LL * 1000;
  EXPECT_EQ(ParseRetryAfterMs("Sun, 06 Nov 1994 08:49:37 GMT", at - 90 * kS), 90 * kS);
  EXPECT_EQ(ParseRetryAfterMs("Sun, 06 Nov 1994 08:49:37 GMT", at - 500), 500);
  EXPECT_EQ(ParseRetryAfterMs("Sun, 06 Nov 1994 08:49:37 GMT", at), 0);
  EXPECT_EQ(ParseRetryAfterMs("Sun, 06 Nov 1994 08:49:37 GMT", at - 5 * kH), kH);       // capped
  EXPECT_EQ(ParseRetryAfterMs("Sun, 06 Nov 1994 08:49:37 GMT", at + 1), std::nullopt);  // past
  // 2026-11-25T20:50:32Z = 1795639832 s (see time_util_test).
  EXPECT_EQ(ParseRetryAfterMs("Wed, 25 Nov 2026 20:50:32 GMT", 1795639832000 - 1000), 1000);
  // Leap day.
  EXPECT_EQ(ParseRetryAfterMs("Tue, 29 Feb 2000 00:00:10 GMT", 951782400000), 10000);
}

TEST(RetryAfter, RejectsMalformedDates) {
  const int64_t now = 0;
  const char* bad[] = {
      "Sun, 06 Nov 1994 08:49:37 UTC",   // not GMT
      "Sun, 6 Nov 1994 08:49:37 GMT",    // day not two digits
      "Sun 06 Nov 1994 08:49:37 GMT",    // no comma
      "Xyz, 06 Nov 1994 08:49:37 GMT",   // day name
      "Sun, 06 Nox 1994 08:49:37 GMT",   // month
      "Sun, 31 Feb 1994 08:49:37 GMT",   // no such date
      "Sun, 06 Nov 1994 24:49:37 GMT",   // hour
      "Sun, 06 Nov 1994 08:60:37 GMT",   // minute
      "Sun, 06 Nov 1994 08:49:61 GMT",   // second
      "Sun, 06 Nov 19a4 08:49:37 GMT",   // year
      "Sunday, 06-Nov-94 08:49:37 GMT",  // obsolete RFC 850 form
      "Sun Nov  6 08:49:37 1994",        // obsolete asctime form
  };
  for (const char* h : bad) EXPECT_EQ(ParseRetryAfterMs(h, now), std::nullopt) << h;
}

}  // namespace
}  // namespace triggers::delivery
