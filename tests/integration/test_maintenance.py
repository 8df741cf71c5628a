"""Maintenance that starves nothing else: a large retention purge runs in
bounded chunks (the SQLite write lock is released between them, each pass
stops after about a second) on its own thread, so while it runs a key revoked
with the offline CLI is refused within 5 s (SPEC 3) and ingest latency stays
bounded; a shutdown in the middle of it is prompt. SQLite only: the backlog
is written straight into the database file before the server starts.

Run from the repo root: /usr/bin/python3 -m unittest -v tests/integration/test_maintenance.py
"""

import os
import sqlite3
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (STORE, ServerTestCase, fake_ulid, make_key, run_cli,  # noqa: E402
                     unique_tenant)

REVOKED_WITHIN_S = 5.0
# The purge takes the store's write lock in chunks of about 5 ms, handed to
# waiters in arrival order: an ingest commit waits for one chunk, not a pass.
# Before that the purge thread took the lock back before a woken ingest
# commit could (p99 268 ms, max 1.02 s here; 107 ms with the lock handed
# over in order but chunks of 1,000 rows); now p99 16-21 ms.
_SLOW = 2 if os.environ.get("TRIGGERS_TEST_SANITIZED") == "1" else 1
INGEST_P99_BOUND_S = 0.1 * _SLOW
# Expired rows written before the start: each an event, a finished delivery
# and its attempt. The server before this change spent well over 5 s in one
# unbounded purge statement holding the write lock on 200,000. The chunked
# purge pauses while this test's ingest waits (at most a quarter of the
# writer): 50,000 took it 42-49 s here, so the backlog is 25,000 (12,500
# under ASan; CI time), still far longer than the refusal (~1 s) and
# hundreds of ingests to take the p99 of. The shutdown test needs only a
# purge in progress (each pass is bounded to ~1 s).
BACKLOG = int(os.environ.get("TRIGGERS_IT_PURGE_BACKLOG", str(25000 // _SLOW)))
SHUTDOWN_BACKLOG = BACKLOG // 2
DAY_MS = 24 * 3600 * 1000


def fill_expired(db_path, n, tenant):
    """Writes n expired events, n finished deliveries (one attempt each) of
    them, 30 days old, into the store at db_path (the server is stopped)."""
    old = int(time.time() * 1000) - 30 * DAY_MS
    con = sqlite3.connect(db_path)
    try:
        con.execute("PRAGMA synchronous=OFF")
        batch = 20000
        for start in range(0, n, batch):
            rows = range(start, min(n, start + batch))
            ids = [("evt_%s" % fake_ulid(old), "dlv_%s" % fake_ulid(old)) for _ in rows]
            con.executemany(
                "INSERT INTO events(id,tenant,type,data,received_at) VALUES(?,?,'fill.t','{}',?)",
                [(e, tenant, old) for e, _ in ids])
            con.executemany(
                "INSERT INTO deliveries(id,tenant,event_id,subscription_id,status,attempts,"
                "next_attempt_at,created_at,updated_at) VALUES(?,?,?,'sub_gone','succeeded',1,"
                "NULL,?,?)",
                [(d, tenant, e, old, old) for e, d in ids])
            con.executemany(
                "INSERT INTO delivery_attempts(delivery_id,n,at,status_code,latency_ms,"
                "response_snippet) VALUES(?,1,?,200,5,'')", [(d, old) for _, d in ids])
            con.commit()
    finally:
        con.close()


def count_rows(db_path):
    con = sqlite3.connect(db_path)
    try:
        return {t: con.execute("SELECT count(*) FROM %s" % t).fetchone()[0]
                for t in ("events", "deliveries", "delivery_attempts")}
    finally:
        con.close()


class Ingester:
    """Ingests one event at a time on a thread, recording each latency."""

    def __init__(self, srv, key):
        self.srv, self.key = srv, key
        self.latencies, self.failures = [], []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                r = self.srv.request("POST", "/v1/events", {"type": "live.t", "data": {}},
                                     key=self.key, timeout=30)
                status = r.status
            except OSError as e:
                status = repr(e)
            self.latencies.append(time.monotonic() - t0)
            if status != 202:
                self.failures.append(status)
            time.sleep(0.01)

    def finish(self):
        self.stop.set()
        self.thread.join(60)

    def p99(self):
        s = sorted(self.latencies)
        return s[min(len(s) - 1, int(len(s) * 0.99))] if s else None


@unittest.skipIf(STORE != "sqlite", "the backlog is written into the SQLite file")
class PurgeStarvesNothingTest(ServerTestCase):
    shared_server = False

    def test_revocation_and_ingest_while_a_large_purge_runs(self):
        srv = self.start_server(args=["--purge-interval", "1h"])
        tenant = unique_tenant("maint")
        victim = make_key(srv, tenant, ["read"])
        ingest_key = make_key(srv, tenant, ["ingest"])["key"]
        self.assertEqual(srv.request("GET", "/v1/events", key=victim["key"]).status, 200)
        self.assertEqual(srv.stop(), 0)
        db = os.path.join(srv.data_dir, "triggers.db")
        fill_expired(db, BACKLOG, tenant)

        srv.start()  # the first purge pass starts at once
        ingester = Ingester(srv, ingest_key)
        # Cached now: only the refresh can tell this server of the revocation.
        self.assertEqual(srv.request("GET", "/v1/events", key=victim["key"]).status, 200)
        try:
            # Whatever the purge does, the refresh thread sees the CLI's revocation.
            t0 = time.monotonic()
            p = run_cli("keys", "revoke", victim["id"], "--data-dir", srv.data_dir, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr[-2000:])
            refused_after, purged_before_refusal = None, None
            while time.monotonic() - t0 < 30:
                if srv.request("GET", "/v1/events", key=victim["key"]).status == 401:
                    refused_after = time.monotonic() - t0
                    purged_before_refusal = self.purge_complete(srv)
                    break
                time.sleep(0.05)
            deadline = time.monotonic() + 300
            while not self.purge_complete(srv) and time.monotonic() < deadline:
                time.sleep(0.2)
            self.assertTrue(self.purge_complete(srv), "the purge did not complete within 300 s")
        finally:
            ingester.finish()
        passes = [l for l in srv.log_json() if l.get("msg") == "retention purge"]
        sys.stderr.write("\n  revocation refused after %s s; ingest p99 %.3f s, max %.3f s, "
                         "%d requests; %d purge passes, %d chunks, %d ms\n"
                         % ("%.2f" % refused_after if refused_after else "-", ingester.p99() or 0,
                            max(ingester.latencies or [0]), len(ingester.latencies), len(passes),
                            sum(l.get("chunks", 0) for l in passes),
                            sum(l.get("ms", 0) for l in passes)))
        self.assertIsNotNone(refused_after, "the revoked key was still accepted after 30 s")
        self.assertLess(refused_after, REVOKED_WITHIN_S,
                        "revocation took %.2f s while the purge ran" % refused_after)
        self.assertFalse(purged_before_refusal, "the purge ended before the key was refused: "
                         "make TRIGGERS_IT_PURGE_BACKLOG larger")
        self.assertEqual(ingester.failures, [])
        self.assertGreater(len(ingester.latencies), 20)
        self.assertLess(ingester.p99(), INGEST_P99_BOUND_S,
                        "ingest p99 %.3f s during the purge (max %.3f s, %d requests)"
                        % (ingester.p99(), max(ingester.latencies), len(ingester.latencies)))
        self.assertGreater(len(passes), 1, "one pass did all: not bounded")
        self.assertEqual(sum(l.get("deliveries_deleted", 0) for l in passes), BACKLOG)
        self.assertEqual(sum(l.get("events_deleted", 0) for l in passes), BACKLOG)
        self.assertEqual(srv.stop(), 0)
        self.assertEqual(count_rows(db), {"events": len(ingester.latencies) -
                                          len(ingester.failures), "deliveries": 0,
                                          "delivery_attempts": 0})

    def test_shutdown_during_a_large_purge_is_prompt(self):
        srv = self.start_server(args=["--purge-interval", "1h"])
        self.assertEqual(srv.stop(), 0)
        db = os.path.join(srv.data_dir, "triggers.db")
        fill_expired(db, SHUTDOWN_BACKLOG, unique_tenant("maint"))
        srv.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
                l.get("msg") == "retention purge" and l.get("complete") == "no"
                for l in srv.log_json()):
            time.sleep(0.1)
        self.assertFalse(self.purge_complete(srv), "the purge ended before the shutdown")
        t0 = time.monotonic()
        self.assertEqual(srv.stop(timeout=30), 0)
        took = time.monotonic() - t0
        self.assertLess(took, 5.0, "shutdown took %.2f s while the purge ran" % took)
        left = count_rows(db)
        self.assertGreater(left["deliveries"], 0)  # stopped midway, consistent
        self.assertLess(left["deliveries"], SHUTDOWN_BACKLOG)
        self.assertEqual(left["delivery_attempts"], left["deliveries"])  # gone together

    def test_the_pass_that_finds_nothing_left_says_complete(self):
        # Every pass one round of 1,000-row chunks: the second deletes the last
        # full chunk and stops with `complete: no`; the third finds nothing
        # left. It must still log `complete: yes` (it did not: a CI run waited
        # 300 s for that line when a 1 s pass ended exactly on a full chunk).
        n = 2000
        srv = self.start_server(args=["--purge-interval", "1h"],
                                env={"TRIGGERS_TEST_PURGE_BUDGET_MS": "0"})
        self.assertEqual(srv.stop(), 0)
        db = os.path.join(srv.data_dir, "triggers.db")
        fill_expired(db, n, unique_tenant("maint"))
        srv.start()
        deadline = time.monotonic() + 30
        while not self.purge_complete(srv) and time.monotonic() < deadline:
            time.sleep(0.1)
        passes = [l for l in srv.log_json() if l.get("msg") == "retention purge"]
        self.assertTrue(self.purge_complete(srv), "no complete pass logged: %r" % passes)
        self.assertEqual([l.get("complete") for l in passes], ["no", "no", "yes"])
        self.assertEqual(sum(l.get("events_deleted", 0) for l in passes), n)
        self.assertEqual(sum(l.get("deliveries_deleted", 0) for l in passes), n)
        self.assertEqual(srv.stop(), 0)
        self.assertEqual(count_rows(db), {"events": 0, "deliveries": 0, "delivery_attempts": 0})

    @staticmethod
    def is_complete_pass(line):
        # (builds before the purge was bounded logged one line, without "complete")
        return line.get("msg") == "retention purge" and line.get("complete", "yes") == "yes"

    def purge_complete(self, srv):
        return any(self.is_complete_pass(l) for l in srv.log_json())

if __name__ == "__main__":
    unittest.main()
