"""GET /v1/events/stream (Server-Sent Events), `triggers tail`, and
GET /v1/stats, against the real binary over HTTP on 127.0.0.1.

Run from the repo root: /usr/bin/python3 -m unittest tests/integration/test_stream.py
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import ServerTestCase, binary_path, clean_env, make_key, unique_tenant  # noqa: E402
from receiver import Receiver  # noqa: E402


class SseClient:
    """A raw HTTP/1.1 client of the stream: sends the request, checks the
    header, then decodes chunked SSE frames on a thread into self.events."""

    def __init__(self, srv, key, query=""):
        self.sock = socket.create_connection((srv.host, srv.port), timeout=10)
        req = ("GET /v1/events/stream%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Accept: text/event-stream\r\n\r\n" % (query, key))
        self.sock.sendall(req.encode())
        self.buf = b""
        self.head = self._read_until(b"\r\n\r\n").decode("latin-1")
        self.status = int(self.head.split(" ", 2)[1])
        self.events = []
        self.comments = []
        self.closed = threading.Event()
        self.cv = threading.Condition()
        if self.status == 200:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()

    def _read_until(self, marker):
        while marker not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("closed before %r" % marker)
            self.buf += data
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _read_exact(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("closed")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _run(self):
        self.sock.settimeout(60)
        text = b""
        try:
            while True:
                size = int(self._read_until(b"\r\n").strip().split(b";")[0], 16)
                if size == 0:
                    break
                text += self._read_exact(size)
                self._read_exact(2)
                while b"\n\n" in text:
                    frame, text = text.split(b"\n\n", 1)
                    self._frame(frame.decode())
        except (EOFError, OSError, ValueError):
            pass
        finally:
            self.closed.set()
            with self.cv:
                self.cv.notify_all()

    def _frame(self, frame):
        fields = {"data": []}
        for line in frame.split("\n"):
            if line.startswith(":"):
                with self.cv:
                    self.comments.append(line[1:].strip())
                    self.cv.notify_all()
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                fields["data"].append(value)
            else:
                fields[name] = value
        if fields["data"]:
            with self.cv:
                self.events.append((fields.get("event"), fields.get("id"),
                                    json.loads("\n".join(fields["data"]))))
                self.cv.notify_all()

    def wait(self, pred, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self.cv:
            while not pred(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cv.wait(left)
        return True

    def close(self):
        # shutdown first: a plain close() does not end the connection while
        # the reader thread is still inside recv() on it.
        for op in (lambda: self.sock.shutdown(socket.SHUT_RDWR), self.sock.close):
            try:
                op()
            except OSError:
                pass


class StreamTest(ServerTestCase):
    server_args = ("--allow-private-destinations", "--retry-schedule", "1s")

    def setUp(self):
        super().setUp()
        self.tenant = unique_tenant()
        self.key = make_key(self.srv, self.tenant, ["ingest", "read", "manage"])["key"]
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        super().tearDown()

    def open(self, key=None, query=""):
        c = SseClient(self.srv, key or self.key, query)
        self.clients.append(c)
        return c

    def ingest(self, type_, data, key=None):
        r = self.srv.request("POST", "/v1/events", {"type": type_, "data": data}, key=key or self.key)
        self.assertEqual(r.status, 202, r.raw)
        return r.json["id"]

    def test_new_events_arrive_in_order_with_the_stored_shape(self):
        c = self.open()
        self.assertEqual(c.status, 200)
        self.assertIn("text/event-stream", c.head.lower())
        self.assertIn("transfer-encoding: chunked", c.head.lower())
        self.assertTrue(c.wait(lambda s: "connected" in s.comments), "no opening comment")
        ids = [self.ingest("order.created", {"n": i, "s": "é\u2028"}) for i in range(5)]
        self.assertTrue(c.wait(lambda s: len(s.events) >= 5), c.events)
        self.assertEqual([e[1] for e in c.events], ids)
        self.assertEqual({e[0] for e in c.events}, {"event"})
        stored = self.srv.request("GET", "/v1/events/" + ids[0], key=self.key).json
        got = c.events[0][2]
        for field in ("id", "type", "source", "subject", "ordering_key", "time", "data"):
            self.assertEqual(got[field], stored[field], field)

    def test_batch_and_type_glob(self):
        c = self.open(query="?type=order.*")
        other = self.open()
        r = self.srv.request("POST", "/v1/events/batch", {"events": [
            {"type": "order.created", "data": {}}, {"type": "user.created", "data": {}},
            {"type": "order.paid", "data": {}}]}, key=self.key)
        self.assertEqual(r.status, 200, r.raw)
        self.assertTrue(other.wait(lambda s: len(s.events) >= 3), other.events)
        self.assertTrue(c.wait(lambda s: len(s.events) >= 2), c.events)
        self.assertEqual([e[2]["type"] for e in c.events], ["order.created", "order.paid"])
        time.sleep(0.3)  # nothing more may come for the glob
        self.assertEqual(len(c.events), 2)

    def test_tenants_are_isolated(self):
        other_key = make_key(self.srv, unique_tenant(), ["ingest", "read"])["key"]
        mine = self.open()
        theirs = self.open(key=other_key)
        self.ingest("a.b", {"secret": 1}, key=other_key)
        mark = self.ingest("a.c", {})
        self.assertTrue(mine.wait(lambda s: any(e[1] == mark for e in s.events)))
        self.assertTrue(theirs.wait(lambda s: len(s.events) >= 1))
        self.assertEqual([e[2]["type"] for e in mine.events], ["a.c"])
        self.assertEqual([e[2]["type"] for e in theirs.events], ["a.b"])

    def test_duplicates_and_failed_requests_are_not_streamed(self):
        c = self.open()
        h = {"Idempotency-Key": "k-%s" % self.tenant}
        body = {"type": "x.y", "data": {}}
        r1 = self.srv.request("POST", "/v1/events", body, key=self.key, headers=h)
        r2 = self.srv.request("POST", "/v1/events", body, key=self.key, headers=h)
        self.assertEqual((r1.status, r2.status), (202, 202), (r1.raw, r2.raw))
        mark = self.ingest("x.z", {})
        self.assertTrue(c.wait(lambda s: any(e[1] == mark for e in s.events)))
        self.assertEqual([e[2]["type"] for e in c.events], ["x.y", "x.z"])

    def test_errors(self):
        c = SseClient(self.srv, "trg_notakey0000000000000000000000000")
        self.clients.append(c)
        self.assertEqual(c.status, 401)
        ingest_only = make_key(self.srv, self.tenant, ["ingest"])["key"]
        r = self.srv.request("GET", "/v1/events/stream", key=ingest_only)
        self.assertError(r, 403, "forbidden")
        r = self.srv.request("GET", "/v1/events/stream?type=bad%20glob", key=self.key)
        self.assertError(r, 400, "validation_error", mentions="type")

    def test_client_going_away_is_cleaned_up(self):
        c = self.open()
        self.assertTrue(c.wait(lambda s: "connected" in s.comments))
        c.close()
        # Events after the client left must not break anything for others.
        d = self.open()
        for i in range(3):
            self.ingest("a.b", {"i": i})
        self.assertTrue(d.wait(lambda s: len(s.events) >= 3))
        self.assertEqual(self.srv.request("GET", "/health").status, 200)

    def test_many_large_events_reach_a_reader(self):
        c = self.open()
        big = {"blob": "x" * 20000}
        ids = [self.ingest("big.one", big) for _ in range(20)]
        self.assertTrue(c.wait(lambda s: len(s.events) >= 20, timeout=10), len(c.events))
        self.assertEqual([e[1] for e in c.events], ids)
        self.assertEqual(c.events[-1][2]["data"], big)

    def test_a_reader_that_stops_reading_is_cut_off(self):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(30)
        sock.connect((self.srv.host, self.srv.port))
        self.addCleanup(sock.close)
        sock.sendall(("GET /v1/events/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s"
                      "\r\n\r\n" % self.key).encode())
        self.assertIn(b" 200 ", sock.recv(256))
        big = {"blob": "y" * 100000}
        for _ in range(100):  # 10 MB: more than the backlog bound and the socket buffers
            self.ingest("slow.reader", big)
        # The server gave up on this reader: what it had sent is readable,
        # then the connection ends (without the bound it would stay open).
        deadline = time.monotonic() + 25
        while True:
            self.assertLess(time.monotonic(), deadline, "the stalled stream was never closed")
            try:
                data = sock.recv(1 << 20)
            except ConnectionResetError:
                break
            if not data:
                break
        # Everyone else is fine.
        c = self.open()
        mark = self.ingest("after.slow", {})
        self.assertTrue(c.wait(lambda s: any(e[1] == mark for e in s.events)))

    def test_one_tenant_cannot_take_every_stream(self):
        mine = [self.open() for _ in range(100)]
        self.assertTrue(all(c.status == 200 for c in mine))
        r = self.srv.request("GET", "/v1/events/stream", key=self.key)
        self.assertError(r, 400, "limit_exceeded", "--max-streams-per-tenant")
        other = self.open(key=make_key(self.srv, unique_tenant(), ["read"])["key"])
        self.assertEqual(other.status, 200)
        for c in mine[:10]:
            c.close()
        deadline = time.monotonic() + 5  # the server reads the connection: it notices at once
        while True:
            c = SseClient(self.srv, self.key)
            self.clients.append(c)
            if c.status == 200:
                break
            self.assertLess(time.monotonic(), deadline, "slots of closed streams never came back")
            time.sleep(0.5)

    def test_stats_counts_ingest_and_deliveries(self):
        with Receiver() as rcv:
            rcv.error("/bad", 500)
            ok = self.srv.request("POST", "/v1/subscriptions", {"url": rcv.url("/ok")},
                                  key=self.key).json
            bad = self.srv.request("POST", "/v1/subscriptions", {"url": rcv.url("/bad")},
                                   key=self.key).json
            for i in range(4):
                self.ingest("s.t", {"i": i})
            self.assertTrue(rcv.wait_for("/ok", 4, 10))
            self.assertTrue(rcv.wait_for("/bad", 4, 10))
            deadline = time.monotonic() + 10
            while True:
                st = self.srv.request("GET", "/v1/stats", key=self.key)
                self.assertEqual(st.status, 200, st.raw)
                s = st.json
                subs = {x["id"]: x for x in s["subscriptions"]}
                if subs[ok["id"]]["succeeded"] >= 4 and subs[bad["id"]]["failed"] >= 4:
                    break
                self.assertLess(time.monotonic(), deadline, s)
                time.sleep(0.1)
        self.assertEqual(s["bucket_s"], 10)
        self.assertEqual(len(s["series"]), 30)
        self.assertEqual(sum(b["ingested"] for b in s["series"]), 4)
        self.assertGreaterEqual(sum(b["delivered"] for b in s["series"]), 4)
        self.assertGreaterEqual(sum(b["failed"] for b in s["series"]), 4)
        self.assertEqual(subs[ok["id"]]["success_rate"], 1.0)
        self.assertEqual(subs[bad["id"]]["succeeded"], 0)
        self.assertEqual(subs[bad["id"]]["circuit"], "closed")  # fewer than 10 failures
        self.assertEqual(set(s["deliveries"]),
                         {"pending", "in_flight", "succeeded", "retrying", "dead"})
        self.assertGreaterEqual(s["deliveries"]["succeeded"], 4)
        # Another tenant sees none of it.
        other = make_key(self.srv, unique_tenant(), ["read"])["key"]
        o = self.srv.request("GET", "/v1/stats", key=other).json
        self.assertEqual(o["subscriptions"], [])
        self.assertEqual(sum(b["ingested"] for b in o["series"]), 0)
        self.assertEqual(o["deliveries"]["succeeded"], 0)

    def test_tail_command_prints_events(self):
        env = clean_env({"TRIGGERS_KEY": self.key})
        proc = subprocess.Popen(
            [binary_path(), "tail", "--url", "http://%s:%d" % (self.srv.host, self.srv.port),
             "--type", "tail.*"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            lines = []
            reader = threading.Thread(
                target=lambda: [lines.append(l) for l in iter(proc.stdout.readline, b"")],
                daemon=True)
            reader.start()
            deadline = time.monotonic() + 10
            sent = []
            while len(lines) < 1 and time.monotonic() < deadline:
                # The tail connects asynchronously: ingest until one arrives.
                sent.append(self.ingest("tail.one", {"k": len(sent)}))
                self.ingest("other.type", {})
                time.sleep(0.2)
            self.assertTrue(lines, "tail printed nothing")
            got = json.loads(lines[0])
            self.assertEqual(got["type"], "tail.one")
            self.assertIn(got["id"], sent)
        finally:
            proc.terminate()
            rc = proc.wait(timeout=10)
        self.assertEqual(rc, 0, proc.stderr.read())
        self.assertNotIn(self.key.encode(), proc.stderr.read())

    def test_tail_with_a_bad_key_exits_1(self):
        env = clean_env({"TRIGGERS_KEY": "trg_notakey0000000000000000000000000"})
        proc = subprocess.run(
            [binary_path(), "tail", "--url", "http://%s:%d" % (self.srv.host, self.srv.port)],
            capture_output=True, env=env, timeout=20)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn(b"refused", proc.stderr)


class StreamShutdownTest(ServerTestCase):
    shared_server = False

    def test_sigterm_ends_open_streams(self):
        srv = self.start_server()
        key = make_key(srv, unique_tenant(), ["read"])["key"]
        c = SseClient(srv, key)
        try:
            self.assertEqual(c.status, 200)
            self.assertTrue(c.wait(lambda s: "connected" in s.comments))
            t0 = time.monotonic()
            srv.stop()
            self.assertLess(time.monotonic() - t0, 5, "an open stream held up the shutdown")
            self.assertEqual(srv.last_exit_code, 0)
            self.assertTrue(c.closed.wait(5))
        finally:
            c.close()


if __name__ == "__main__":
    unittest.main()
