"""GET /health/live and GET /health/ready (SPEC section 11): live is 200
while the process serves, ready is 200 when the store answers and the server
is not shutting down, else 503; GET /health unchanged. Runs on SQLite and on
PostgreSQL (integration_pg_probes stops and restarts the shared private
PostgreSQL server: it runs alone, RUN_SERIAL).

Run from the repo root: /usr/bin/python3 -m unittest tests/integration/test_probes.py
"""

import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pg  # noqa: E402
from harness import POSTGRES, RawConn, ServerTestCase  # noqa: E402

OUTAGE_DEADLINE_S = 10


class ProbeTests(ServerTestCase):
    def test_live_and_ready_are_200(self):
        for path in ("/health/live", "/health/ready"):
            with self.subTest(path=path):
                r = self.srv.request("GET", path)
                self.assertEqual(r.status, 200, r.raw[:200])
                self.assertEqual(r.json["status"], "ok")
        self.assertEqual(self.srv.request("GET", "/health/ready").json["checks"],
                         {"store": "ok", "shutting_down": False})

    def test_health_is_unchanged(self):
        r = self.srv.request("GET", "/health")
        self.assertEqual(r.status, 200)
        self.assertEqual(set(r.json), {"status", "checks", "version", "uptime_s"})
        self.assertEqual(r.json["checks"], {"store": "ok"})

    def test_probes_need_no_key_and_only_get(self):
        for path in ("/health/live", "/health/ready"):
            with self.subTest(path=path):
                r = self.srv.request("POST", path, body={})
                self.assertError(r, 405, "method_not_allowed")
                self.assertEqual(r.headers.get("allow"), "GET")
                self.assertEqual(self.srv.request("GET", path + "x").status, 404)


class ProbeStoreOutageTests(ServerTestCase):
    shared_server = False

    def wait_status(self, srv, path, status):
        deadline = time.monotonic() + OUTAGE_DEADLINE_S
        while True:
            r = srv.request("GET", path)
            if r.status == status or time.monotonic() > deadline:
                return r
            time.sleep(0.05)

    def assert_outage(self, srv):
        r = self.wait_status(srv, "/health/ready", 503)
        self.assertEqual(r.status, 503, r.raw[:200])
        self.assertEqual(r.json["checks"]["store"], "unavailable", r.raw[:200])
        self.assertIn("retry-after", r.headers)
        # liveness never asks the store: an orchestrator must not restart the node
        for _ in range(5):
            r = srv.request("GET", "/health/live")
            self.assertEqual(r.status, 200, r.raw[:200])
        self.assertEqual(srv.request("GET", "/health").status, 503)

    def assert_recovered(self, srv):
        r = self.wait_status(srv, "/health/ready", 200)
        self.assertEqual(r.status, 200, r.raw[:200])
        self.assertEqual(srv.request("GET", "/health/live").status, 200)

    @unittest.skipUnless(POSTGRES, "PostgreSQL store")
    def test_postgres_outage_live_200_ready_503(self):
        srv = self.start_server()
        self.assertEqual(srv.request("GET", "/health/ready").status, 200)
        pg.pg_stop_server()
        try:
            self.assert_outage(srv)
        finally:
            pg.pg_start_server()
        self.assert_recovered(srv)

    @unittest.skipIf(POSTGRES, "SQLite store")
    def test_sqlite_file_gone_live_200_ready_503(self):
        srv = self.start_server()
        self.assertEqual(srv.request("GET", "/health/ready").status, 200)
        db = os.path.join(srv.data_dir, "triggers.db")
        moved = db + ".away"
        os.rename(db, moved)
        try:
            self.assert_outage(srv)
        finally:
            os.rename(moved, db)
        self.assert_recovered(srv)


class ProbeShutdownTests(ServerTestCase):
    """During the drain after SIGTERM, a request already begun is answered:
    live 200, ready 503. Deterministic: each request is held open by
    `Expect: 100-continue` (the server's interim 100 proves it read the
    header) and finished after the "shutting down" log line."""
    shared_server = False

    def test_during_shutdown_live_200_ready_503(self):
        srv = self.start_server()
        conns = {}
        for path in ("/health/live", "/health/ready", "/health"):
            c = RawConn(srv)
            self.addCleanup(c.close)
            c.send(("GET %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                    "Expect: 100-continue\r\n\r\n" % path).encode())
            r = c.read_response()
            self.assertEqual(r.status, 100, path)
            conns[path] = c
        os.kill(srv.pid, signal.SIGTERM)
        self.assertIsNotNone(srv.wait_log(lambda o: o.get("msg") == "shutting down", 10),
                             "no 'shutting down' log line")
        got = {}
        for path, c in conns.items():
            c.send(b"x")
            got[path] = c.read_response()
        self.assertEqual(got["/health/live"].status, 200, got["/health/live"])
        self.assertEqual(got["/health/ready"].status, 503, got["/health/ready"])
        self.assertIn(b'"shutting_down":true', got["/health/ready"].body)
        self.assertEqual(got["/health"].status, 503)  # unchanged: 503 like every route
        self.assertEqual(srv.stop(sig=0, timeout=20), 0)


if __name__ == "__main__":
    unittest.main()
