"""Revocation reaches everything the key holds (SPEC 3): a live tail
(GET /v1/events/stream) and a parked long poll (POST .../receive with wait_s)
opened with a key end within 5 s of its revocation, through the API on this
server or by the offline CLI (picked up by the once-a-second refresh); the
receive answers 401 and takes no lease, and later events reach neither.

Run from the repo root: /usr/bin/python3 -m unittest -v tests/integration/test_revocation.py
"""

import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import ServerTestCase, make_key, run_cli, unique_tenant  # noqa: E402

END_WITHIN_S = 5.0


class Stream:
    """A raw live-tail client: reads the chunked SSE body on a thread until
    the server finishes it or closes the connection."""

    def __init__(self, srv, key):
        self.sock = socket.create_connection((srv.host, srv.port), timeout=30)
        self.sock.sendall(("GET /v1/events/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                           "%s\r\n\r\n" % key).encode())
        self.text = b""
        self.ended = threading.Event()  # the body was finished or the connection closed
        self.finished = False  # the last chunk (0) came before the close
        self.cv = threading.Condition()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        buf = b""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                buf += data
                with self.cv:
                    self.text = buf
                    self.cv.notify_all()
        except OSError:
            pass
        self.finished = buf.endswith(b"\r\n0\r\n\r\n")
        self.ended.set()
        with self.cv:
            self.cv.notify_all()

    def wait_text(self, needle, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self.cv:
            while needle not in self.text:
                left = deadline - time.monotonic()
                if left <= 0 or self.ended.is_set():
                    return needle in self.text
                self.cv.wait(left)
        return True

    def close(self):
        for op in (lambda: self.sock.shutdown(socket.SHUT_RDWR), self.sock.close):
            try:
                op()
            except OSError:
                pass


class RevocationTest(ServerTestCase):

    def setUp(self):
        super().setUp()
        self.tenant = unique_tenant("rev")
        # The producer: creates the subscription, ingests, checks the inbox.
        self.prod = make_key(self.srv, self.tenant, ["ingest", "read", "manage", "consume"])["key"]
        # The key that gets revoked: it holds a stream and a parked receive.
        self.victim = make_key(self.srv, self.tenant, ["read", "consume"])
        r = self.srv.request("POST", "/v1/subscriptions", {"kind": "pull"}, key=self.prod)
        self.assertEqual(r.status, 201, r.raw)
        self.sub = r.json["id"]
        self.streams = []

    def tearDown(self):
        for s in self.streams:
            s.close()
        super().tearDown()

    def gauge(self, name):
        r = self.srv.request("GET", "/metrics")
        self.assertEqual(r.status, 200)
        for line in r.raw.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        self.fail("no %s in /metrics" % name)

    def wait_gauge_at_least(self, name, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        while self.gauge(name) < n:
            self.assertLess(time.monotonic(), deadline, "%s never reached %d" % (name, n))
            time.sleep(0.02)

    def hold(self):
        """Opens a stream and parks a receive (wait_s 20) with the victim key;
        returns (stream, box, thread): box gets the receive's response."""
        parked_before = self.gauge("triggers_parked_receives")
        stream = Stream(self.srv, self.victim["key"])
        self.streams.append(stream)
        self.assertTrue(stream.wait_text(b": connected"), stream.text)
        box = {}

        def receive():
            box["resp"] = self.srv.request("POST", "/v1/subscriptions/%s/receive" % self.sub,
                                           {"wait_s": 20}, key=self.victim["key"], timeout=30)
            box["t"] = time.monotonic()

        th = threading.Thread(target=receive, daemon=True)
        th.start()
        self.wait_gauge_at_least("triggers_parked_receives", parked_before + 1)
        self.assertNotIn("resp", box)
        return stream, box, th

    def check_ended(self, stream, box, th, t_revoked):
        th.join(END_WITHIN_S + 1)
        self.assertFalse(th.is_alive(), "the parked receive still waits after the revocation")
        self.assertLess(box["t"] - t_revoked, END_WITHIN_S)
        self.assertError(box["resp"], 401, "unauthorized", mentions="revoked")
        self.assertTrue(stream.ended.wait(max(0.1, t_revoked + END_WITHIN_S - time.monotonic())),
                        "the stream is still open %.0f s after the revocation" % END_WITHIN_S)
        self.assertTrue(stream.finished, "the chunked body was not finished: %r"
                        % stream.text[-200:])
        # An event ingested now reaches neither, and nothing was leased: the
        # message is receivable at once, attempt 1.
        r = self.srv.request("POST", "/v1/events", {"type": "after.revoke", "data": {"n": 1}},
                             key=self.prod)
        self.assertEqual(r.status, 202, r.raw)
        eid = r.json["id"]
        r = self.srv.request("POST", "/v1/subscriptions/%s/receive" % self.sub, {"max": 10},
                             key=self.prod)
        self.assertEqual(r.status, 200, r.raw)
        self.assertEqual([(m["event"]["id"], m["attempt"]) for m in r.json["data"]], [(eid, 1)])
        self.assertNotIn(eid.encode(), stream.text)
        # The key itself is refused too.
        r = self.srv.request("GET", "/v1/events", key=self.victim["key"])
        self.assertError(r, 401, "unauthorized")

    def test_revocation_through_the_api_ends_stream_and_parked_receive(self):
        stream, box, th = self.hold()
        r = self.srv.request("DELETE", "/v1/keys/" + self.victim["id"], key=self.srv.admin_key)
        t_revoked = time.monotonic()
        self.assertEqual(r.status, 204, r.raw)
        self.check_ended(stream, box, th, t_revoked)

    def test_revocation_by_the_offline_cli_ends_stream_and_parked_receive(self):
        stream, box, th = self.hold()
        p = run_cli("keys", "revoke", "--data-dir", self.srv.data_dir, self.victim["id"])
        t_revoked = time.monotonic()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.check_ended(stream, box, th, t_revoked)

    def test_other_keys_of_the_tenant_keep_their_stream_and_receive(self):
        other = make_key(self.srv, self.tenant, ["read", "consume"])["key"]
        keep = Stream(self.srv, other)
        self.streams.append(keep)
        self.assertTrue(keep.wait_text(b": connected"))
        stream, box, th = self.hold()
        r = self.srv.request("DELETE", "/v1/keys/" + self.victim["id"], key=self.srv.admin_key)
        self.assertEqual(r.status, 204, r.raw)
        self.assertTrue(stream.ended.wait(END_WITHIN_S))
        th.join(END_WITHIN_S)
        self.assertEqual(box["resp"].status, 401)
        # The other key's stream is still open and gets the next event.
        r = self.srv.request("POST", "/v1/events", {"type": "still.here", "data": {}},
                             key=self.prod)
        self.assertEqual(r.status, 202, r.raw)
        self.assertTrue(keep.wait_text(r.json["id"].encode()), keep.text[-300:])
        self.assertFalse(keep.ended.is_set())


if __name__ == "__main__":
    unittest.main()
