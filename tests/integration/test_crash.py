"""Durability: every event acknowledged with 202 survives kill -9.

16 threads ingest concurrently, each on its own keep-alive connection with
unique data; once at least 200 events are acknowledged and ~1.5 s have passed
the server is SIGKILLed, restarted on the same data dir, and every acknowledged
id must be readable with the right data. CRASH_RUNS (default 1) repeats the
ingest/kill/restart cycle on the same data dir, re-checking everything acked so far.

Run from the repo root: /usr/bin/python3 -m unittest tests/integration/test_crash.py
"""

import http.client
import json
import os
import secrets
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import EVT_ID_RE, ServerTestCase, make_key, unique_tenant  # noqa: E402

THREADS = 16
MIN_ACKED = 200
MIN_INGEST_S = 1.5
ACK_DEADLINE_S = 30.0
VERIFY_THREADS = 8


class CrashTests(ServerTestCase):
    shared_server = False

    def test_acked_events_survive_sigkill(self):
        runs = int(os.environ.get("CRASH_RUNS", "1"))
        srv = self.start_server()
        key = make_key(srv, unique_tenant("crash"), ["ingest", "read"])["key"]
        acked = {}  # event id -> (type, data text as sent)
        for run in range(runs):
            new = self.ingest_then_kill(srv, key, run)
            self.assertGreaterEqual(len(new), MIN_ACKED)
            self.assertFalse(set(new) & set(acked), "an id was handed out twice")
            acked.update(new)
            srv.start()  # same data dir
            self.verify(srv, key, acked, run)
        # still fully functional, and new ids sort after the old ones
        r = srv.request("POST", "/v1/events", {"type": "crash.after"}, key=key)
        self.assertEqual(r.status, 202, r.raw[:200])
        self.assertGreater(r.json["id"], max(acked))
        self.assertEqual(srv.request("GET", "/health").status, 200)
        self.assertEqual(srv.stop(), 0)

    def ingest_then_kill(self, srv, key, run):
        acked = {}
        lock = threading.Lock()
        killed = threading.Event()
        problems = []  # anything going wrong before the kill
        body_headers = {"Content-Type": "application/json", "Authorization": "Bearer " + key}

        def worker(tid):
            conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
            seq = 0
            try:
                while not killed.is_set():
                    etype = "crash.r%d.t%d" % (run, tid)
                    data = json.dumps({"run": run, "thread": tid, "seq": seq,
                                       "nonce": secrets.token_hex(8)}, separators=(",", ":"))
                    body = ('{"type":"%s","data":%s}' % (etype, data)).encode()
                    seq += 1
                    try:
                        conn.request("POST", "/v1/events", body=body, headers=body_headers)
                        resp = conn.getresponse()
                        raw = resp.read()
                    except (OSError, http.client.HTTPException) as e:
                        if killed.is_set():
                            return
                        with lock:
                            problems.append("thread %d: %r before the kill" % (tid, e))
                        return
                    if resp.status != 202:
                        if not killed.is_set():
                            with lock:
                                problems.append("thread %d: status %d %r" % (tid, resp.status, raw[:200]))
                        return
                    try:
                        eid = json.loads(raw)["id"]
                    except (ValueError, KeyError, TypeError):
                        with lock:
                            problems.append("thread %d: bad 202 body %r" % (tid, raw[:200]))
                        return
                    with lock:
                        acked[eid] = (etype, data)
            finally:
                conn.close()

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(THREADS)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        try:
            while True:
                with lock:
                    n, bad = len(acked), list(problems)
                elapsed = time.monotonic() - t0
                if bad:
                    self.fail("ingest failed before the kill: %s" % bad[:5])
                if n >= MIN_ACKED and elapsed >= MIN_INGEST_S:
                    break
                if elapsed > ACK_DEADLINE_S:
                    self.fail("only %d events acked in %.0f s" % (n, ACK_DEADLINE_S))
                if not any(t.is_alive() for t in threads):
                    self.fail("all ingest threads stopped (%d acked)" % n)
                time.sleep(0.01)
        finally:
            killed.set()
            srv.kill9()
            for t in threads:
                t.join(15)
        self.assertFalse(any(t.is_alive() for t in threads), "ingest threads hang after the kill")
        with lock:
            return dict(acked)

    def verify(self, srv, key, acked, run):
        items = sorted(acked.items())
        failures = []
        lock = threading.Lock()

        def checker(part):
            conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
            try:
                for eid, (etype, data) in part:
                    try:
                        conn.request("GET", "/v1/events/" + eid, headers={"Authorization": "Bearer " + key})
                        resp = conn.getresponse()
                        raw = resp.read()
                    except (OSError, http.client.HTTPException) as e:
                        conn.close()
                        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
                        with lock:
                            failures.append("%s: %r" % (eid, e))
                        continue
                    problem = None
                    if resp.status != 200:
                        problem = "status %d %r" % (resp.status, raw[:200])
                    else:
                        try:
                            got = json.loads(raw)
                        except ValueError:
                            got = None
                        if not isinstance(got, dict):
                            problem = "not JSON: %r" % raw[:200]
                        elif got.get("id") != eid or got.get("type") != etype:
                            problem = "wrong event %r" % raw[:200]
                        elif got.get("data") != json.loads(data) or data.encode() not in raw:
                            problem = "wrong data %r, expected %s" % (raw[:300], data)
                    if problem:
                        with lock:
                            failures.append("%s: %s" % (eid, problem))
            finally:
                conn.close()

        parts = [items[i::VERIFY_THREADS] for i in range(VERIFY_THREADS)]
        threads = [threading.Thread(target=checker, args=(p,), daemon=True) for p in parts]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertFalse(any(t.is_alive() for t in threads), "verification hangs")
        for eid in acked:
            self.assertRegex(eid, EVT_ID_RE)
        if failures:
            self.fail("run %d: %d of %d acked events lost or wrong, e.g. %s"
                      % (run, len(failures), len(acked), failures[:5]))


if __name__ == "__main__":
    unittest.main()
