"""A webhook subscription's limits hold across nodes (PostgreSQL only).

Two `triggers serve` processes on one fresh database of the private test
server (harness Server(share_with=...)), one webhook subscription, a real
receiver; both nodes dispatch:

- max_in_flight N: the receiver holds every request open for a while; it
  never has more than N of them open at once, counted across both nodes, and
  it does see N at once (the limit is reached, not just respected by luck);
- rate_limit_per_s R: the requests arriving in the first W seconds stay
  within one bucket (R tokens of burst + R*W), not two nodes' worth;
- circuit breaker: the receiver always answers 500; once 10 consecutive
  failures were seen (whichever nodes sent them), no node sends anything
  during the cool-down (5 s): a breaker opened by failures one node saw
  stops the other node as well.

Each bound is half of what two independent nodes would reach, so a per-node
limit fails it by a margin that cannot be mistaken for noise.

Run from the repo root, with a private server started by scripts/test-pg:
  scripts/test-pg start build/pg
  TRIGGERS_TEST_STORE=postgres TRIGGERS_TEST_PG_DIR=build/pg \\
    /usr/bin/python3 -m unittest -v tests/integration/test_cluster_limits.py
"""

import collections
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pg  # noqa: E402
from harness import ServerTestCase, make_key, register_secret, unique_tenant  # noqa: E402
from test_multinode import NodeReceiver, sender  # noqa: E402

NODE_ARGS = ["--allow-private-destinations", "--delivery-timeout", "5s",
             "--retry-schedule", "200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms,200ms"]
MAX_IN_FLIGHT = 4
HOLD_S = 1.0             # the receiver keeps each request open this long
IN_FLIGHT_EVENTS = 16    # 4 rounds of MAX_IN_FLIGHT
RATE = 10.0              # rate_limit_per_s
RATE_WINDOW_S = 3.0
RATE_EVENTS = 120        # more than two nodes could send in the window
BREAKER_THRESHOLD = 10   # CircuitBreaker::Options::failure_threshold
BREAKER_COOLDOWN_S = 5.0  # ... base_cooldown_ms
BREAKER_QUIET_S = 4.0    # checked: nothing at all for this long after the opening


@unittest.skipUnless(pg.pg_dir(), "needs the private PostgreSQL server: TRIGGERS_TEST_PG_DIR "
                     "(ctest: integration_pg_cluster_limits)")
class ClusterLimitTests(ServerTestCase):
    shared_server = False

    def setUp(self):
        super().setUp()
        self.n1 = self.start_server(args=NODE_ARGS, store="postgres")
        self.n2 = self.start_server(args=NODE_ARGS, share_with=self.n1)
        self.rcv = NodeReceiver().start()
        self.addCleanup(self.rcv.stop)
        self.rcv.pids = [self.n1.pid, self.n2.pid]
        self.key = make_key(self.n1, unique_tenant("cl"), ["ingest", "read", "manage"])["key"]

    def subscribe(self, path, **fields):
        """A webhook subscription to path; returns once node 2 knows it too."""
        r = self.n1.request("POST", "/v1/subscriptions", dict(fields, url=self.rcv.url(path)),
                            key=self.key)
        self.assertEqual(r.status, 201, r.raw[:300])
        register_secret(r.json["secret"])
        # A node reloads a tenant's subscriptions whole: once node 2 routes
        # to one made after this one, it knows this one as well.
        r = self.n1.request("POST", "/v1/subscriptions",
                            {"url": self.rcv.url("/pilot"), "event_types": ["pilot.*"]},
                            key=self.key)
        self.assertEqual(r.status, 201, r.raw[:300])
        register_secret(r.json["secret"])
        deadline = time.monotonic() + 10
        while True:
            r = self.n2.request("POST", "/v1/events", {"type": "pilot.e"}, key=self.key)
            self.assertEqual(r.status, 202, r.raw[:300])
            eid = r.json["id"]
            if self.rcv.wait_for("/pilot", 1, 0.3, pred=lambda q: q.headers["webhook-id"] == eid):
                return r.json["id"]
            self.assertLess(time.monotonic(), deadline, "node 2 never learnt the subscriptions")

    def ingest(self, etype, n):
        """n events, in batches (one commit each) on node 1; their ids."""
        ids = []
        for start in range(0, n, 100):
            batch = [{"type": etype, "data": {"i": i}} for i in range(start, min(n, start + 100))]
            r = self.n1.request("POST", "/v1/events/batch", {"events": batch}, key=self.key)
            self.assertEqual(r.status, 200, r.raw[:300])
            self.assertEqual(r.json["failed_count"], 0, r.raw[:300])
            ids += [res["id"] for res in r.json["results"]]
        return ids

    def senders(self, reqs):
        c = collections.Counter(sender(q) for q in reqs)
        return "node 1: %d, node 2: %d, unknown: %d" % (c[self.n1.pid], c[self.n2.pid], c[0])

    def test_max_in_flight_counts_both_nodes(self):
        self.rcv.ok("/held", delay=HOLD_S)
        self.subscribe("/held", event_types=["held.*"], max_in_flight=MAX_IN_FLIGHT)
        ids = self.ingest("held.e", IN_FLIGHT_EVENTS)
        missing = self.rcv.wait_for_ids("/held", ids, 60)
        self.assertEqual(missing, set(), "never delivered")
        # Open from arrival until the answer was written; a node frees its
        # slot only after that (when it records the outcome).
        deadline = time.monotonic() + HOLD_S + 10
        while any(self.rcv.answered_at(q) is None for q in self.rcv.requests("/held")):
            self.assertLess(time.monotonic(), deadline, "requests never answered")
            time.sleep(0.05)
        edges = []
        for q in self.rcv.requests("/held"):
            edges += [(q.t, 1), (self.rcv.answered_at(q), -1)]
        edges.sort(key=lambda e: (e[0], e[1]))  # an answer before an arrival at the same instant
        open_now = most = 0
        for _, d in edges:
            open_now += d
            most = max(most, open_now)
        sys.stderr.write("\n  [cluster] max_in_flight %d: at most %d open at once (%s)\n"
                         % (MAX_IN_FLIGHT, most, self.senders(self.rcv.requests("/held"))))
        self.assertLessEqual(most, MAX_IN_FLIGHT, "two nodes exceeded one max_in_flight")
        self.assertEqual(most, MAX_IN_FLIGHT, "the limit was never reached")

    def test_rate_limit_holds_across_both_nodes(self):
        self.rcv.ok("/rated")
        self.subscribe("/rated", event_types=["rated.*"], rate_limit_per_s=RATE,
                       max_in_flight=50)
        self.ingest("rated.e", RATE_EVENTS)
        first = self.rcv.wait_for("/rated", 1, 30)
        self.assertTrue(first, "nothing delivered")
        t0 = first[0].t
        time.sleep(max(0.0, t0 + RATE_WINDOW_S + 0.5 - time.monotonic()))
        window = [q for q in self.rcv.requests("/rated") if q.t <= t0 + RATE_WINDOW_S]
        # One bucket: a full burst (RATE) plus RATE per second; 2 of slack for
        # the time between a lease and the request's arrival.
        bound = RATE + RATE * RATE_WINDOW_S + 2
        sys.stderr.write("\n  [cluster] rate %g/s: %d requests in the first %.0f s (bound %d; %s)\n"
                         % (RATE, len(window), RATE_WINDOW_S, bound, self.senders(window)))
        self.assertLessEqual(len(window), bound, "two nodes exceeded one rate limit")
        self.assertGreaterEqual(len(window), RATE * RATE_WINDOW_S / 2, "the rate limit was not used")

    def test_breaker_opened_by_failures_stops_every_node(self):
        self.rcv.error("/down", 500)
        # One at a time (max_in_flight 1 across the nodes): the opening
        # failure is the 10th request exactly.
        self.subscribe("/down", event_types=["down.*"], max_in_flight=1)
        self.ingest("down.e", 30)
        got = self.rcv.wait_for("/down", BREAKER_THRESHOLD, 30)
        self.assertEqual(len(got), BREAKER_THRESHOLD, "fewer failures than the threshold")
        opened = self.rcv.answered_at(got[BREAKER_THRESHOLD - 1]) or got[-1].t
        time.sleep(max(0.0, opened + BREAKER_QUIET_S - time.monotonic()))
        reqs = self.rcv.requests("/down")
        after = [q for q in reqs[BREAKER_THRESHOLD:] if q.t < opened + BREAKER_QUIET_S]
        sys.stderr.write("\n  [cluster] breaker: %d failures (%s), then %d requests in the "
                         "next %.0f s (%s)\n" % (BREAKER_THRESHOLD,
                                                 self.senders(reqs[:BREAKER_THRESHOLD]), len(after),
                                                 BREAKER_QUIET_S, self.senders(after)))
        self.assertEqual(after, [], "a node kept sending while the breaker was open")
        # and after the cool-down, one probe (from either node) comes
        probe = self.rcv.wait_for("/down", BREAKER_THRESHOLD + 1, BREAKER_COOLDOWN_S + 10)
        self.assertEqual(len(probe), BREAKER_THRESHOLD + 1, "no probe after the cool-down")


if __name__ == "__main__":
    unittest.main()
