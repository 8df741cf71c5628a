"""Fairness under a large fan-out (issue 12, case 1): one tenant with many
catch-all subscriptions sends one batch, which creates SUBS x EVENTS
deliveries; meanwhile another tenant posts single events one after another,
and none of them may wait for that whole fan-out. Also: the fan-out's
deliveries all exist, exactly once each; a DELETE during the fan-out stops
it for that subscription; and a SIGKILL in the middle of it loses nothing
(test-only hook TRIGGERS_TEST_FANOUT_PAUSE_AFTER_CHUNKS, see
docs/design.md, "Large fan-out").

The scale is the issue's (1,000 subscriptions x 500 events): writing its
500,000 rows in one transaction stalls the other tenant for about 6.5 s on
the 2-core machine, far above the bound asserted here. The figures are
printed. FANOUT_IT_UNBOUNDED=1 runs the server without the bound (the
test then fails).

Run from the repo root:
  /usr/bin/python3 -m unittest -v tests/integration/test_fanout.py
"""

import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import ServerTestCase, make_key, unique_tenant  # noqa: E402

ALL_SCOPES = ["ingest", "read", "manage", "consume"]
SUBS = 1000
EVENTS = 500
# The other tenant's slowest single-event ingest while the fan-out is written.
# Before the bound on rows per commit it waited for all SUBS x EVENTS rows
# (11-14 s on the 2-core VM, far longer under ASan); after, for at most one
# bounded chunk and its own commit (max 0.3-0.5 s, p99 50-90 ms). The ASan
# build is several times slower (seen: max 1.7 s / p99 163 ms on PostgreSQL,
# 3.5 s / 425 ms on SQLite), so its bounds are 4 times wider.
_SLOW = 4 if os.environ.get("TRIGGERS_TEST_SANITIZED") == "1" else 1
MAX_OTHER_LATENCY_S = 1.5 * _SLOW
P99_OTHER_LATENCY_S = 0.25 * _SLOW


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))]


class FanoutTest(ServerTestCase):
    shared_server = False

    def setup_tenant(self, srv, n_subs, prefix="fanout"):
        tenant = unique_tenant(prefix)
        key = make_key(srv, tenant, ALL_SCOPES)["key"]
        subs = []
        for _ in range(n_subs):
            r = srv.request("POST", "/v1/subscriptions", {"kind": "pull"}, key=key)
            self.assertEqual(r.status, 201, r.raw[:300])
            subs.append(r.json["id"])
        return key, subs

    def post_batch(self, srv, key, n, timeout=120.0):
        events = [{"type": "fan.out", "data": {"i": i}} for i in range(n)]
        r = srv.request("POST", "/v1/events/batch", {"events": events}, key=key, timeout=timeout)
        self.assertEqual(r.status, 200, r.raw[:300])
        self.assertEqual(r.json["failed_count"], 0, r.raw[:300])
        return [x["id"] for x in r.json["results"]]

    def deliveries_of_sub(self, srv, key, sub_id):
        """Every delivery of one subscription (event ids), paging by 1,000."""
        out, after = [], None
        while True:
            path = "/v1/deliveries?subscription_id=%s&limit=1000" % sub_id
            if after:
                path += "&after=" + after
            r = srv.request("GET", path, key=key)
            self.assertEqual(r.status, 200, r.raw[:300])
            out += [d["event_id"] for d in r.json["data"]]
            after = r.json.get("next_cursor")
            if not after:
                return out

    def pending_count(self, srv, key):
        r = srv.request("GET", "/v1/stats", key=key)
        self.assertEqual(r.status, 200, r.raw[:300])
        return r.json["deliveries"]["pending"]

    def wait_pending(self, srv, key, n, timeout=120.0):
        """Until the tenant has n pending deliveries (pull messages nobody
        received stay pending); returns the last count seen."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.pending_count(srv, key)
            if got >= n or time.monotonic() > deadline:
                return got
            time.sleep(2.0)  # the count is a GROUP BY over every delivery: not too often

    def test_other_tenant_not_stalled_by_fanout(self):
        # FANOUT_IT_UNBOUNDED=1: every row in the batch's commit, as before the
        # bound (to watch this test fail).
        unbounded = os.environ.get("FANOUT_IT_UNBOUNDED") == "1"
        srv = self.start_server(
            env={"TRIGGERS_TEST_FANOUT_ROWS_PER_COMMIT": "1000000000"} if unbounded else None)
        key_a, subs = self.setup_tenant(srv, SUBS, "fanout-a")
        key_b, _ = self.setup_tenant(srv, 1, "fanout-b")
        latencies = []
        done = threading.Event()
        errors = []

        def other_tenant():
            try:
                conn_deadline = time.monotonic() + 300
                while not done.is_set() and time.monotonic() < conn_deadline:
                    t0 = time.monotonic()
                    r = srv.request("POST", "/v1/events", {"type": "b.single", "data": {}},
                                    key=key_b, timeout=60)
                    latencies.append(time.monotonic() - t0)
                    if r.status != 202:
                        errors.append(r.raw[:200])
                        return
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        b = threading.Thread(target=other_tenant)
        b.start()
        try:
            time.sleep(0.3)  # B's baseline before the fan-out
            t0 = time.monotonic()
            ids = self.post_batch(srv, key_a, EVENTS)
            acked_s = time.monotonic() - t0
            # B keeps measuring until every delivery is written.
            self.assertEqual(self.wait_pending(srv, key_a, SUBS * EVENTS), SUBS * EVENTS)
            all_s = time.monotonic() - t0
        finally:
            done.set()
            b.join(timeout=120)
        self.assertFalse(errors, errors)
        p50, p99, worst = (percentile(latencies, 0.5), percentile(latencies, 0.99),
                           max(latencies))
        print("\nfan-out %d x %d: batch answered in %.2f s, all deliveries in %.2f s; "
              "other tenant: %d requests, p50 %.1f ms, p99 %.1f ms, max %.1f ms"
              % (SUBS, EVENTS, acked_s, all_s, len(latencies), p50 * 1e3, p99 * 1e3,
                 worst * 1e3), file=sys.stderr)
        for sub in (subs[0], subs[len(subs) // 2], subs[-1]):
            got = self.deliveries_of_sub(srv, key_a, sub)
            self.assertEqual(sorted(got), sorted(ids), "deliveries of %s" % sub)
        self.assertLess(worst, MAX_OTHER_LATENCY_S,
                        "the other tenant waited %.2f s for one event" % worst)
        self.assertLess(p99, P99_OTHER_LATENCY_S)


    # --- the pending fan-out itself, at a small scale: 50 subscriptions x 20
    # events with 100 rows per commit (2 events' deliveries in the batch's
    # commit, 9 chunks after it), paused by the test hook.
    SMALL_ENV = {"TRIGGERS_TEST_FANOUT_ROWS_PER_COMMIT": "100"}

    def small_fanout(self, pause_after_chunks):
        env = dict(self.SMALL_ENV, TRIGGERS_TEST_FANOUT_PAUSE_AFTER_CHUNKS=str(pause_after_chunks))
        srv = self.start_server(env=env)
        key, subs = self.setup_tenant(srv, 50, "fanout-small")
        ids = self.post_batch(srv, key, 20)
        self.assertIsNotNone(srv.wait_log(lambda o: o.get("msg") == "fan-out paused (test hook)",
                                          timeout=30), "the test hook did not pause")
        self.assertEqual(self.pending_count(srv, key), 100 + 100 * pause_after_chunks)
        return srv, key, subs, ids

    def check_complete(self, srv, key, subs, ids, deleted=()):
        self.assertEqual(self.wait_pending(srv, key, (len(subs) - len(deleted)) * len(ids), 60),
                         (len(subs) - len(deleted)) * len(ids))
        for sub in subs:
            got = self.deliveries_of_sub(srv, key, sub)
            if sub in deleted:
                self.assertEqual(got, [], "deliveries of the deleted %s" % sub)
            else:
                self.assertEqual(sorted(got), sorted(ids), "deliveries of %s" % sub)

    def test_pending_fanout_survives_sigkill(self):
        srv, key, subs, ids = self.small_fanout(pause_after_chunks=3)
        # The batch was answered 200 with 400 of its 1,000 deliveries written:
        # a crash now must lose none of the rest and write none twice.
        self.assertEqual(srv.kill9(), -signal.SIGKILL)
        srv.env = dict(self.SMALL_ENV)
        srv.start()
        self.check_complete(srv, key, subs, ids)

    def test_delete_during_fanout_stops_it(self):
        srv, key, subs, ids = self.small_fanout(pause_after_chunks=1)
        gone = subs[7]
        r = srv.request("DELETE", "/v1/subscriptions/" + gone, key=key)
        self.assertEqual(r.status, 204, r.raw[:300])
        # After the DELETE returned no delivery is created for it, also by the
        # rest of the fan-out written now.
        srv.env = dict(self.SMALL_ENV)
        srv.restart()
        self.check_complete(srv, key, subs, ids, deleted=(gone,))


if __name__ == "__main__":
    unittest.main()
