"""The database decides: subscription changes against concurrent ingest,
PATCH against rotate-secret, and (PostgreSQL, two nodes) late commits.

Run on both stores (integration_races, integration_pg_races). The two-node
cases run on PostgreSQL only and force each interleaving by holding a
transaction open from psql (pg.Session) while the nodes wait on it:

- a subscription created, disabled or deleted on node 1 applies to the very
  next event ingested on node 2 (whose cache still has the old state);
- a late commit: a transaction that took the commit-order lock and inserted
  an event is held open; node 2's ingest waits for it, and a client paging
  with a cursor meanwhile never skips either event;
- a DELETE and an ingest released together leave no pending delivery;
- a PATCH and a rotate-secret both blocked on the row, released together:
  both survive, and the stored secret is the one rotate-secret returned.

Single node (both stores): 8 subscriptions deleted under sustained ingest
leave no pending delivery behind; 200 PATCH/rotate-secret races lose nothing.
"""

import base64
import os
import sqlite3
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pg  # noqa: E402
from harness import (STORE, ServerTestCase, fake_ulid, make_key, register_secret,  # noqa: E402
                     unique_tenant)

# The commit-order lock the nodes take (src/store/postgres/pg_store.cc, ORDER_LOCK_SQL).
ORDER_LOCK = "SELECT pg_advisory_xact_lock(8390882784102868338)"
ROUNDS = 200


def stored_row(server, sub_id, column):
    """One column of a subscription row, read from the store itself."""
    if server.database is not None:
        out = pg.psql("SELECT %s FROM subscriptions WHERE id='%s'" % (column, sub_id),
                      dbname=server.database.name)
        return out.strip()
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(server.data_dir, "triggers.db"),
                         uri=True, timeout=10)
    try:
        row = db.execute("SELECT %s FROM subscriptions WHERE id=?" % column, (sub_id,)).fetchone()
        return row[0] if row else None
    finally:
        db.close()


def in_thread(fn, *args):
    """Runs fn(*args) in a thread; returns (thread, result list)."""
    out = []
    t = threading.Thread(target=lambda: out.append(fn(*args)), daemon=True)
    t.start()
    return t, out


class RaceHelpers:
    def subscribe(self, node, key, **fields):
        body = dict({"kind": "pull"}, **fields)
        r = node.request("POST", "/v1/subscriptions", body, key=key)
        self.assertEqual(r.status, 201, r.raw[:300])
        if r.json.get("secret"):
            register_secret(r.json["secret"])
        return r.json

    def ingest(self, node, key, etype, data=None):
        r = node.request("POST", "/v1/events", {"type": etype, "data": data}, key=key)
        self.assertEqual(r.status, 202, r.raw[:300])
        return r.json["id"]

    def deliveries(self, node, key, **query):
        rows, cursor = [], None
        while True:
            q = dict(query, limit=1000)
            if cursor:
                q["after"] = cursor
            r = node.request("GET", "/v1/deliveries?" + urllib.parse.urlencode(q), key=key)
            self.assertEqual(r.status, 200, r.raw[:300])
            rows += r.json["data"]
            cursor = r.json["next_cursor"]
            if not cursor:
                return rows

    def subs_of_event(self, node, key, event_id):
        return sorted(d["subscription_id"] for d in self.deliveries(node, key, event_id=event_id))


class SingleNodeRaceTests(RaceHelpers, ServerTestCase):
    def test_deletes_under_sustained_ingest_leave_no_pending_delivery(self):
        tenant = unique_tenant("del")
        key = make_key(self.srv, tenant, ["ingest", "read", "manage"])["key"]
        stop = threading.Event()
        accepted = []

        def produce():
            while not stop.is_set():
                r = self.srv.request("POST", "/v1/events/batch",
                                     {"events": [{"type": "load.t", "data": {"i": i}}
                                                 for i in range(20)]}, key=key)
                if r.status == 200:
                    accepted.append(len(r.json["results"]))

        producers = [threading.Thread(target=produce, daemon=True) for _ in range(4)]
        for p in producers:
            p.start()
        deleted = []
        try:
            for _ in range(8):
                sub = self.subscribe(self.srv, key)
                time.sleep(0.15)  # it gets deliveries meanwhile
                r = self.srv.request("DELETE", "/v1/subscriptions/" + sub["id"], key=key)
                self.assertEqual(r.status, 204, r.raw[:200])
                deleted.append(sub["id"])
                time.sleep(0.05)
        finally:
            stop.set()
            for p in producers:
                p.join(30)
        self.assertGreater(sum(accepted), 500, "the producers barely ran")
        left = {sid: [d["id"] for d in self.deliveries(self.srv, key, subscription_id=sid)
                      if d["status"] not in ("succeeded", "dead")] for sid in deleted}
        self.assertEqual({k: v for k, v in left.items() if v}, {},
                         "unfinished deliveries of deleted subscriptions")

    def test_patch_and_rotate_races_lose_nothing(self):
        tenant = unique_tenant("rot")
        key = make_key(self.srv, tenant, ["read", "manage"])["key"]
        sub = self.subscribe(self.srv, key, kind="webhook", url="https://hooks.example.com/r")
        barrier = threading.Barrier(2)

        def patch(i):
            barrier.wait(5)
            return self.srv.request("PATCH", "/v1/subscriptions/" + sub["id"],
                                    {"description": "round %d" % i}, key=key)

        def rotate(_):
            barrier.wait(5)
            return self.srv.request("POST", "/v1/subscriptions/%s/rotate-secret" % sub["id"],
                                    key=key)

        lost = []
        for i in range(ROUNDS):
            tp, p = in_thread(patch, i)
            tr, r = in_thread(rotate, i)
            tp.join(15)
            tr.join(15)
            self.assertEqual(p[0].status, 200, p[0].raw[:200])
            self.assertEqual(r[0].status, 200, r[0].raw[:200])
            secret = register_secret(r[0].json["secret"])
            if stored_row(self.srv, sub["id"], "secret") != secret:
                lost.append("round %d: the stored secret is not the one rotate-secret returned" % i)
            if stored_row(self.srv, sub["id"], "description") != "round %d" % i:
                lost.append("round %d: the PATCH was undone" % i)
        self.assertEqual(lost, [], "%d of %d races lost an update" % (len(lost), ROUNDS))


@unittest.skipUnless(STORE == "postgres", "two nodes need PostgreSQL")
class TwoNodeRaceTests(RaceHelpers, ServerTestCase):
    shared_server = False

    def setUp(self):
        super().setUp()
        self.n1 = self.start_server(store="postgres")
        self.n2 = self.start_server(share_with=self.n1)
        self.dbname = self.n1.database.name
        self.key = make_key(self.n1, unique_tenant("race"), ["ingest", "read", "manage",
                                                              "consume"])["key"]

    def session(self):
        s = pg.Session(self.dbname)
        self.addCleanup(s.close)
        return s

    def wait_blocked(self, n, what):
        deadline = time.monotonic() + 10
        while pg.waiting_on_locks(self.dbname) < n:
            if time.monotonic() > deadline:
                self.fail("%s did not wait for the held lock" % what)
            time.sleep(0.02)

    def test_a_subscription_change_on_one_node_applies_at_once_on_the_other(self):
        # Node 2's cache refreshes every second: each ingest below follows the
        # change on node 1 within milliseconds, so it is decided by the
        # database, not by node 2's cache.
        for i in range(10):
            sub = self.subscribe(self.n1, self.key, event_types=["made.%d" % i])
            eid = self.ingest(self.n2, self.key, "made.%d" % i)
            self.assertEqual(self.subs_of_event(self.n2, self.key, eid), [sub["id"]],
                             "round %d: no delivery for a subscription made on node 1" % i)
            r = self.n1.request("PATCH", "/v1/subscriptions/" + sub["id"], {"enabled": False},
                                key=self.key)
            self.assertEqual(r.status, 200, r.raw[:200])
            eid = self.ingest(self.n2, self.key, "made.%d" % i)
            self.assertEqual(self.subs_of_event(self.n2, self.key, eid), [],
                             "round %d: a delivery for a subscription disabled on node 1" % i)
            r = self.n1.request("PATCH", "/v1/subscriptions/" + sub["id"],
                                {"enabled": True, "event_types": ["moved.%d" % i]}, key=self.key)
            self.assertEqual(r.status, 200, r.raw[:200])
            eid = self.ingest(self.n2, self.key, "moved.%d" % i)
            self.assertEqual(self.subs_of_event(self.n2, self.key, eid), [sub["id"]],
                             "round %d: a filter changed on node 1 not applied on node 2" % i)
            r = self.n1.request("DELETE", "/v1/subscriptions/" + sub["id"], key=self.key)
            self.assertEqual(r.status, 204, r.raw[:200])
            eid = self.ingest(self.n2, self.key, "moved.%d" % i)
            self.assertEqual(self.subs_of_event(self.n2, self.key, eid), [],
                             "round %d: a delivery for a subscription deleted on node 1" % i)

    def test_a_parked_receive_wakes_for_an_event_ingested_on_the_other_node(self):
        sub = self.subscribe(self.n1, self.key, event_types=["wake.*"])
        t, got = in_thread(lambda: self.n1.request(
            "POST", "/v1/subscriptions/%s/receive" % sub["id"], {"max": 1, "wait_s": 15},
            key=self.key, timeout=30))
        time.sleep(0.3)  # parked
        t0 = time.monotonic()
        eid = self.ingest(self.n2, self.key, "wake.up")
        t.join(20)
        took = time.monotonic() - t0
        self.assertEqual(got[0].status, 200, got[0].raw[:200])
        self.assertEqual([m["event"]["id"] for m in got[0].json["data"]], [eid])
        self.assertLess(took, 5.0, "the parked receive woke only after %.1f s" % took)

    def test_a_late_commit_is_never_skipped_by_a_paging_client(self):
        first = self.ingest(self.n1, self.key, "page.first")
        tenant = pg.psql("SELECT tenant FROM events WHERE id='%s'" % first,
                         dbname=self.dbname).strip()
        # A slow node: it took the commit-order lock and inserted an event,
        # and has not committed yet.
        late_id = "evt_" + first[4:14] + "ZZZZZZZZZZZZZZZZ"  # sorts after `first`
        held = self.session()
        held.run("BEGIN; %s; INSERT INTO events(id,tenant,type,data,received_at) "
                 "VALUES('%s','%s','page.late','null',0)" % (ORDER_LOCK, late_id, tenant))
        t, posted = in_thread(self.ingest, self.n2, self.key, "page.after")
        self.wait_blocked(1, "node 2's ingest")
        self.assertTrue(t.is_alive(), "node 2 committed while an earlier transaction was open")
        page = self.n1.request("GET", "/v1/events?limit=100", key=self.key)
        self.assertEqual([e["id"] for e in page.json["data"]], [first])
        held.run("COMMIT")
        t.join(15)
        self.assertTrue(posted, "node 2's ingest did not finish after the commit")
        # The client goes on after the last event it saw.
        after = self.cursor_after(first)
        r = self.n1.request("GET", "/v1/events?limit=100&after=" + urllib.parse.quote(after),
                            key=self.key)
        self.assertEqual(r.status, 200, r.raw[:200])
        rest = [e["id"] for e in r.json["data"]]
        self.assertEqual(rest, [late_id, posted[0]], "events after the cursor, in commit order")

    def test_replay_finds_its_time_range_whatever_the_commit_order(self):
        # Two events committed in the opposite order of their ids (as nodes
        # whose writers made their ids before waiting for the commit-order
        # lock do): replay "all" over a time range takes both by id.
        first = self.ingest(self.n1, self.key, "rp.seed")
        tenant = pg.psql("SELECT tenant FROM events WHERE id='%s'" % first,
                         dbname=self.dbname).strip()
        now_ms = int(time.time() * 1000)
        later = "evt_" + fake_ulid(now_ms + 60_000)     # committed first
        earlier = "evt_" + fake_ulid(now_ms + 50_000)   # committed second
        for eid in (later, earlier):
            pg.psql("INSERT INTO events(id,tenant,type,data,received_at) VALUES('%s','%s',"
                    "'rp.t','null',%d)" % (eid, tenant, now_ms), dbname=self.dbname)
        sub = self.subscribe(self.n1, self.key, event_types=["rp.t"])
        def rfc3339(ms):
            return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + ".000Z"
        r = self.n1.request("POST", "/v1/subscriptions/%s/replay" % sub["id"],
                            {"since": rfc3339(now_ms + 55_000), "until": rfc3339(now_ms + 120_000),
                             "status": "all"}, key=self.key)
        self.assertEqual(r.status, 202, r.raw[:300])
        self.assertEqual(self.subs_of_event(self.n1, self.key, later), [sub["id"]],
                         "replay missed an event in its range committed before an older id")
        self.assertEqual(self.subs_of_event(self.n1, self.key, earlier), [],
                         "replay took an event before its range")

    @staticmethod
    def cursor_after(event_id):
        """The cursor a client holds after reading event_id (as the API encodes it)."""
        return base64.urlsafe_b64encode(("c1:" + event_id).encode()).decode().rstrip("=")

    def test_a_delete_racing_an_ingest_leaves_no_pending_delivery(self):
        for i in range(3):
            sub = self.subscribe(self.n1, self.key, event_types=["gone.*"])
            held = self.session()
            held.run("BEGIN; " + ORDER_LOCK)
            ti, ingested = in_thread(self.ingest, self.n2, self.key, "gone.t")
            td, deleted = in_thread(lambda: self.n1.request(
                "DELETE", "/v1/subscriptions/" + sub["id"], key=self.key))
            self.wait_blocked(2, "the ingest and the delete")
            held.run("COMMIT")
            ti.join(15)
            td.join(15)
            self.assertEqual(deleted[0].status, 204, deleted[0].raw[:200])
            self.assertTrue(ingested)
            left = [d for d in self.deliveries(self.n2, self.key, subscription_id=sub["id"])
                    if d["status"] not in ("succeeded", "dead")]
            self.assertEqual(left, [], "round %d: a pending delivery of a deleted "
                             "subscription" % i)

    def test_a_patch_racing_a_rotate_both_survive(self):
        sub = self.subscribe(self.n1, self.key, kind="webhook", url="https://hooks.example.com/x")
        held = self.session()
        held.run("BEGIN; SELECT 1 FROM subscriptions WHERE id='%s' FOR UPDATE" % sub["id"])
        tp, patched = in_thread(lambda: self.n1.request(
            "PATCH", "/v1/subscriptions/" + sub["id"], {"description": "patched"}, key=self.key))
        tr, rotated = in_thread(lambda: self.n2.request(
            "POST", "/v1/subscriptions/%s/rotate-secret" % sub["id"], key=self.key))
        self.wait_blocked(2, "the PATCH and the rotate")
        held.run("COMMIT")
        tp.join(15)
        tr.join(15)
        self.assertEqual(patched[0].status, 200, patched[0].raw[:200])
        self.assertEqual(rotated[0].status, 200, rotated[0].raw[:200])
        secret = register_secret(rotated[0].json["secret"])
        self.assertEqual(stored_row(self.n1, sub["id"], "secret"), secret)
        self.assertEqual(stored_row(self.n1, sub["id"], "description"), "patched")
        got = self.n2.request("GET", "/v1/subscriptions/" + sub["id"], key=self.key).json
        self.assertEqual(got["description"], "patched")


if __name__ == "__main__":
    unittest.main()
