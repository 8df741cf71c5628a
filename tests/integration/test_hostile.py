"""Hostile input: malformed HTTP, oversized headers, truncated bodies, deep JSON,
invalid UTF-8. After each, the server must still answer GET /health with 200.

Run from the repo root: /usr/bin/python3 -m unittest tests/integration/test_hostile.py
"""

import json
import os
import random
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import RawConn, ServerTestCase, make_key, unique_tenant  # noqa: E402

READ_TIMEOUT = 5.0


class HostileTests(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.key = make_key(cls.srv, unique_tenant("hostile"), ["ingest", "read"])["key"]

    # ----------------------------------------------------------- helpers
    def assertHealthy(self):
        self.assertIsNone(self.srv.proc.poll(), "server process died (exit %s)" % self.srv.proc.poll())
        r = self.srv.request("GET", "/health")
        self.assertEqual(r.status, 200, r.raw[:200])

    def tearDown(self):
        try:
            self.assertHealthy()
        finally:
            super().tearDown()

    def exchange(self, data, timeout=READ_TIMEOUT, half_close=False):
        """Send data on a new connection; returns the first response or None if
        the server closed/reset the connection without answering."""
        with RawConn(self.srv, timeout=timeout) as c:
            sent = c.send(data)
            if sent and half_close:
                try:
                    c.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            try:
                return c.read_response()
            except socket.timeout:
                self.fail("server neither answered nor closed within %.0f s after %r"
                          % (timeout, data[:80]))

    def post_raw(self, body):
        return self.srv.request("POST", "/v1/events", body, key=self.key)

    def assertRejected(self, resp, statuses, what):
        """resp is None (closed) or has a status in statuses."""
        if resp is not None:
            self.assertIn(resp.status, statuses, "%s: got %d %r" % (what, resp.status, resp.body[:200]))

    # ------------------------------------------------------------- tests
    def test_malformed_request_line(self):
        for data in [b"GARBAGE\r\n\r\n",
                     b"GET\r\n\r\n",
                     b"GET /health HTTP/1.1 extra\r\n\r\n",
                     b"\x00\x01\x02\x03\r\n\r\n",
                     b"\xff\xfe\xfd /health HTTP/1.1\r\n\r\n",
                     b"GET /health HTTX/1.1\r\nHost: x\r\n\r\n",
                     b"GET /health HTTP/1.1\r\nNoColonHeader\r\n\r\n",
                     b"GET /health HTTP/1.1\r\n: no-name\r\n\r\n",
                     b"GET /health HTTP/1.1\r\nBad Header: x\r\n\r\n"]:
            with self.subTest(data=data):
                resp = self.exchange(data)
                self.assertRejected(resp, {400}, "malformed request")
                self.assertHealthy()
        resp = self.exchange(b"GET health HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertRejected(resp, {400, 404}, "target without a leading slash")
        for data in [b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n",
                     b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n"]:
            with self.subTest(data=data):
                self.assertRejected(self.exchange(data), {400, 505}, "bad version")
                self.assertHealthy()

    def test_header_block_over_16k(self):
        auth = b"Authorization: Bearer " + self.key.encode() + b"\r\n"
        cases = {
            "one huge header": b"X-Big: " + b"a" * (17 * 1024) + b"\r\n",
            "many headers": b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 60) for i in range(300)),
        }
        for label, extra in cases.items():
            with self.subTest(case=label):
                with RawConn(self.srv) as c:
                    c.send(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n" + auth + extra + b"\r\n")
                    try:
                        resp = c.read_response()
                    except socket.timeout:
                        self.fail("no answer and no close for an oversized header block")
                    if resp is not None:
                        self.assertEqual(resp.status, 431, resp.body[:200])
                        body = json.loads(resp.body)
                        self.assertEqual(body["error"]["code"], "request_header_too_large")
                        self.assertTrue(c.wait_closed(READ_TIMEOUT), "not closed after 431")
                self.assertHealthy()
        # just under the limit is fine
        resp = self.exchange(b"GET /v1/events?limit=1 HTTP/1.1\r\nHost: x\r\n" + auth
                             + b"X-Pad: " + b"p" * (12 * 1024) + b"\r\n\r\n")
        self.assertIsNotNone(resp)
        self.assertEqual(resp.status, 200, resp.body[:200])

    def test_long_request_line(self):
        resp = self.exchange(b"GET /v1/events?x=" + b"a" * (20 * 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertRejected(resp, {400, 414, 431}, "20 KiB request line")

    def test_truncated_body(self):
        head = (b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer " + self.key.encode() + b"\r\nContent-Length: 100\r\n\r\n")
        with RawConn(self.srv) as c:
            c.send(head + b'{"type":"a')
        self.assertHealthy()
        # half-closed after a partial body: the server answers 400 or closes
        resp = self.exchange(head + b'{"type":"a', half_close=True)
        self.assertRejected(resp, {400, 408}, "truncated body")
        # truncated header block
        with RawConn(self.srv) as c:
            c.send(b"POST /v1/events HTTP/1.1\r\nContent-Le")
        self.assertHealthy()
        # many of them at once
        conns = []
        try:
            for _ in range(50):
                c = RawConn(self.srv)
                c.send(head + b"{")
                conns.append(c)
            self.assertHealthy()
        finally:
            for c in conns:
                c.close()

    def test_bad_content_length(self):
        auth = b"Authorization: Bearer " + self.key.encode() + b"\r\n"
        base = b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + auth
        t0 = time.monotonic()
        resp = self.exchange(base + b"Content-Length: 99999999999\r\n\r\n")
        self.assertRejected(resp, {413}, "huge Content-Length")
        self.assertLess(time.monotonic() - t0, READ_TIMEOUT, "must not wait for a huge body")
        self.assertHealthy()
        for cl in [b"abc", b"-5", b"1e3", b"0x10", b"5, 6"]:
            with self.subTest(content_length=cl):
                resp = self.exchange(base + b"Content-Length: " + cl + b"\r\n\r\n{}", half_close=True)
                self.assertRejected(resp, {400}, "bad Content-Length")
                self.assertHealthy()
        resp = self.exchange(base + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}}", half_close=True)
        self.assertRejected(resp, {400}, "conflicting Content-Length")

    def test_chunked_and_odd_framing_survive(self):
        auth = b"Authorization: Bearer " + self.key.encode() + b"\r\n"
        base = b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + auth
        body = b'{"type":"chunked"}'
        chunked = base + b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
        resp = self.exchange(chunked, half_close=True)
        self.assertRejected(resp, {202, 400, 411, 413, 501}, "chunked body")
        self.assertHealthy()
        bad = base + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n0\r\n\r\n"
        self.assertRejected(self.exchange(bad, half_close=True), {400, 411, 501}, "bad chunk size")
        self.assertHealthy()
        both = base + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        self.assertRejected(self.exchange(both, half_close=True), {400, 411, 501}, "CL and TE")

    def test_deep_json_nesting(self):
        cases = {
            "balanced arrays in data": b'{"type":"deep","data":' + b"[" * 100000 + b"]" * 100000 + b"}",
            "unbalanced arrays in data": b'{"type":"deep","data":' + b"[" * 100000 + b"}",
            "nested objects in data": b'{"type":"deep","data":' + b'{"a":' * 40000 + b"1" + b"}" * 40000 + b"}",
            "top-level arrays": b"[" * 100000 + b"]" * 100000,
        }
        for label, body in cases.items():
            with self.subTest(case=label):
                self.assertLess(len(body), 256 * 1024)
                r = self.post_raw(body)
                self.assertEqual(r.status, 400, r.raw[:200])
                self.assertIn(r.json["error"]["code"], ("invalid_json", "validation_error"))
                self.assertHealthy()
        r = self.srv.request("POST", "/v1/events/batch",
                             b'{"events":[{"type":"deep","data":' + b"[" * 100000 + b"]" * 100000 + b"}]}",
                             key=self.key)
        if r.status == 200:
            self.assertEqual(r.json["failed_count"], 1)
        else:
            self.assertEqual(r.status, 400, r.raw[:200])
        # modest nesting is fine and comes back byte for byte
        data = b"[" * 64 + b"1" + b"]" * 64
        r = self.post_raw(b'{"type":"deep.ok","data":' + data + b"}")
        self.assertEqual(r.status, 202, r.raw[:200])
        got = self.srv.request("GET", "/v1/events/" + r.json["id"], key=self.key)
        self.assertIn(data, got.raw)

    def test_invalid_utf8(self):
        for label, body in [
                ("0xff in type", b'{"type":"a\xffb"}'),
                ("0xfe 0xff in type", b'{"type":"\xfe\xff"}'),
                ("overlong slash in type", b'{"type":"a\xc0\xafb"}'),
                ("truncated sequence in type", b'{"type":"ab\xe2\x82"}'),
                ("invalid in data string", b'{"type":"u8","data":"\xc3\x28"}'),
                ("utf-8 encoded surrogate in data", b'{"type":"u8","data":"\xed\xa0\x80"}'),
                ("invalid in data key", b'{"type":"u8","data":{"k\xff":1}}'),
                ("invalid in source", b'{"type":"u8","source":"\x80"}'),
                ("invalid in field name", b'{"type":"u8","\xff":1}')]:
            with self.subTest(case=label):
                r = self.post_raw(body)
                self.assertEqual(r.status, 400, r.raw[:200])
                self.assertIn(r.json["error"]["code"], ("invalid_json", "validation_error"))
                self.assertHealthy()

    def test_hostile_path_and_header_bytes(self):
        auth = b"Authorization: Bearer " + self.key.encode() + b"\r\n"
        for path in [b"/v1/events/\xff\xfe", b"/v1/events/evt_%00%ff", b'/v1/"quoted"\\back',
                     b"/v1/events/%2e%2e/%2e%2e/keys", b"/v1/events/\x7f\x1b[31m", b"/" * 2000]:
            with self.subTest(path=path[:40]):
                resp = self.exchange(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n")
                self.assertRejected(resp, {400, 404}, "odd path")
                self.assertHealthy()
        resp = self.exchange(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: \xff\xfe\x01\r\n\r\n")
        if resp is not None:
            self.assertIn(resp.status, (200, 400))
            rid = resp.headers.get("x-request-id")
            if resp.status == 200 or rid is not None:
                # never echoed: it is not printable ASCII, so a req_ id is generated
                self.assertRegex(rid or "", r"^req_[0-9A-Za-z]{26}$")

    def test_pipelined_requests(self):
        with RawConn(self.srv) as c:
            c.send(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: p1\r\n\r\n"
                   b"GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: p2\r\n\r\n")
            first, second = c.read_response(), c.read_response()
        self.assertIsNotNone(first)
        self.assertIsNotNone(second)
        self.assertEqual((first.status, second.status), (200, 200))
        self.assertEqual((first.headers.get("x-request-id"), second.headers.get("x-request-id")),
                         ("p1", "p2"))

    def test_endless_chunk_size_line_is_cut_off(self):
        # Beast 1.81 does not limit a chunk-size line: the read buffer's own
        # bound must end it (4xx or close) long before the 10 s read timeout.
        with RawConn(self.srv, timeout=8) as c:
            c.send(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n1;")
            start = time.monotonic()
            try:
                for _ in range(64):  # up to 4 MiB of one never-ending line
                    c.send(b"a" * 65536)
            except OSError:
                pass  # the server closed the connection: what we want
            try:
                resp = c.read_response()
            except OSError:
                resp = None
            self.assertLess(time.monotonic() - start, 8)
            if resp is not None:
                self.assertGreaterEqual(resp.status, 400)
                self.assertLess(resp.status, 500)
        self.assertEqual(self.srv.request("GET", "/health").status, 200)

    def test_parse_error_after_a_request_with_origin(self):
        # A keep-alive request with an Origin, then one whose body is too large:
        # the 413 must not read the previous request's (freed) headers.
        srv = self.start_server(args=["--cors-origins", "http://a.example, http://b.example",
                                      "--max-body", "1024"])
        with RawConn(srv) as c:
            c.send(b"GET /health HTTP/1.1\r\nHost: x\r\nOrigin: http://b.example\r\n\r\n")
            first = c.read_response()
            self.assertEqual(first.status, 200)
            self.assertEqual(first.headers.get("access-control-allow-origin"), "http://b.example")
            c.send(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: 999999\r\n\r\n{")
            second = c.read_response()
        self.assertEqual(second.status, 413)
        self.assertNotIn("access-control-allow-origin", second.headers)
        self.assertEqual(srv.request("GET", "/health").status, 200)

    def test_many_idle_connections(self):
        conns = []
        try:
            for _ in range(200):
                conns.append(RawConn(self.srv))
            self.assertHealthy()
        finally:
            for c in conns:
                c.close()

    def test_random_garbage(self):
        rng = random.Random(20261125)
        for i in range(30):
            blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4096)))
            if i % 3 == 0:
                blob = b"POST /v1/events HTTP/1.1\r\nContent-Length: 50\r\n\r\n" + blob
            with RawConn(self.srv, timeout=0.5) as c:
                if c.send(blob):
                    try:
                        c.sock.shutdown(socket.SHUT_WR)
                        c.read_response()
                    except (OSError, AssertionError, ValueError, EOFError):
                        pass  # socket.timeout is an OSError
        self.assertHealthy()

    def test_edge_json_values_never_5xx(self):
        cases = [b"1e999999", b"-1e-999999", b"-0", b"123456789012345678901234567890",
                 b'"\\u0000"', b'"\\ud800"', b'"\\udc00\\ud800"', b'"' + b"s" * (200 * 1024) + b'"',
                 b"[" + b",".join(b"%d" % i for i in range(20000)) + b"]",
                 b'{"a":1,"a":2}', b'"\\x41"', b"01", b"NaN", b"Infinity", b"1.", b".5",
                 b'"tab\there"', b"\xef\xbb\xbf1"]
        for data in cases:
            with self.subTest(data=data[:30]):
                r = self.post_raw(b'{"type":"edge","data":' + data + b"}")
                self.assertIn(r.status, (202, 400), r.raw[:200])
                if r.status == 202:
                    got = self.srv.request("GET", "/v1/events/" + r.json["id"], key=self.key)
                    self.assertEqual(got.status, 200)
                    self.assertIsNotNone(got.json, "stored event is not valid JSON: %r" % got.raw[:200])
                    self.assertIn(data, got.raw)
                self.assertHealthy()


if __name__ == "__main__":
    unittest.main()
