"""Per-tenant limits (SPEC 10): subscriptions per tenant, filter size, parked
receives and open streams. Reaching one is a 400 `limit_exceeded` whose
message names the limit and its flag, and changes nothing (no subscription
created or changed, no receive parked, no stream opened); freeing a slot lets
the next one in; another tenant is never affected.

Run on both stores (integration_limits, integration_pg_limits). On
PostgreSQL two nodes share one database: the subscriptions limit holds across
them, also when two creates race for the last slot (forced by holding the
tenant's generation row locked from psql while both nodes wait on it).
Parked receives and streams count per node.
"""

import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pg  # noqa: E402
from harness import STORE, ServerTestCase, make_key, run_cli, unique_tenant  # noqa: E402

MAX_SUBS = 3
MAX_FILTER = 200
MAX_PARKED = 2
MAX_STREAMS = 2
LIMIT_ARGS = ["--max-subscriptions-per-tenant", str(MAX_SUBS),
              "--max-filter-size", str(MAX_FILTER),
              "--max-parked-receives-per-tenant", str(MAX_PARKED),
              "--max-streams-per-tenant", str(MAX_STREAMS)]


def compact(v):
    """JSON as the server stores it (no whitespace): what --max-filter-size measures."""
    return json.dumps(v, separators=(",", ":"))


def filter_of_size(n):
    """A valid filter whose compact JSON is exactly n bytes."""
    base = compact({"data": {"k": [""]}})
    f = {"data": {"k": ["x" * (n - len(base))]}}
    assert len(compact(f)) == n
    return f


def gauge(server, name):
    """The value of an unlabelled gauge of GET /metrics."""
    r = server.request("GET", "/metrics")
    for line in r.raw.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no %s in /metrics" % name)


def in_thread(fn, *args):
    out = []
    t = threading.Thread(target=lambda: out.append(fn(*args)), daemon=True)
    t.start()
    return t, out


class Stream:
    """A raw live tail: sends GET /v1/events/stream and reads the response
    head; the connection stays open until close()."""

    def __init__(self, server, key):
        self.sock = socket.create_connection((server.host, server.port), timeout=10)
        self.sock.sendall(("GET /v1/events/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                           "%s\r\nAccept: text/event-stream\r\n\r\n" % key).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            head += chunk
        self.head = head.decode("latin-1")
        self.status = int(self.head.split(" ", 2)[1]) if self.head else 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class LimitTests(ServerTestCase):
    server_args = LIMIT_ARGS

    def setUp(self):
        super().setUp()
        self.tenant = unique_tenant("lim")
        self.key = make_key(self.srv, self.tenant, ["ingest", "read", "manage", "consume"])["key"]
        self.other = make_key(self.srv, unique_tenant("oth"),
                              ["ingest", "read", "manage", "consume"])["key"]

    def subscribe(self, key, server=None, **fields):
        return (server or self.srv).request("POST", "/v1/subscriptions",
                                            dict({"kind": "pull"}, **fields), key=key)

    def sub_ids(self, key, server=None):
        r = (server or self.srv).request("GET", "/v1/subscriptions?limit=1000", key=key)
        self.assertEqual(r.status, 200, r.raw[:300])
        return [s["id"] for s in r.json["data"]]

    # ------------------------------------------------------- subscriptions
    def test_subscriptions_per_tenant(self):
        made = []
        for _ in range(MAX_SUBS):
            r = self.subscribe(self.key)
            self.assertEqual(r.status, 201, r.raw[:300])
            made.append(r.json["id"])
        for body in ({}, {"kind": "webhook", "url": "https://hooks.example.com/x"}):
            r = self.subscribe(self.key, **body)
            self.assertError(r, 400, "limit_exceeded", "--max-subscriptions-per-tenant")
            self.assertIn("subscriptions per tenant", r.json["error"]["message"])
        self.assertEqual(sorted(self.sub_ids(self.key)), sorted(made), "a refused create stored one")
        # Disabled ones count too: the limit is on what is stored.
        r = self.srv.request("PATCH", "/v1/subscriptions/" + made[0], {"enabled": False},
                             key=self.key)
        self.assertEqual(r.status, 200, r.raw[:300])
        self.assertError(self.subscribe(self.key), 400, "limit_exceeded")
        # Another tenant is not affected.
        for _ in range(MAX_SUBS):
            self.assertEqual(self.subscribe(self.other).status, 201)
        # A deleted one frees its slot, for one more.
        r = self.srv.request("DELETE", "/v1/subscriptions/" + made[1], key=self.key)
        self.assertEqual(r.status, 204, r.raw[:300])
        self.assertEqual(self.subscribe(self.key).status, 201)
        self.assertError(self.subscribe(self.key), 400, "limit_exceeded",
                         "--max-subscriptions-per-tenant")
        self.assertEqual(len(self.sub_ids(self.key)), MAX_SUBS)

    # ----------------------------------------------------------- filter size
    def test_filter_size(self):
        r = self.subscribe(self.key, filter=filter_of_size(MAX_FILTER))
        self.assertEqual(r.status, 201, r.raw[:300])
        sub = r.json
        # (The harness sends JSON with spaces: measured as stored, they do not count.)
        r = self.srv.request("PATCH", "/v1/subscriptions/" + sub["id"],
                             {"description": "kept"}, key=self.key)
        self.assertEqual(r.status, 200)
        too_big = filter_of_size(MAX_FILTER + 1)
        r = self.subscribe(self.key, filter=too_big)
        err = self.assertError(r, 400, "limit_exceeded", "--max-filter-size")
        self.assertIn("%d bytes" % (MAX_FILTER + 1), err["message"])
        self.assertEqual(self.sub_ids(self.key), [sub["id"]], "a refused create stored one")
        # A PATCH too: refused, and the stored filter is unchanged.
        r = self.srv.request("PATCH", "/v1/subscriptions/" + sub["id"],
                             {"filter": too_big, "description": "changed"}, key=self.key)
        self.assertError(r, 400, "limit_exceeded", "--max-filter-size")
        got = self.srv.request("GET", "/v1/subscriptions/" + sub["id"], key=self.key).json
        self.assertEqual(got["filter"], filter_of_size(MAX_FILTER))
        self.assertEqual(got["description"], "kept")
        # The bound is on the bytes, not on the shape: an invalid pattern that
        # fits is still a validation error.
        r = self.subscribe(self.key, filter={"data": {"k": [{"nope": 1}]}})
        self.assertError(r, 400, "validation_error")

    # ------------------------------------------------------ parked receives
    def receive(self, key, sub_id, wait_s, server=None):
        return (server or self.srv).request(
            "POST", "/v1/subscriptions/%s/receive" % sub_id, {"max": 1, "wait_s": wait_s},
            key=key, timeout=wait_s + 15)

    def wait_parked(self, n, server=None):
        deadline = time.monotonic() + 10
        while gauge(server or self.srv, "triggers_parked_receives") != n:
            self.assertLess(time.monotonic(), deadline,
                            "parked receives did not reach %d" % n)
            time.sleep(0.02)

    def test_parked_receives_per_tenant(self):
        subs = []
        for i in range(MAX_SUBS):
            r = self.subscribe(self.key, event_types=["park.%d" % i])
            self.assertEqual(r.status, 201, r.raw[:300])
            subs.append(r.json["id"])
        other_sub = self.subscribe(self.other, event_types=["park.o"]).json["id"]
        self.assertEqual(gauge(self.srv, "triggers_parked_receives"), 0)
        waiting = [in_thread(self.receive, self.key, subs[i], 20) for i in range(MAX_PARKED)]
        self.wait_parked(MAX_PARKED)
        # One more of this tenant, on any of its subscriptions: refused at once, not parked.
        t0 = time.monotonic()
        r = self.receive(self.key, subs[2], 20)
        err = self.assertError(r, 400, "limit_exceeded", "--max-parked-receives-per-tenant")
        self.assertIn("per node", err["message"])
        self.assertLess(time.monotonic() - t0, 5.0)
        self.assertEqual(gauge(self.srv, "triggers_parked_receives"), MAX_PARKED)
        # A receive that does not wait is not limited.
        r = self.receive(self.key, subs[2], 0)
        self.assertEqual((r.status, r.json["data"]), (200, []))
        # Another tenant parks.
        other = in_thread(self.receive, self.other, other_sub, 20)
        self.wait_parked(MAX_PARKED + 1)
        # A message answers the first parked receive; its slot is free by the
        # time the answer arrives, so the next receive parks.
        r = self.srv.request("POST", "/v1/events", {"type": "park.0"}, key=self.key)
        self.assertEqual(r.status, 202, r.raw[:300])
        waiting[0][0].join(20)
        self.assertEqual(waiting[0][1][0].status, 200)
        self.assertEqual(len(waiting[0][1][0].json["data"]), 1)
        again = in_thread(self.receive, self.key, subs[2], 20)
        self.wait_parked(MAX_PARKED + 1)
        self.assertTrue(again[0].is_alive(), "the receive was not parked")
        # Let everyone go.
        for t in ("park.1", "park.2"):
            self.srv.request("POST", "/v1/events", {"type": t}, key=self.key)
        self.srv.request("POST", "/v1/events", {"type": "park.o"}, key=self.other)
        for t, out in (waiting[1], again, other):
            t.join(20)
            self.assertEqual(out[0].status, 200, out[0].raw[:300])
            self.assertEqual(len(out[0].json["data"]), 1)
        self.wait_parked(0)

    # ---------------------------------------------------------- open streams
    def open_stream(self, key):
        s = Stream(self.srv, key)
        self.addCleanup(s.close)
        return s

    def test_streams_per_tenant(self):
        mine = [self.open_stream(self.key) for _ in range(MAX_STREAMS)]
        self.assertEqual([s.status for s in mine], [200] * MAX_STREAMS)
        open_now = gauge(self.srv, "triggers_open_streams")
        r = self.srv.request("GET", "/v1/events/stream", key=self.key)
        err = self.assertError(r, 400, "limit_exceeded", "--max-streams-per-tenant")
        self.assertIn("per node", err["message"])
        self.assertEqual(gauge(self.srv, "triggers_open_streams"), open_now, "a stream was opened")
        other = self.open_stream(self.other)
        self.assertEqual(other.status, 200)
        # A stream the client closes frees its slot (the server notices at
        # once: it reads the connection while streaming).
        mine[0].close()
        deadline = time.monotonic() + 5
        while True:
            s = self.open_stream(self.key)
            if s.status == 200:
                break
            self.assertEqual(s.status, 400, s.head)
            self.assertLess(time.monotonic(), deadline, "a closed stream's slot never came back")
            time.sleep(0.05)
        r = self.srv.request("GET", "/v1/events/stream", key=self.key)
        self.assertError(r, 400, "limit_exceeded", "--max-streams-per-tenant")


class FlagTests(ServerTestCase):
    shared_server = False

    def test_bad_limit_values_are_refused_at_start(self):
        data_dir = tempfile.mkdtemp(prefix="triggers-it-")
        self.addCleanup(shutil.rmtree, data_dir, True)
        for flag, value in (("--max-subscriptions-per-tenant", "0"),
                            ("--max-filter-size", "12"),
                            ("--max-filter-size", "1MiB"),
                            ("--max-parked-receives-per-tenant", "0"),
                            ("--max-streams-per-tenant", "-1")):
            p = run_cli("serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir, flag, value)
            self.assertEqual(p.returncode, 2, "%s %s: %s" % (flag, value, p.stderr))
            self.assertIn(flag, p.stderr)

    def test_defaults(self):
        srv = self.start_server()
        key = make_key(srv, unique_tenant("def"), ["manage"])["key"]
        big = filter_of_size(4096)
        r = srv.request("POST", "/v1/subscriptions", {"kind": "pull", "filter": big}, key=key)
        self.assertEqual(r.status, 201, r.raw[:300])
        r = srv.request("POST", "/v1/subscriptions",
                        {"kind": "pull", "filter": filter_of_size(4097)}, key=key)
        self.assertError(r, 400, "limit_exceeded", "--max-filter-size")


@unittest.skipUnless(STORE == "postgres", "two nodes need PostgreSQL")
class TwoNodeSubscriptionLimitTests(ServerTestCase):
    shared_server = False

    def setUp(self):
        super().setUp()
        self.n1 = self.start_server(store="postgres", args=LIMIT_ARGS)
        self.n2 = self.start_server(share_with=self.n1, args=LIMIT_ARGS)
        self.dbname = self.n1.database.name
        self.tenant = unique_tenant("race")
        self.key = make_key(self.n1, self.tenant, ["manage", "read"])["key"]

    def create(self, node):
        return node.request("POST", "/v1/subscriptions", {"kind": "pull"}, key=self.key)

    def live(self):
        out = pg.psql("SELECT count(*) FROM subscriptions WHERE tenant='%s' AND deleted_at IS "
                      "NULL" % self.tenant, dbname=self.dbname)
        return int(out.strip())

    def test_the_limit_counts_every_node(self):
        for i in range(MAX_SUBS):
            self.assertEqual(self.create((self.n1, self.n2)[i % 2]).status, 201)
        for node in (self.n1, self.n2):
            self.assertError(self.create(node), 400, "limit_exceeded",
                             "--max-subscriptions-per-tenant")
        self.assertEqual(self.live(), MAX_SUBS)

    def test_two_nodes_racing_for_the_last_slot_get_one(self):
        for i in range(MAX_SUBS - 1):
            self.assertEqual(self.create(self.n1).status, 201)
        for rnd in range(3):
            held = pg.Session(self.dbname)
            self.addCleanup(held.close)
            # Both creates must wait behind this lock, so they meet at the
            # count with nothing between them but the database's ordering.
            held.run("BEGIN; SELECT 1 FROM subscription_generations WHERE tenant='%s' FOR UPDATE"
                     % self.tenant)
            t1, r1 = in_thread(self.create, self.n1)
            t2, r2 = in_thread(self.create, self.n2)
            deadline = time.monotonic() + 10
            while pg.waiting_on_locks(self.dbname) < 2:
                self.assertLess(time.monotonic(), deadline, "the creates did not wait")
                time.sleep(0.02)
            held.run("COMMIT")
            t1.join(15)
            t2.join(15)
            got = sorted([r1[0].status, r2[0].status])
            self.assertEqual(got, [201, 400], "round %d: %r %r" % (rnd, r1[0].raw[:200],
                                                                  r2[0].raw[:200]))
            refused = r1[0] if r1[0].status == 400 else r2[0]
            self.assertError(refused, 400, "limit_exceeded", "--max-subscriptions-per-tenant")
            self.assertEqual(self.live(), MAX_SUBS, "round %d" % rnd)
            # Free the slot for the next round.
            made = r1[0] if r1[0].status == 201 else r2[0]
            r = self.n2.request("DELETE", "/v1/subscriptions/" + made.json["id"], key=self.key)
            self.assertEqual(r.status, 204)


if __name__ == "__main__":
    unittest.main()
