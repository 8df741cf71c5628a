#include "store/delivery_rules.h"

#include "triggers/model.h"

namespace triggers::store::rules {

namespace {
std::string S(std::string_view s) { return std::string(s); }
}  // namespace

std::string HeldUnder(std::string_view token, std::string_view col) {
  return "(" + S(col) + "status='in_flight' AND " + S(col) + "receipt=" + S(token) + ")";
}

std::string LiveUnder(std::string_view token, std::string_view now, std::string_view col) {
  return "(" + HeldUnder(token, col) + " AND " + S(col) + "next_attempt_at>" + S(now) + ")";
}

std::string OutcomeAdmitted(std::string_view token, std::string_view col) {
  return "(" + S(token) + "='' OR " + HeldUnder(token, col) + ")";
}

std::string ReceivesExhausted(std::string_view attempts, std::string_view max_receives) {
  return "(" + S(max_receives) + ">0 AND " + S(attempts) + ">=" + S(max_receives) + ")";
}

std::string SetDeadMaxReceives(std::string_view now) {
  return "status='dead', next_attempt_at=NULL, receipt=NULL, last_error='received max_receives "
         "times without an ack', updated_at=" +
         S(now);
}

std::string Admissible(std::string_view alias) {
  const std::string a = S(alias);
  return "(" + a + ".ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries p WHERE " +
         "p.subscription_id=" + a + ".subscription_id AND p.ordering_key=" + a +
         ".ordering_key AND p.next_attempt_at IS NOT NULL AND p.seq<" + a + ".seq))";
}

std::string CandidateOrder(std::string_view alias) {
  return S(alias) + ".next_attempt_at, " + S(alias) + ".seq";
}

std::string SetAcked(std::string_view now) {
  return "status='succeeded', next_attempt_at=NULL, receipt=NULL, updated_at=" + S(now);
}

std::string SetNacked(std::string_view visible_at, std::string_view now) {
  return "status='retrying', next_attempt_at=" + S(visible_at) +
         ", receipt=NULL, updated_at=" + S(now);
}

std::string SetLeaseEnd(std::string_view visible_at, std::string_view now) {
  return "next_attempt_at=" + S(visible_at) + ", updated_at=" + S(now);
}

std::string SetReleased(std::string_view now) {
  return "status=CASE WHEN attempts=0 THEN 'pending' ELSE 'retrying' END, next_attempt_at=" +
         S(now) + ", updated_at=" + S(now) + ", receipt=NULL";
}

std::string SetRequeued(std::string_view now) {
  return "status='pending', next_attempt_at=" + S(now) + ", updated_at=" + S(now) +
         ", attempts=CASE WHEN (SELECT kind FROM subscriptions s WHERE "
         "s.id=deliveries.subscription_id)='pull' THEN 0 ELSE attempts END";
}

const char* SettleAnswer(bool ack, bool changed, bool exists) {
  if (changed) return ack ? "acked" : "nacked";
  return exists ? "expired" : "not_found";
}

Status CheckRetry(std::string_view status, bool subscription_live) {
  if (!subscription_live) return Status::Conflict("the delivery's subscription was deleted");
  if (status == kDeliveryPending || status == kDeliveryInFlight) {
    return Status::Conflict("the delivery is " + S(status) + " already");
  }
  return Status::Ok();
}

std::string SetDeadOrphan(std::string_view now) {
  return "status='dead', next_attempt_at=NULL, receipt=NULL, last_error='the event was purged "
         "by retention', updated_at=" +
         S(now);
}

std::string IsOrphan(std::string_view alias) {
  const std::string a = S(alias);
  return "(" + a + ".next_attempt_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM events e WHERE " +
         "e.tenant=" + a + ".tenant AND e.id=" + a + ".event_id))";
}

}  // namespace triggers::store::rules
