// The delivery queue's rules, decided once for every backend: what a lease
// is, receive counting and max_receives -> dead, ordered admission, which
// settles and outcomes a lease token admits, what a released or retried
// delivery becomes, and what happens to an orphan. A backend is storage and
// SQL: it splices these fragments into its own statements, so the database
// applies each rule atomically, in the statement that finds the rows it
// decides on (PostgreSQL keeps its single-statement SKIP LOCKED lease).
//
// Fragments are dialect-neutral SQL (SQLite and PostgreSQL). Their inputs
// are SQL expressions the backend passes: a placeholder ("?3", "$3"), a clock
// expression, or a column. `col` is the prefix of deliveries' columns ("" or
// "d."). Columns on the left of a SET are never qualified.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "triggers/status.h"

namespace triggers::store::rules {

// The circuit breaker's thresholds, one set for both places that apply them:
// delivery::CircuitBreaker's defaults (one node's breaker) and the breaker
// rows PostgreSQL's RecordAttempts moves for every node.
inline constexpr int kBreakerFailureThreshold = 10;
inline constexpr int64_t kBreakerBaseCooldownMs = 5'000;
inline constexpr int64_t kBreakerMaxCooldownMs = 600'000;

// ---- Leases -------------------------------------------------------------------
// A lease is status 'in_flight' with receipt = its token (fresh for every
// lease) and next_attempt_at = the moment it ends; an expired lease makes the
// delivery due again, so the next lease takes it with a new token.

// The lease `token` is the one the delivery is held under (whether or not it
// has run out): release and attempt outcomes need only this.
std::string HeldUnder(std::string_view token, std::string_view col = "");
// ... and has not run out at `now`: a pull settle needs this.
std::string LiveUnder(std::string_view token, std::string_view now, std::string_view col = "");
// An attempt outcome is recorded only under the lease it was made under; an
// empty token (tests, tools) records unconditionally.
std::string OutcomeAdmitted(std::string_view token, std::string_view col = "");

// What a lease does to the receive count, by subscription kind.
struct LeasePolicy {
  int max_receives = 0;           // 0: no limit (push: its retry schedule decides)
  int64_t receive_increment = 0;  // added to `attempts` per lease (pull counts receives)
};
inline LeasePolicy PushLease() { return {0, 0}; }
inline LeasePolicy PullLease(int max_receives) { return {max_receives < 1 ? 1 : max_receives, 1}; }

// True (as SQL) when a candidate must go dead instead of being leased: it was
// received `max_receives` times already. `max_receives` 0 never is.
std::string ReceivesExhausted(std::string_view attempts, std::string_view max_receives);
// The SET list making a delivery dead for that reason (plus updated_at).
std::string SetDeadMaxReceives(std::string_view now);

// ---- Ordered admission -----------------------------------------------------------
// A candidate of alias `alias` may be leased only when it has no ordering key
// or no earlier (lower seq) unfinished delivery of its key and subscription
// exists: one in flight per key, in seq order. Uses deliveries_order.
std::string Admissible(std::string_view alias);
// Candidates of alias `alias` are taken oldest first: by due time, then seq.
std::string CandidateOrder(std::string_view alias);

// ---- Settles, releases, retries ------------------------------------------------
// Pull ack and nack (applied only under LiveUnder).
std::string SetAcked(std::string_view now);
std::string SetNacked(std::string_view visible_at, std::string_view now);
// SQS ChangeMessageVisibility (applied only under LiveUnder): the lease keeps
// its token and now ends at `visible_at` (at `now`: visible again at once).
std::string SetLeaseEnd(std::string_view visible_at, std::string_view now);
// A released lease: back to what it was before it (pending if never attempted
// or received, else retrying), due now.
std::string SetReleased(std::string_view now);
// Retry and replay: pending, due now; for a pull message `attempts` counts
// receives, which max_receives limits, so it starts counting again; a push
// delivery keeps its count (its retry schedule continues where it stopped).
std::string SetRequeued(std::string_view now);

// A settle's answer for one receipt: the update under LiveUnder changed the
// row, or else whether the delivery exists in this subscription at all.
const char* SettleAnswer(bool ack, bool changed, bool exists);
// Whether a delivery in `status` may be retried by hand.
Status CheckRetry(std::string_view status, bool subscription_live);

// ---- Orphans ------------------------------------------------------------------
// An unfinished delivery whose event was purged can never be sent: dead.
// (A deleted subscription's unfinished deliveries are deleted with it.)
std::string SetDeadOrphan(std::string_view now);
// True (as SQL) for an unfinished delivery (alias `alias`) whose event is gone.
std::string IsOrphan(std::string_view alias);

}  // namespace triggers::store::rules
