"""Black-box tests of `triggers migrate-store`: the embedded SQLite store is
copied into an empty PostgreSQL database and a server on PostgreSQL, with the
same data directory, carries on where the SQLite one stopped.

A fresh database per test on the test PostgreSQL server whose URL is in
$TRIGGERS_TEST_PG_DIR/url (`scripts/test-pg start <dir>`; the ctest fixture
"pg" starts it). Without TRIGGERS_TEST_PG_DIR the tests are skipped.

Run from the repo root:
  scripts/test-pg start build/pg
  TRIGGERS_TEST_PG_DIR=build/pg /usr/bin/python3 -m unittest -v \
      tests/integration/test_migrate_store.py
"""

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pg  # noqa: E402
from harness import (  # noqa: E402
    KNOWN_SECRETS, ServerTestCase, fresh_pg_database, make_key, register_secret, run_cli,
    unique_tenant,
)
from receiver import Receiver  # noqa: E402

# 3 attempts at most: a failing webhook is `retrying` (due in about an hour)
# after two attempts, and `dead` after a retry and a third.
BASE_ARGS = ["--allow-private-destinations", "--retry-schedule", "200ms,1h",
             "--delivery-timeout", "2s"]
TABLES = ["api_keys", "subscriptions", "events", "idempotency", "deliveries",
          "delivery_attempts", "fanout_pending"]
PSQL = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"


def q(value):
    return urllib.parse.quote(str(value), safe="")


def psql(url, sql):
    """Runs sql with psql; returns the rows as lists of strings (unaligned, | separated)."""
    p = subprocess.run([PSQL, url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise AssertionError("psql failed (%d): %s" % (p.returncode, p.stderr[-2000:]))
    return [line.split("|") for line in p.stdout.splitlines() if line]


def expected_signature(secret, msg_id, ts, body):
    key = base64.b64decode(secret[len("whsec_"):])
    mac = hmac.new(key, msg_id.encode() + b"." + ts.encode() + b"." + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


class MigrateStoreCase(ServerTestCase):
    shared_server = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not pg.pg_dir():
            raise unittest.SkipTest("TRIGGERS_TEST_PG_DIR is not set (no test PostgreSQL)")

    # ---------------------------------------------------------------- helpers
    def fresh_database(self):
        """A new, empty database on the test server (dropped after the test); its URL."""
        return fresh_pg_database(self)

    def migrate(self, data_dir, url, expect_rc=0):
        p = run_cli("migrate-store", "--data-dir", data_dir, "--postgres-url", url, timeout=120)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, expect_rc,
                         "migrate-store exited %d\nstdout:\n%s\nstderr:\n%s"
                         % (p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
        if expect_rc != 0:
            lines = p.stderr.splitlines()
            self.assertEqual(len(lines), 1, "one line on stderr: %r" % p.stderr)
            self.assertTrue(lines[0].startswith("triggers: migrate-store: "), lines[0])
        self.assertNotIn("whsec_", out)
        for s in KNOWN_SECRETS:
            self.assertNotIn(s, out, "a plain key in migrate-store's output")
            self.assertNotIn(hashlib.sha256(s.encode()).hexdigest(), out,
                             "a key hash in migrate-store's output")
        return p

    def pg_counts(self, url):
        row = psql(url, "SELECT " + ",".join("(SELECT count(*) FROM %s)" % t for t in TABLES))[0]
        return dict(zip(TABLES, (int(x) for x in row)))

    def sqlite_counts(self, data_dir):
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data_dir, "triggers.db"), uri=True)
        try:
            return {t: db.execute("SELECT count(*) FROM " + t).fetchone()[0] for t in TABLES}
        finally:
            db.close()

    def summary_counts(self, stdout):
        got = {}
        for t in TABLES:
            m = re.search(r"^\s+%s\s+(\d+)\s*$" % t, stdout, re.M)
            self.assertIsNotNone(m, "no summary line for %s in:\n%s" % (t, stdout))
            got[t] = int(m.group(1))
        return got

    def get(self, srv, path, key, expect=200):
        """GET; returns (text, parsed JSON). The text is the body decoded as
        UTF-8 with each invalid byte read as U+FFFD: the SQLite store answers
        a response_snippet's bytes as they came, the PostgreSQL store (and so
        the copy) keeps them with U+FFFD in place of those that are not UTF-8."""
        r = srv.request("GET", path, key=key)
        self.assertStatus(r, expect, "GET " + path)
        text = r.raw.decode("utf-8", "replace")
        return text, json.loads(text)

    def pages(self, srv, path, key):
        """Every page of a list (raw bodies), following next_cursor."""
        raws, cursor = [], None
        for _ in range(100):
            sep = "&" if "?" in path else "?"
            p = path + sep + "limit=3" + ("&after=" + q(cursor) if cursor else "")
            text, obj = self.get(srv, p, key)
            raws.append(text)
            cursor = obj["next_cursor"]
            if cursor is None:
                return raws
        self.fail("pagination of %s does not end" % path)

    def snapshot(self, srv, key, admin):
        """What the API shows of the tenant, as raw response bodies."""
        snap = {"events": self.pages(srv, "/v1/events", key),
                "deliveries": self.pages(srv, "/v1/deliveries", key),
                "subscriptions": self.pages(srv, "/v1/subscriptions", key),
                "keys": self.pages(srv, "/v1/keys", admin)}
        for raw in snap["events"]:
            for ev in json.loads(raw)["data"]:
                snap["event " + ev["id"]] = self.get(srv, "/v1/events/" + ev["id"], key)[0]
        for raw in snap["deliveries"]:
            for d in json.loads(raw)["data"]:
                snap["delivery " + d["id"]] = self.get(srv, "/v1/deliveries/" + d["id"], key)[0]
        for raw in snap["subscriptions"]:
            for s in json.loads(raw)["data"]:
                snap["sub " + s["id"]] = self.get(srv, "/v1/subscriptions/" + s["id"], key)[0]
        return snap

    def delivery_of(self, srv, key, event_id, sub_id):
        text, obj = self.get(srv, "/v1/deliveries?limit=100&event_id=%s&subscription_id=%s"
                             % (event_id, sub_id), key)
        self.assertEqual(len(obj["data"]), 1, text[:500])
        return obj["data"][0]

    def wait_delivery(self, srv, key, dlv_id, pred, what, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            d = self.get(srv, "/v1/deliveries/" + dlv_id, key)[1]
            if pred(d):
                return d
            if time.monotonic() > deadline:
                self.fail("delivery %s: %s not reached; last %s" % (dlv_id, what, json.dumps(d)))
            time.sleep(0.05)

    def receive(self, srv, key, sub_id, **body):
        r = srv.request("POST", "/v1/subscriptions/%s/receive" % sub_id, body or None, key=key)
        self.assertStatus(r, 200, "receive")
        return r.json["data"]

    def settle(self, srv, key, sub_id, receipts, action="ack"):
        r = srv.request("POST", "/v1/subscriptions/%s/%s" % (sub_id, action),
                        {"receipts": list(receipts)}, key=key)
        self.assertStatus(r, 200, action)
        return r.json

    def ingest_raw(self, srv, key, body, headers=None, expect=202):
        r = srv.request("POST", "/v1/events", body, key=key, headers=headers)
        self.assertStatus(r, expect, "POST /v1/events %s" % repr(body)[:200])
        return r.json


class MigrateStoreTests(MigrateStoreCase):

    def test_everything_moves_and_the_server_carries_on(self):
        rcv = Receiver().start()
        self.addCleanup(rcv.stop)
        rcv.error("/fail", 500, body=b"no \xff\xfe thanks")  # a snippet that is not UTF-8
        rcv.ok("/ok")
        target = self.fresh_database()

        # ---- the SQLite server: keys, subscriptions, events, deliveries
        # admin_key=False: the server makes <data-dir>/admin.key, as in production.
        srv = self.start_server(args=BASE_ARGS + ["--store", "sqlite"], admin_key=False)
        admin = srv.admin_key
        self.assertTrue(admin)
        tenant = unique_tenant("mig")
        key = make_key(srv, tenant, ["ingest", "read", "manage", "consume"],
                       name="m\u00fcller")["key"]
        revoked = make_key(srv, tenant, ["read"])
        self.assertStatus(srv.request("DELETE", "/v1/keys/" + revoked["id"], key=admin), 204)

        def create_sub(**body):
            r = srv.request("POST", "/v1/subscriptions", body, key=key)
            self.assertStatus(r, 201, "POST /v1/subscriptions %r" % body)
            register_secret(r.json.get("secret"))
            return r.json

        gone = create_sub(url=rcv.url("/ok"), event_types=["order.*"])
        self.assertStatus(srv.request("DELETE", "/v1/subscriptions/" + gone["id"], key=key), 204)
        fail = create_sub(url=rcv.url("/fail"), event_types=["order.*"], max_in_flight=3,
                          rate_limit_per_s=1234.5678901234567,
                          description="caf\u00e9 \u2603\t\"q\"")
        ok = create_sub(url=rcv.url("/ok"), event_types=["order.*"],
                        filter={"data": {"n": [{"exists": True}]}})
        r = srv.request("POST", "/v1/subscriptions/%s/rotate-secret" % ok["id"], key=key)
        self.assertStatus(r, 200, "rotate-secret")
        old_secret, new_secret = ok["secret"], register_secret(r.json["secret"])
        pull = create_sub(kind="pull", event_types=["order.*"], max_receives=7)
        ordered = create_sub(kind="pull", event_types=["seq.*"], ordered=True)

        # Data with unicode, escapes, odd whitespace and exact numbers, byte for byte.
        body1 = ('{"type":"order.created","subject":"order/1","data" : \t{ "n":1, '
                 '"name":"Zo\u00eb \U0001F389 \u4e2d", "esc":"\\u00e9\\n\\"\\\\", '
                 '"ws":[1 ,\r\n\t2 , 3.50 ],"big":123456789012345678901234567890,'
                 '"e":1E+2, "nul":"\\u0000"} }').encode("utf-8")
        idem = {"Idempotency-Key": "order-1 created"}
        e1 = self.ingest_raw(srv, key, body1, headers=idem)
        self.assertFalse(e1["duplicate"])
        e2 = self.ingest_raw(srv, key, {"type": "order.paid", "data": {"n": 2, "s": "  x  "},
                                        "source": "shop \u00df", "ordering_key": "cust-7"})
        e3 = self.ingest_raw(srv, key, b'{"type":"order.shipped","data":{"n":3}}')
        seqs = [self.ingest_raw(srv, key, {"type": "seq.step", "data": {"i": i},
                                           "ordering_key": "k"})["id"] for i in range(3)]
        self.ingest_raw(srv, key, b'{"type":"misc.thing"}')  # matches nothing, data null

        # Webhooks: /ok succeeds; /fail is retrying after two attempts (next
        # one in an hour), and a retry of e1's makes it dead after a third.
        for e in (e1, e2, e3):
            d = self.delivery_of(srv, key, e["id"], ok["id"])
            self.wait_delivery(srv, key, d["id"], lambda d: d["status"] == "succeeded", "succeeded")
            d = self.delivery_of(srv, key, e["id"], fail["id"])
            self.wait_delivery(srv, key, d["id"], lambda d: d["status"] == "retrying" and
                               d["attempt_count"] == 2, "retrying after 2 attempts")
        dead = self.delivery_of(srv, key, e1["id"], fail["id"])
        self.assertStatus(srv.request("POST", "/v1/deliveries/%s/retry" % dead["id"], key=key), 202)
        self.wait_delivery(srv, key, dead["id"], lambda d: d["status"] == "dead", "dead")

        # Pull: e1 received and not acked (leased for an hour), e2 acked, e3 waits.
        m1 = self.receive(srv, key, pull["id"], max=1, visibility_timeout_s=3600)
        self.assertEqual([m["event"]["id"] for m in m1], [e1["id"]])
        m2 = self.receive(srv, key, pull["id"], max=1)
        self.assertEqual([m["event"]["id"] for m in m2], [e2["id"]])
        res = self.settle(srv, key, pull["id"], [m2[0]["receipt"]])["results"]
        self.assertEqual(res[0]["status"], "acked")

        # ---- migrate-store refuses while the server runs; the target stays empty
        p = self.migrate(srv.data_dir, target, expect_rc=1)
        self.assertIn("in use by PID %d" % srv.pid, p.stderr)
        self.assertIn("stop `triggers serve`", p.stderr)
        before = self.snapshot(srv, key, admin)
        self.assertEqual(srv.stop(), 0)

        # ---- the copy
        expected = self.sqlite_counts(srv.data_dir)
        self.assertEqual(expected, {"api_keys": 3, "subscriptions": 5, "events": 7,
                                    "idempotency": 1, "deliveries": 12, "delivery_attempts": 10,
                                    "fanout_pending": 0})
        p = self.migrate(srv.data_dir, target)
        self.assertEqual(self.summary_counts(p.stdout), expected, p.stdout)
        self.assertEqual(self.pg_counts(target), expected)
        self.assertIn("note: 7 delivery error texts", p.stdout)  # the non-UTF-8 snippets
        # Stored as the PostgreSQL store stores them: hashes in hex, scopes as numbers.
        rows = psql(target, "SELECT hash, scopes, admin FROM api_keys WHERE admin")
        self.assertEqual(rows, [[hashlib.sha256(admin.encode()).hexdigest(), "15", "t"]])
        rows = psql(target, "SELECT body_hash FROM idempotency")
        self.assertEqual(rows, [[hashlib.sha256(body1).hexdigest()]])
        # deliveries keep their seq, and new ones come after them.
        src = sqlite3.connect("file:%s?mode=ro" % os.path.join(srv.data_dir, "triggers.db"),
                              uri=True)
        try:
            seq_src = [list(map(str, r)) for r in
                       src.execute("SELECT id, seq FROM deliveries ORDER BY seq")]
        finally:
            src.close()
        self.assertEqual(psql(target, "SELECT id, seq FROM deliveries ORDER BY seq"), seq_src)

        # ---- the same data dir, on PostgreSQL
        admin_file = os.path.join(srv.data_dir, "admin.key")
        with open(admin_file) as f:
            self.assertEqual(f.read().strip(), admin)
        pgsrv = self.start_server(
            args=BASE_ARGS + ["--store", "postgres", "--postgres-url", target],
            data_dir=srv.data_dir, admin_key=False)
        self.assertEqual(pgsrv.admin_key, admin, "admin.key was rewritten")
        self.assertIsNone(pgsrv.wait_log(lambda o: o.get("msg") == "admin key created",
                                         timeout=0.2))
        self.assertTrue(pgsrv.wait_log(lambda o: o.get("msg") == "listening" and
                                       o.get("store") == "postgres", timeout=1))

        after = self.snapshot(pgsrv, key, admin)
        self.assertEqual(sorted(after), sorted(before))
        for name in before:
            self.assertEqual(after[name], before[name], name)
        # The events, byte for byte (the raw bodies are equal; data spelled out too).
        ev1 = pgsrv.request("GET", "/v1/events/" + e1["id"], key=key).raw
        self.assertIn(body1[body1.index(b"{ \"n\":1"):-2], ev1)

        # Keys: the tenant key and the admin key work, the revoked one does not.
        self.assertStatus(pgsrv.request("GET", "/v1/keys", key=admin), 200)
        self.assertEqual(pgsrv.request("GET", "/v1/events", key=revoked["key"]).status, 401)

        # The same Idempotency-Key and body: a duplicate of e1; another body: 409.
        dup = self.ingest_raw(pgsrv, key, body1, headers=idem)
        self.assertTrue(dup["duplicate"], dup)
        self.assertEqual(dup["id"], e1["id"])
        self.ingest_raw(pgsrv, key, body1.replace(b"order/1", b"order/2"), headers=idem, expect=409)

        # Pull: e3 is handed out; e1's lease (and receipt) survived the move.
        m3 = self.receive(pgsrv, key, pull["id"], max=10)
        self.assertEqual([m["event"]["id"] for m in m3], [e3["id"]])
        stored = json.loads(before["event " + e3["id"]])
        stored.pop("deliveries")
        self.assertEqual(m3[0]["event"], stored)
        res = self.settle(pgsrv, key, pull["id"], [m1[0]["receipt"], m3[0]["receipt"]])["results"]
        self.assertEqual([x["status"] for x in res], ["acked", "acked"])

        # Ordered pull: one at a time in ingestion order, a new event after the copied ones.
        s4 = self.ingest_raw(pgsrv, key, {"type": "seq.step", "data": {"i": 3},
                                          "ordering_key": "k"})["id"]
        got = []
        for _ in range(4):
            ms = self.receive(pgsrv, key, ordered["id"], max=10)
            self.assertEqual(len(ms), 1, ms)
            got.append(ms[0]["event"]["id"])
            self.settle(pgsrv, key, ordered["id"], [ms[0]["receipt"]])
        self.assertEqual(got, seqs + [s4])
        self.assertEqual(self.receive(pgsrv, key, ordered["id"], max=10), [])

        # Webhooks go on, signed with the new secret and the rotated one.
        e5 = self.ingest_raw(pgsrv, key, {"type": "order.refunded", "data": {"n": 5}})
        req = rcv.wait_for("/ok", 1, 15, pred=lambda r: r.headers.get("webhook-id") == e5["id"])
        self.assertTrue(req, "the new event reached /ok")
        h = req[0].headers
        sigs = h["webhook-signature"].split(" ")
        self.assertEqual(sigs, [expected_signature(s, h["webhook-id"], h["webhook-timestamp"],
                                                   req[0].body) for s in (new_secret, old_secret)])

        # ---- a second run refuses: the target is not empty
        p = self.migrate(srv.data_dir, target, expect_rc=1)
        self.assertIn("already holds Triggers data", p.stderr)
        self.assertIn("api_keys", p.stderr)
        counts = self.pg_counts(target)
        self.assertEqual(counts["api_keys"], 3)
        self.assertEqual(counts["events"], 9)

    def test_a_failure_leaves_the_target_empty(self):
        target = self.fresh_database()
        srv = self.start_server(args=["--store", "sqlite"])
        tenant = unique_tenant("mig")
        key = make_key(srv, tenant, ["ingest", "read"])["key"]
        events = [{"type": "bulk.item", "data": {"i": i}} for i in range(500)]
        for _ in range(5):
            r = srv.request("POST", "/v1/events/batch", {"events": events}, key=key)
            self.assertStatus(r, 200, "batch")
        last = self.ingest_raw(srv, key, {"type": "bulk.last", "data": {"i": -1}})
        self.assertEqual(srv.stop(), 0)
        # The last event's data becomes bytes PostgreSQL text cannot hold.
        db = sqlite3.connect(os.path.join(srv.data_dir, "triggers.db"))
        try:
            db.execute("UPDATE events SET data=CAST(X'7b22223a2280ff227d' AS TEXT) WHERE id=?",
                       (last["id"],))
            db.commit()
        finally:
            db.close()
        p = self.migrate(srv.data_dir, target, expect_rc=1)
        self.assertIn(last["id"], p.stderr)
        self.assertIn("data", p.stderr)
        # api_keys had been copied (and two chunks of events) in the transaction
        # that was rolled back.
        self.assertRegex(p.stdout, r"api_keys +1 of 1 rows")
        self.assertNotIn("committed", p.stdout)
        self.assertEqual(self.pg_counts(target), dict.fromkeys(TABLES, 0))

    def test_refusals(self):
        target = self.fresh_database()
        tmp = tempfile.mkdtemp(prefix="triggers-it-mig-")
        self.addCleanup(shutil.rmtree, tmp, True)

        # No store in the data dir (and nothing is created there).
        empty = os.path.join(tmp, "empty")
        os.makedirs(empty)
        p = self.migrate(empty, target, expect_rc=1)
        self.assertIn("no SQLite store", p.stderr)
        self.assertEqual(os.listdir(empty), [])

        # No --postgres-url: a usage error.
        p = run_cli("migrate-store", "--data-dir", empty)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--postgres-url", p.stderr)

        # An older schema: serve it once with this version first.
        old = os.path.join(tmp, "old")
        os.makedirs(old)
        db = sqlite3.connect(os.path.join(old, "triggers.db"))
        db.execute("CREATE TABLE api_keys(id TEXT)")
        db.execute("PRAGMA user_version=3")
        db.commit()
        db.close()
        p = self.migrate(old, target, expect_rc=1)
        self.assertIn("schema version 3", p.stderr)
        self.assertIn("triggers serve", p.stderr)

        # The target cannot be reached: a one-line error, no password in it.
        dead_url = "postgresql://triggers:s3cr3t-pw@127.0.0.1:1/x"
        srv = self.start_server(args=["--store", "sqlite"])
        self.assertEqual(srv.stop(), 0)
        p = self.migrate(srv.data_dir, dead_url, expect_rc=1)
        self.assertNotIn("s3cr3t-pw", p.stdout + p.stderr)
        self.assertIn("PostgreSQL", p.stderr)


if __name__ == "__main__":
    unittest.main()
