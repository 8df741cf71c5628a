// POST /v1/deliveries/{id}/retry answers the delivery as the retry left it,
// even when the dispatcher sends it again before the answer is built.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/context.h"
#include "api/handlers.h"
#include "fakes/fake_store.h"

namespace triggers::api {
namespace {

class FixedClock : public Clock {
 public:
  int64_t NowMs() const override { return 1'800'000'000'000; }
  int64_t MonoNs() const override { return 0; }
};

// One dead webhook delivery; the retry puts it back to pending.
class OneDelivery : public testing::FakeStore {
 public:
  Delivery d;
  OneDelivery() {
    d.id = "dlv_01KB8Y6X0000000000000000AA";
    d.tenant = "t1";
    d.event_id = "evt_01KB8Y6X0000000000000000AA";
    d.subscription_id = "sub_01KB8Y6X0000000000000000AA";
    d.status = "dead";
    d.attempts = 6;
  }
  Result<Delivery> GetDelivery(const std::string& tenant, const std::string& id) override {
    if (tenant != d.tenant || id != d.id) return Status::NotFound("delivery not found");
    return d;
  }
  Result<Delivery> RetryDelivery(const std::string& tenant, const std::string& id,
                                 int64_t now) override {
    if (tenant != d.tenant || id != d.id) return Status::NotFound("delivery not found");
    d.status = "pending";
    d.next_attempt_at_ms = d.updated_at_ms = now;
    return d;
  }
};

// The handler's context over OneDelivery, and a call of tenant t1 on its id.
class RetryDeliveryTest : public ::testing::Test {
 protected:
  RetryDeliveryTest() {
    ctx.store = &store;
    ctx.clock = &clock;
    req.request_id = "req_1";
    call.req = &req;
    who->tenant = "t1";
    call.who = who;
    call.param = store.d.id;
  }
  OneDelivery store;
  FixedClock clock;
  Context ctx;
  Request req;
  Call call;
  std::shared_ptr<Principal> who = std::make_shared<Principal>();
};

TEST_F(RetryDeliveryTest, AnswersPendingWhenTheDispatcherIsFaster) {
  // The dispatcher, woken by the retry, sends the delivery at once and it
  // succeeds before the handler answers (what a fast dispatcher did on
  // PostgreSQL: the 202 said `succeeded`).
  ctx.wake_dispatcher = [&] {
    store.d.status = "succeeded";
    store.d.attempts += 1;
    store.d.next_attempt_at_ms = 0;
  };
  Response r = RetryDelivery(ctx, call);
  ASSERT_EQ(r.status, 202) << r.body;
  auto o = boost::json::parse(r.body).as_object();
  EXPECT_EQ(o.at("id").as_string(), store.d.id);
  EXPECT_EQ(o.at("status").as_string(), "pending");
  EXPECT_EQ(o.at("attempt_count").as_int64(), 6);
}

TEST_F(RetryDeliveryTest, UnknownAndForeignIdsAre404) {
  bool woken = false;
  ctx.wake_dispatcher = [&] { woken = true; };
  who->tenant = "t2";  // not the delivery's tenant
  EXPECT_EQ(RetryDelivery(ctx, call).status, 404);
  who->tenant = "t1";
  call.param = "dlv_01KB8Y6X0000000000000000ZZ";
  EXPECT_EQ(RetryDelivery(ctx, call).status, 404);
  EXPECT_FALSE(woken);
  EXPECT_EQ(store.d.status, "dead");
}

}  // namespace
}  // namespace triggers::api
