"""Several nodes on one PostgreSQL database (PostgreSQL only).

Two `triggers serve` processes share one fresh database of the private test
server (harness Server(share_with=...)):

- exactly once: 200 events ingested on both nodes, one webhook subscription,
  both nodes dispatching: every event arrives once, every delivery ends
  `succeeded` after one attempt, and both nodes sent some of them;
- a node dies: node 1 is SIGKILLed while its deliveries are in flight to a
  slow receiver; node 2 sends them again once their leases expire
  (--delivery-timeout + 5 s after they were taken), not before, and every
  delivery ends `succeeded`;
- shared state: a key revoked on node 1 is refused by node 2 within 5 s; a
  subscription created on node 1 gets the events ingested on node 2;
- outage: the PostgreSQL server is stopped: POST /v1/events answers 503
  (never a 2xx) and /health 503 on both nodes; once it is started again
  (same port, same data) both nodes accept events again without a restart and
  deliver the events ingested after the recovery.

The receiver tells which node sent each request: on arrival it looks up the
process on the other end of the TCP connection (/proc/net/tcp and
/proc/<pid>/fd), among the node PIDs.

The outage test stops the shared server (ctest runs this module with
RUN_SERIAL). Run from the repo root, with a private server started by
scripts/test-pg:
  scripts/test-pg start build/pg
  TRIGGERS_TEST_STORE=postgres TRIGGERS_TEST_PG_DIR=build/pg \\
    /usr/bin/python3 -m unittest -v tests/integration/test_multinode.py
  scripts/test-pg stop build/pg
"""

import collections
import os
import signal
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pg  # noqa: E402
import receiver  # noqa: E402
from harness import ServerTestCase, make_key, register_secret, unique_tenant  # noqa: E402

DELIVERY_TIMEOUT_S = 2
LEASE_S = DELIVERY_TIMEOUT_S + 5   # a delivery's lease: --delivery-timeout + 5 s
NODE_ARGS = ["--allow-private-destinations", "--delivery-timeout", "%ds" % DELIVERY_TIMEOUT_S,
             "--retry-schedule", "200ms,500ms,1s,1s,1s,1s,1s,1s"]
EVENTS = 200
SLOW_S = 1.0                       # the slow receiver answers after this (< the timeout)
KILL_EVENTS = 40
ROUTE_DEADLINE_S = 10.0            # a node learns another node's new subscription
REVOKE_DEADLINE_S = 5.0
RECOVERY_DEADLINE_S = 30.0
POLL_S = 0.05
SENDER = "x-test-sender-pid"


# ------------------------------------------------------------------ receiver
def _tcp_inode(local_port, remote_port):
    """The socket inode of the 127.0.0.1 TCP connection local_port -> remote_port."""
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            if (int(fields[1].rsplit(":", 1)[1], 16) == local_port
                    and int(fields[2].rsplit(":", 1)[1], 16) == remote_port):
                return fields[9]
    return None


def socket_owner(local_port, remote_port, pids):
    """The PID among pids with the TCP connection local_port -> remote_port open, or 0."""
    inode = _tcp_inode(local_port, remote_port)
    if not inode or inode == "0":
        return 0
    target = "socket:[%s]" % inode
    for pid in pids:
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == target:
                    return pid
            except OSError:
                pass
    return 0


class _SenderHandler(receiver._Handler):
    def parse_request(self):
        ok = super().parse_request()
        if ok:
            pid = socket_owner(self.client_address[1], self.server.server_address[1],
                               list(self.server.receiver.pids))
            self.headers[SENDER] = str(pid)
        return ok


class NodeReceiver(receiver.Receiver):
    """A Receiver whose requests carry the header x-test-sender-pid: the PID,
    among self.pids, of the process that sent it (0: none of them)."""

    handler_class = _SenderHandler

    def __init__(self):
        super().__init__()
        self.pids = []


def sender(req):
    return int(req.headers.get(SENDER) or 0)


# --------------------------------------------------------------------- tests
@unittest.skipUnless(pg.pg_dir(), "needs the private PostgreSQL server: TRIGGERS_TEST_PG_DIR "
                     "(ctest: integration_pg_multinode)")
class MultiNodeTests(ServerTestCase):
    shared_server = False

    # -------------------------------------------------------------- helpers
    def two_nodes(self, args=NODE_ARGS):
        n1 = self.start_server(args=args, store="postgres")
        n2 = self.start_server(args=args, share_with=n1)
        return n1, n2

    def receiver(self, *nodes):
        rcv = NodeReceiver().start()
        self.addCleanup(rcv.stop)
        rcv.pids = [n.pid for n in nodes]
        return rcv

    def subscribe(self, node, key, url, **fields):
        r = node.request("POST", "/v1/subscriptions", dict(fields, url=url), key=key)
        self.assertEqual(r.status, 201, r.raw[:300])
        register_secret(r.json["secret"])
        return r.json

    def ingest(self, node, key, etype, data=None):
        r = node.request("POST", "/v1/events", {"type": etype, "data": data}, key=key)
        self.assertEqual(r.status, 202, "%s: %s %r" % (node.addr, r.status, r.raw[:200]))
        return r.json["id"]

    def wait_routed(self, node, key, rcv, path, etype):
        """Ingest events of etype on node until one of them reaches path: node
        then knows the subscription (made on another node) behind path.
        Returns the seconds it took."""
        t0 = time.monotonic()
        probes = set()
        while True:
            probes.add(self.ingest(node, key, etype, {"probe": len(probes)}))
            got = rcv.wait_for(path, 1, 0.2, pred=lambda r: r.headers.get("webhook-id") in probes)
            if got:
                return time.monotonic() - t0
            if time.monotonic() - t0 > ROUTE_DEADLINE_S:
                self.fail("%s did not route events to a subscription made on another node "
                          "within %.0f s" % (node.addr, ROUTE_DEADLINE_S))

    def deliveries(self, node, key):
        rows, cursor = [], None
        while True:
            path = "/v1/deliveries?limit=1000"
            if cursor:
                path += "&after=" + urllib.parse.quote(cursor, safe="")
            r = node.request("GET", path, key=key)
            self.assertEqual(r.status, 200, r.raw[:300])
            rows += r.json["data"]
            cursor = r.json["next_cursor"]
            if not cursor:
                return rows

    def wait_all_succeeded(self, node, key, event_ids, deadline_s):
        """Poll the deliveries until those of event_ids are all `succeeded`; returns them."""
        want = set(event_ids)
        deadline = time.monotonic() + deadline_s
        while True:
            rows = [d for d in self.deliveries(node, key) if d["event_id"] in want]
            pending = [d for d in rows if d["status"] != "succeeded"]
            if not pending and {d["event_id"] for d in rows} == want:
                return rows
            if time.monotonic() > deadline:
                self.fail("%d of %d deliveries not succeeded within %.0f s, e.g. %r"
                          % (len(pending) + len(want - {d["event_id"] for d in rows}), len(want),
                             deadline_s, pending[:3]))
            time.sleep(0.2)

    def ingest_until_accepted(self, node, key, data, deadline):
        """POST /v1/events until 202 (the answer while the store is down is 503;
        anything else fails). Returns (event id, 503s seen before the 202)."""
        n503 = 0
        while True:
            r = node.request("POST", "/v1/events", {"type": "out.after", "data": data}, key=key)
            if r.status == 202:
                return r.json["id"], n503
            self.assertEqual(r.status, 503, "%s: %r" % (node.addr, r.raw[:200]))
            n503 += 1
            if time.monotonic() > deadline:
                self.fail("%s: ingest still answers 503 %.0f s after the database came back: %r"
                          % (node.addr, RECOVERY_DEADLINE_S, r.raw[:200]))
            time.sleep(POLL_S)

    # ---------------------------------------------------------------- tests
    def test_two_nodes_deliver_every_event_exactly_once(self):
        n1, n2 = self.two_nodes()
        rcv = self.receiver(n1, n2)
        rcv.ok("/a", delay=0.05)
        key = make_key(n1, unique_tenant("mn"), ["ingest", "read", "manage"])["key"]
        # max_in_flight 4 across both nodes, so neither takes everything at once
        self.subscribe(n1, key, rcv.url("/a"), event_types=["mn.*"], max_in_flight=4)
        self.wait_routed(n2, key, rcv, "/a", "mn.probe")

        ids = []
        for i in range(EVENTS):
            node = n2 if i % 4 == 3 else n1
            ids.append(self.ingest(node, key, "mn.event", {"i": i}))
        self.assertEqual(len(set(ids)), EVENTS)
        missing = rcv.wait_for_ids("/a", ids, 60)
        self.assertEqual(missing, set(), "%d of %d events never delivered" % (len(missing), EVENTS))
        rows = self.wait_all_succeeded(n2, key, ids, 30)

        # once succeeded, nothing is sent again: the counts are final
        per_id = collections.Counter(r.headers.get("webhook-id") for r in rcv.requests("/a"))
        twice = {e: n for e, n in per_id.items() if n > 1}
        self.assertEqual(twice, {}, "delivered more than once")
        self.assertEqual([d["id"] for d in rows if d["attempt_count"] != 1], [],
                         "deliveries with more than one attempt")
        self.assertEqual(len(rows), EVENTS, "one delivery row per event")
        senders = collections.Counter(sender(r) for r in rcv.requests("/a")
                                      if r.headers.get("webhook-id") in set(ids))
        sys.stderr.write("\n  [multinode] deliveries sent by node 1: %d, node 2: %d, unknown: %d\n"
                         % (senders[n1.pid], senders[n2.pid], senders[0]))
        self.assertGreater(senders[n1.pid], 0, "node 1 sent no delivery")
        self.assertGreater(senders[n2.pid], 0, "node 2 sent no delivery")

    def test_node_killed_mid_delivery_other_node_finishes_after_lease_expiry(self):
        n1, n2 = self.two_nodes()
        rcv = self.receiver(n1, n2)
        rcv.ok("/slow", delay=SLOW_S)
        key = make_key(n1, unique_tenant("mnkill"), ["ingest", "read", "manage"])["key"]
        self.subscribe(n1, key, rcv.url("/slow"), event_types=["kill.*"])
        batch = [{"type": "kill.t", "data": {"i": i}} for i in range(KILL_EVENTS)]
        r = n1.request("POST", "/v1/events/batch", {"events": batch}, key=key)
        self.assertEqual(r.status, 200, r.raw[:300])
        self.assertEqual(r.json["failed_count"], 0, r.raw[:300])
        ids = [res["id"] for res in r.json["results"]]

        def n1_waiting():
            return [q for q in rcv.requests("/slow")
                    if sender(q) == n1.pid and rcv.answer_started_at(q) is None]

        deadline = time.monotonic() + 15
        while not n1_waiting():
            if time.monotonic() > deadline:
                self.fail("node 1 never had a delivery in flight (senders: %r)"
                          % collections.Counter(sender(q) for q in rcv.requests("/slow")))
            time.sleep(POLL_S)
        self.assertEqual(n1.kill9(), -signal.SIGKILL)
        t_kill = time.monotonic()

        # cut off: sent by node 1, not answered before the kill
        def unanswered(q):
            at = rcv.answer_started_at(q)
            return at is None or at > t_kill
        first = {}
        for q in rcv.requests("/slow"):
            if q.t <= t_kill and sender(q) == n1.pid and unanswered(q):
                first.setdefault(q.headers["webhook-id"], q.t)
        self.assertTrue(first, "nothing of node 1 was in flight at the kill")

        rows = self.wait_all_succeeded(n2, key, ids, LEASE_S + 30)
        self.assertEqual(len(rows), KILL_EVENTS)
        self.assertEqual(rcv.wait_for_ids("/slow", ids, 1), set())
        again = {}
        for q in rcv.requests("/slow"):
            eid = q.headers["webhook-id"]
            if eid in first and q.t > t_kill and eid not in again:
                again[eid] = q
        self.assertEqual(set(first) - set(again), set(),
                         "deliveries cut off by the kill were never sent again")
        # A lease is taken just before the send and lasts LEASE_S: node 2 must
        # not take one that is still valid (2 s of slack for the time between
        # lease and arrival), and takes it soon after it expired.
        gaps = sorted(again[e].t - first[e] for e in first)
        sys.stderr.write("\n  [multinode] cut off by the kill: %d; sent again by node 2 "
                         "%.1f-%.1f s after the first attempt (lease %d s)\n"
                         % (len(first), gaps[0], gaps[-1], LEASE_S))
        for eid in first:
            self.assertEqual(sender(again[eid]), n2.pid, "re-sent by another process")
            gap = again[eid].t - first[eid]
            self.assertGreaterEqual(gap, LEASE_S - 2.0, "%s re-sent %.1f s after the first "
                                    "attempt: before its lease expired" % (eid, gap))
            self.assertLess(gap, LEASE_S + 10.0, "%s re-sent only %.1f s after the first attempt"
                            % (eid, gap))
        self.assertTrue(n2.running())
        self.assertEqual(n2.request("GET", "/health").status, 200)

    def test_revocation_and_subscriptions_reach_the_other_node(self):
        n1, n2 = self.two_nodes()
        tenant = unique_tenant("mnshare")
        # a key made on node 1 works on node 2 at once, and the other way round
        info = make_key(n1, tenant, ["ingest", "read"])
        self.assertEqual(n2.request("GET", "/v1/events", key=info["key"]).status, 200)
        other = make_key(n2, tenant, ["read"])["key"]
        self.assertEqual(n1.request("GET", "/v1/events", key=other).status, 200)

        r = n1.request("DELETE", "/v1/keys/" + info["id"], key=n1.admin_key)
        self.assertEqual(r.status, 204, r.raw[:200])
        self.assertEqual(n1.request("GET", "/v1/events", key=info["key"]).status, 401)
        t0 = time.monotonic()
        while True:
            r = n2.request("GET", "/v1/events", key=info["key"])
            took = time.monotonic() - t0
            if r.status != 200 or took > REVOKE_DEADLINE_S:
                break
            time.sleep(POLL_S)
        self.assertEqual(r.status, 401, "node 2 still accepts a key revoked on node 1 %.1f s "
                         "later: %r" % (took, r.raw[:200]))
        self.assertLessEqual(took, REVOKE_DEADLINE_S)
        took_revoke = took
        r = n2.request("POST", "/v1/events", {"type": "after.revoke"}, key=info["key"])
        self.assertEqual(r.status, 401, r.raw[:200])

        # a subscription made on node 1 gets the events ingested on node 2
        rcv = self.receiver(n1, n2)
        key = make_key(n1, tenant, ["ingest", "read", "manage"])["key"]
        self.subscribe(n1, key, rcv.url("/c"), event_types=["share.*"])
        took = self.wait_routed(n2, key, rcv, "/c", "share.probe")
        ids = [self.ingest(n2, key, "share.t", {"i": i}) for i in range(20)]
        missing = rcv.wait_for_ids("/c", ids, 30)
        self.assertEqual(missing, set(), "events ingested on node 2 not delivered")
        sys.stderr.write("\n  [multinode] node 2 refused the revoked key after %.1f s and "
                         "routed to the new subscription after %.1f s\n" % (took_revoke, took))

    def test_database_outage_503_then_recovery_without_restart(self):
        n1, n2 = self.two_nodes()
        pids = (n1.pid, n2.pid)
        rcv = self.receiver(n1, n2)
        key = make_key(n1, unique_tenant("mnout"), ["ingest", "read", "manage"])["key"]
        self.subscribe(n1, key, rcv.url("/d"), event_types=["out.*"])
        self.wait_routed(n2, key, rcv, "/d", "out.probe")
        before = [self.ingest(n, key, "out.before", {"n": i}) for i, n in enumerate((n1, n2))]
        self.assertEqual(rcv.wait_for_ids("/d", before, 20), set())

        pg.pg_stop_server()
        try:
            for node in (n1, n2):
                for i in range(5):
                    r = node.request("POST", "/v1/events", {"type": "out.during", "data": i},
                                     key=key)
                    self.assertFalse(200 <= r.status < 300, "%s acknowledged an event while "
                                     "the database is down: %r" % (node.addr, r.raw[:200]))
                    self.assertError(r, 503, "unavailable", msg=node.addr)
                    self.assertIn("retry-after", r.headers)
                t0 = time.monotonic()
                while True:
                    h = node.request("GET", "/health")
                    if h.status == 503 or time.monotonic() - t0 > 5:
                        break
                    time.sleep(POLL_S)
                self.assertEqual(h.status, 503, "%s /health during the outage: %r"
                                 % (node.addr, h.raw[:200]))
                self.assertEqual((h.json or {}).get("checks", {}).get("store"), "unavailable",
                                 h.raw[:200])
        finally:
            pg.pg_start_server()

        # Back without a restart: each node answers 202 again within the
        # deadline. Then 10 more events per node, each accepted at once.
        after = []
        late_503 = {}
        for node in (n1, n2):
            deadline = time.monotonic() + RECOVERY_DEADLINE_S
            eid, _ = self.ingest_until_accepted(node, key, {"first": True}, deadline)
            after.append(eid)
            late_503[node.addr] = 0
            for i in range(10):
                eid, n503 = self.ingest_until_accepted(node, key, {"i": i}, deadline)
                after.append(eid)
                late_503[node.addr] += n503
            while node.request("GET", "/health").status != 200:
                if time.monotonic() > deadline:
                    self.fail("%s: /health not 200 after the recovery" % node.addr)
                time.sleep(POLL_S)
        # Pooled connections that died with the old server are dropped when
        # taken (they are readable while idle), so once a node answers 202
        # again no request fails on a stale connection.
        self.assertEqual(late_503, {n1.addr: 0, n2.addr: 0},
                         "503s after a node's first 202 after the recovery")
        missing = rcv.wait_for_ids("/d", after, RECOVERY_DEADLINE_S)
        self.assertEqual(missing, set(), "%d of %d events ingested after the recovery never "
                         "delivered" % (len(missing), len(after)))
        for eid in before:
            self.assertEqual(n2.request("GET", "/v1/events/" + eid, key=key).status, 200)
        self.assertEqual((n1.pid, n2.pid), pids)
        self.assertTrue(n1.running() and n2.running(), "a node exited during the outage")


if __name__ == "__main__":
    unittest.main()


class PostgresUrlTests(unittest.TestCase):
    def test_a_malformed_url_is_refused_without_echoing_it(self):
        from harness import binary_path, clean_env
        import subprocess
        for url in ("postgresql://u:p%zzSECRETPW@127.0.0.1:1/db", "host=127.0.0.1 SECRETPW"):
            with self.subTest(url=url):
                p = subprocess.run([binary_path(), "keys", "list", "--store", "postgres",
                                    "--postgres-url", url], capture_output=True,
                                   env=clean_env(), timeout=30)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn(b"--postgres-url", p.stderr)
                self.assertNotIn(b"SECRETPW", p.stderr + p.stdout)
