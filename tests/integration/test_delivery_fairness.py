"""Black-box tests of delivery fairness (issue 12, SPEC 6: "one endpoint's
outage never delays delivery to the others").

One tenant's endpoints hang (accept, read the request, never answer) on one
host:port; another tenant's webhooks to the same host:port, a different path,
must still arrive at once. Each subscription's max_in_flight is the only
thing that limits it below the per-tenant and total caps
(--delivery-max-in-flight-per-tenant, --delivery-max-in-flight), and a
subscription whose breaker is open or whose rate limit holds it back delays
nobody else.

Latency is measured from just before the ingest request is sent to the
receiver's arrival time (both time.monotonic() in this process), so the
bound includes the ingest commit and the dispatcher's wake-up.

Run from the repo root:
  /usr/bin/python3 -m unittest -v tests/integration/test_delivery_fairness.py
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_delivery as td  # noqa: E402  (helpers only: no TestCase is imported by name)
import tempfile  # noqa: E402

from harness import make_key, run_cli, unique_tenant  # noqa: E402

TIMEOUT_S = 6                      # --delivery-timeout: a hanging attempt lasts this long
SCHEDULE = ["100ms"] * 20          # the hanging deliveries come back at once, again and again
ARGS = ["--allow-private-destinations", "--retry-schedule", ",".join(SCHEDULE),
        "--delivery-timeout", "%ds" % TIMEOUT_S]
BOUND_S = 1.0                      # a hanging attempt takes 6 s: 1 s cannot be noise


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def concurrent_hangs(rcv, paths, before):
    """Requests to the hanging paths that arrived before `before` (monotonic):
    none of them is ever answered, so all of them are in progress together
    while `before` is within the first attempt's timeout."""
    return [r for r in rcv.requests() if r.path in paths and r.t < before]


class FairnessCase(td.DeliveryCase):
    server_args = ARGS

    def hanging_tenant(self, subs=5, max_in_flight=16, events=20, srv=None):
        """Tenant A: `subs` subscriptions whose endpoints hang, on the receiver's
        one host:port; `events` events, so each subscription has more due
        deliveries than max_in_flight. Returns (key, the hanging paths, t0)."""
        srv = srv or self.srv
        key = make_key(srv, unique_tenant("hang-a"), ["ingest", "read", "manage"])["key"]
        paths = set()
        for i in range(subs):
            p = self.path("hang%d" % i)
            self.rcv.hang(p, TIMEOUT_S + 30)  # cut short by the receiver's stop()
            sub = self.create_sub(p, key=key, srv=srv, max_in_flight=max_in_flight)
            self.addCleanup(srv.request, "DELETE", "/v1/subscriptions/" + sub["id"], key=key)
            paths.add(p)
        t0 = time.monotonic()
        r = srv.request("POST", "/v1/events/batch",
                        {"events": [{"type": "hang.t", "data": i} for i in range(events)]}, key=key)
        self.assertStatus(r, 200, "tenant A's batch")
        return key, paths, t0

    def timed_deliveries(self, path, key, n, srv=None, spacing_s=0.05, etype="fair.t"):
        """Ingests n events one at a time (spacing_s apart) for the subscription
        at `path`; returns each one's ingest-to-arrival latency in seconds."""
        sent = {}
        for i in range(n):
            t = time.monotonic()
            sent[self.ingest(etype, str(i), key=key, srv=srv)] = t
            time.sleep(spacing_s)  # spread over time, not a measurement
        missing = self.rcv.wait_for_ids(path, sent, 4 * TIMEOUT_S)
        self.assertEqual(missing, set(), "%d of %d deliveries never arrived" % (len(missing), n))
        first = {}
        for r in self.rcv.requests(path):
            first.setdefault(r.headers["webhook-id"], r.t)
        return [first[i] - t for i, t in sent.items()]

    def assertPrompt(self, lat, what):
        msg = "%s: p50 %.3f s, p99 %.3f s, max %.3f s over %d deliveries" % (
            what, percentile(lat, 50), percentile(lat, 99), max(lat), len(lat))
        self.assertLess(percentile(lat, 99), BOUND_S, msg)
        self.assertLess(max(lat), BOUND_S, msg)


class HangingNeighbourTests(FairnessCase):

    def test_hanging_tenant_does_not_delay_another_on_the_same_host_port(self):
        """Issue 12 case 2 (before the fix B waited up to the delivery timeout)."""
        _, hang_paths, t0 = self.hanging_tenant()
        got = self.rcv.wait_for(None, 64, TIMEOUT_S - 1, pred=lambda r: r.path in hang_paths)
        self.assertGreaterEqual(len(got), 64, "tenant A's hanging attempts never started")
        key_b = make_key(self.srv, unique_tenant("ok-b"), ["ingest", "read", "manage"])["key"]
        ok = self.path("ok")
        sub = self.create_sub(ok, key=key_b)
        self.addCleanup(self.srv.request, "DELETE", "/v1/subscriptions/" + sub["id"], key=key_b)
        lat = self.timed_deliveries(ok, key_b, 30)
        self.assertPrompt(lat, "tenant B beside tenant A's 80 hanging attempts")
        # The measurement ran while A's first attempts were all still hanging.
        self.assertLess(time.monotonic(), t0 + TIMEOUT_S - 0.5,
                        "the measurement overran A's first timeout")
        # All 5 x 16 of them at once: each subscription's max_in_flight is
        # what limits it, not a per-host connection cap.
        self.assertEqual(len(concurrent_hangs(self.rcv, hang_paths, t0 + TIMEOUT_S - 0.5)), 80,
                         "tenant A's 5 x 16 attempts were not all in progress at once")

    def test_open_breaker_and_rate_limit_do_not_delay_another_subscription(self):
        """Same tenant, same host:port, same events: one subscription failing
        until its breaker opens, one held back by a rate limit with a
        backlog, one healthy."""
        failing, slow, healthy = self.path("failing"), self.path("slow"), self.path("healthy")
        self.rcv.error(failing, 500)
        self.create_sub(failing)
        self.create_sub(slow, rate_limit_per_s=2)
        # Backlog for both: the failing one trips its breaker (10 failures),
        # the rate-limited one has 30 s of work queued.
        self.ingest_batch([{"type": "bg.t", "data": i} for i in range(60)])
        self.arrivals(failing, 10, 10)
        # Its events go to the other two as well (they take every type).
        self.create_sub(healthy, event_types=["h.*"])
        lat = self.timed_deliveries(healthy, self.key, 30, etype="h.t")
        self.assertPrompt(lat, "healthy subscription beside an open breaker and a rate limit")
        # Both neighbours were really held back meanwhile.
        self.assertLess(self.rcv.count(slow), 60, "the rate limit did not hold the backlog back")
        self.assertLess(self.rcv.count(failing), 100, "the breaker never opened")

    def test_same_tenant_hanging_subscriptions_do_not_delay_its_other_one(self):
        key, hang_paths, _ = self.hanging_tenant()
        got = self.rcv.wait_for(None, 64, TIMEOUT_S - 1, pred=lambda r: r.path in hang_paths)
        self.assertGreaterEqual(len(got), 64, "tenant A's hanging attempts never started")
        ok = self.path("own-ok")
        sub = self.create_sub(ok, key=key, event_types=["own.*"])
        self.addCleanup(self.srv.request, "DELETE", "/v1/subscriptions/" + sub["id"], key=key)
        lat = self.timed_deliveries(ok, key, 20, etype="own.t")
        self.assertPrompt(lat, "tenant A's healthy subscription beside its own hanging ones")


class TenantCapTests(FairnessCase):
    """A tenant holds at most --delivery-max-in-flight-per-tenant attempts at
    once, whatever its subscriptions allow: its hanging endpoints cannot take
    the connections (file descriptors) every other tenant needs."""

    server_args = ARGS + ["--delivery-max-in-flight-per-tenant", "24",
                          "--delivery-max-in-flight", "40"]

    def test_tenant_cap_bounds_a_hanging_tenant_and_others_still_deliver(self):
        _, hang_paths, t0 = self.hanging_tenant()
        got = self.rcv.wait_for(None, 24, TIMEOUT_S - 2, pred=lambda r: r.path in hang_paths)
        self.assertEqual(len(got), 24)
        key_b = make_key(self.srv, unique_tenant("ok-b"), ["ingest", "read", "manage"])["key"]
        ok = self.path("ok")
        sub = self.create_sub(ok, key=key_b)
        self.addCleanup(self.srv.request, "DELETE", "/v1/subscriptions/" + sub["id"], key=key_b)
        lat = self.timed_deliveries(ok, key_b, 20)
        self.assertPrompt(lat, "tenant B beside tenant A at its cap")
        # Until A's first attempts time out (t0 + TIMEOUT_S), no more than the
        # cap of A's attempts reached the receiver.
        self.assertLess(time.monotonic(), t0 + TIMEOUT_S - 0.5,
                        "the measurement overran the first timeout: cannot judge the cap")
        self.assertEqual(len(concurrent_hangs(self.rcv, hang_paths, t0 + TIMEOUT_S - 0.5)), 24,
                         "tenant A exceeded --delivery-max-in-flight-per-tenant 24")

    def test_bad_cap_flags_are_refused(self):
        for args, mention in (
                (["--delivery-max-in-flight", "0"], "--delivery-max-in-flight must be"),
                (["--delivery-max-in-flight", "10", "--delivery-max-in-flight-per-tenant", "11"],
                 "--delivery-max-in-flight-per-tenant must be"),
                (["--delivery-max-in-flight-per-tenant", "0"],
                 "--delivery-max-in-flight-per-tenant must be")):
            with tempfile.TemporaryDirectory() as d:
                p = run_cli("serve", "--listen", "127.0.0.1:0", "--data-dir", d, *args)
                self.assertEqual(p.returncode, 2, "%r: %s" % (args, p.stderr))
                self.assertIn(mention, p.stderr, args)
                self.assertEqual(os.listdir(d), [], "a refused start wrote to the data dir")


if __name__ == "__main__":
    unittest.main()
