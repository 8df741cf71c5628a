"""Black-box tests of ordered push delivery (issue 4): deliveries of an ordered
webhook subscription that share an ordering_key (events without one all share
one sequence) go out strictly one at a time in ingestion order; a retrying head
blocks only its own key.

What is tested is /work/notes/pull-decisions.md ("Ordered") with the retry
schedule of /work/notes/delivery-decisions.md. The receiver is a small one of
our own (it decides its answer from the event in the body: 500 the first time
it sees a marked event, 200 otherwise, optionally after a delay), listening on
127.0.0.1, so the server runs with --allow-private-destinations.

Run from the repo root:
  /usr/bin/python3 -m unittest -v tests/integration/test_ordered.py
"""

import collections
import http.server
import json
import os
import socketserver
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import ServerTestCase, make_key, unique_tenant  # noqa: E402

SERVER_ARGS = ["--allow-private-destinations", "--retry-schedule", "300ms,300ms,300ms"]

Hit = collections.namedtuple("Hit", "event_id name key path t_arrived t_answered status")


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, *args):
        pass

    def do_POST(self):
        rcv = self.server.rcv
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        t_arrived = time.monotonic()
        try:
            ev = json.loads(body)
            name = (ev.get("data") or {}).get("name")
            event_id, key = ev.get("id"), ev.get("ordering_key")
        except (ValueError, AttributeError):
            ev, name, event_id, key = None, None, None, None
        status, delay = rcv.decide(self.path, event_id, name)
        if delay:
            rcv.stopping.wait(delay)
        payload = b"ok" if status == 200 else b"fail once"
        # Recorded just before the answer is written: the server cannot have
        # seen the answer earlier than t_answered.
        rcv.record(Hit(event_id, name, key, self.path, t_arrived, time.monotonic(), status))
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            self.close_connection = True


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address):
        pass


class OrderReceiver:
    """Answers 500 the first time it sees an event whose data.name is in
    fail_once (per path), 200 otherwise, after `delay` seconds."""

    def __init__(self):
        self.cond = threading.Condition()
        self.hits = []
        self.fail_once = {}   # path -> set of names
        self.delay = {}       # path -> seconds
        self.failed = set()   # (path, event_id)
        self.in_progress = collections.Counter()
        self.max_concurrency = collections.Counter()
        self.stopping = threading.Event()
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.rcv = self
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.httpd.server_address[1], path)

    def decide(self, path, event_id, name):
        with self.cond:
            self.in_progress[path] += 1
            self.max_concurrency[path] = max(self.max_concurrency[path], self.in_progress[path])
            if name in self.fail_once.get(path, ()) and (path, event_id) not in self.failed:
                self.failed.add((path, event_id))
                return 500, self.delay.get(path, 0)
            return 200, self.delay.get(path, 0)

    def record(self, hit):
        with self.cond:
            self.in_progress[hit.path] -= 1
            self.hits.append(hit)
            self.cond.notify_all()

    def wait_ok(self, path, names, timeout):
        """Wait until every name got a 200 at path; returns the hits of path."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                hits = [h for h in self.hits if h.path == path]
                done = {h.name for h in hits if h.status == 200}
                left = deadline - time.monotonic()
                if set(names) <= done or left <= 0:
                    return hits
                self.cond.wait(min(left, 0.25))

    def stop(self):
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class OrderedPushTest(ServerTestCase):
    server_args = SERVER_ARGS

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rcv = OrderReceiver()
        cls.addClassCleanup(cls.rcv.stop)

    def setUp(self):
        super().setUp()
        self.tenant = unique_tenant("ord")
        self.key = make_key(self.srv, self.tenant, ["ingest", "read", "manage"])["key"]

    def create_sub(self, path, **extra):
        body = {"url": self.rcv.url(path), "ordered": True}
        body.update(extra)
        r = self.srv.request("POST", "/v1/subscriptions", body, key=self.key)
        self.assertEqual(r.status, 201, r.raw[:500])
        self.assertTrue(r.json["ordered"], r.raw[:500])
        return r.json

    def ingest(self, name, ordering_key=None):
        body = {"type": "order.updated", "data": {"name": name}}
        if ordering_key is not None:
            body["ordering_key"] = ordering_key
        r = self.srv.request("POST", "/v1/events", body, key=self.key)
        self.assertEqual(r.status, 202, r.raw[:500])
        return r.json["id"]

    def deliveries(self, sub_id):
        r = self.srv.request("GET", "/v1/deliveries?limit=1000&subscription_id="
                             + urllib.parse.quote(sub_id), key=self.key)
        self.assertEqual(r.status, 200, r.raw[:500])
        return r.json["data"]

    @staticmethod
    def describe(hits):
        t0 = hits[0].t_arrived if hits else 0
        return ", ".join("%s:%d@%.3f-%.3f" % (h.name, h.status, h.t_arrived - t0,
                                              h.t_answered - t0) for h in hits)

    def assert_one_at_a_time(self, hits):
        """Each request of the sequence arrives after the previous one was answered."""
        for prev, cur in zip(hits, hits[1:]):
            self.assertGreaterEqual(cur.t_arrived, prev.t_answered,
                                    "%s sent before %s was answered: %s"
                                    % (cur.name, prev.name, self.describe(hits)))

    def test_retrying_head_blocks_only_its_key(self):
        path = "/keys"
        self.rcv.fail_once[path] = {"A1"}
        sub = self.create_sub(path)
        names = ["A1", "A2", "A3", "B1", "B2"]
        ids = {}
        for name in names:
            ids[name] = self.ingest(name, ordering_key=name[0])
        hits = self.rcv.wait_ok(path, names, timeout=15)
        desc = self.describe(hits)
        for name in names:
            self.assertTrue(any(h.name == name and h.status == 200 for h in hits),
                            "%s never delivered successfully: %s" % (name, desc))
        for h in hits:
            self.assertEqual(h.event_id, ids[h.name], desc)
            self.assertEqual(h.key, h.name[0], desc)
        a = [h for h in hits if h.key == "A"]
        b = [h for h in hits if h.key == "B"]
        self.assertEqual([(h.name, h.status) for h in a],
                         [("A1", 500), ("A1", 200), ("A2", 200), ("A3", 200)],
                         "key A out of order: " + desc)
        self.assertEqual([(h.name, h.status) for h in b], [("B1", 200), ("B2", 200)],
                         "key B out of order: " + desc)
        self.assert_one_at_a_time(a)
        self.assert_one_at_a_time(b)
        # B is not held back by A's failed head: B2 arrives before A1's retry.
        a1_retry = a[1]
        self.assertLess(b[1].t_arrived, a1_retry.t_arrived,
                        "B2 waited for A1's retry: " + desc)
        # The retry waited for the schedule (300 ms -20% jitter).
        self.assertGreaterEqual(a1_retry.t_arrived - a[0].t_answered, 0.2, desc)
        # Nothing more arrives (each event delivered once successfully).
        time.sleep(0.5)
        with self.rcv.cond:
            final = [h for h in self.rcv.hits if h.path == path]
        self.assertEqual(len(final), 6, self.describe(final))
        deadline = time.monotonic() + 5
        while True:
            dl = self.deliveries(sub["id"])
            if all(d["status"] == "succeeded" for d in dl) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        by_event = {d["event_id"]: d for d in dl}
        self.assertEqual(set(by_event), set(ids.values()))
        for name, eid in ids.items():
            self.assertEqual(by_event[eid]["status"], "succeeded", by_event[eid])
            self.assertEqual(by_event[eid]["attempt_count"], 2 if name == "A1" else 1,
                             by_event[eid])

    def test_without_ordering_key_one_at_a_time(self):
        path = "/nokey"
        self.rcv.delay[path] = 0.1
        self.create_sub(path, max_in_flight=16)
        names = ["N%d" % i for i in range(6)]
        # One batch: all six are committed (and due) at the same moment.
        r = self.srv.request("POST", "/v1/events/batch",
                             {"events": [{"type": "order.updated", "data": {"name": n}}
                                         for n in names]}, key=self.key)
        self.assertEqual(r.status, 200, r.raw[:500])
        self.assertEqual(r.json["failed_count"], 0, r.raw[:500])
        ids = [x["id"] for x in r.json["results"]]
        hits = self.rcv.wait_ok(path, names, timeout=15)
        desc = self.describe(hits)
        self.assertEqual([h.name for h in hits], names, "not in ingestion order: " + desc)
        self.assertEqual([h.event_id for h in hits], ids, desc)
        self.assertTrue(all(h.key is None for h in hits), desc)
        self.assert_one_at_a_time(hits)
        self.assertEqual(self.rcv.max_concurrency[path], 1, desc)

    def test_without_ordering_key_separate_ingests(self):
        path = "/nokey-sep"
        self.rcv.delay[path] = 0.1
        self.create_sub(path)
        names = ["S%d" % i for i in range(4)]
        ids = [self.ingest(n) for n in names]
        hits = self.rcv.wait_ok(path, names, timeout=15)
        desc = self.describe(hits)
        self.assertEqual([h.event_id for h in hits], ids, "not in ingestion order: " + desc)
        self.assert_one_at_a_time(hits)
        self.assertEqual(self.rcv.max_concurrency[path], 1, desc)

    def test_unordered_subscription_is_concurrent(self):
        # Control: the same workload on an unordered subscription overlaps, so the
        # one-at-a-time checks above do measure ordering.
        path = "/unordered"
        self.rcv.delay[path] = 0.3
        r = self.srv.request("POST", "/v1/subscriptions", {"url": self.rcv.url(path)},
                             key=self.key)
        self.assertEqual(r.status, 201, r.raw[:500])
        names = ["U%d" % i for i in range(4)]
        r = self.srv.request("POST", "/v1/events/batch",
                             {"events": [{"type": "order.updated", "data": {"name": n}}
                                         for n in names]}, key=self.key)
        self.assertEqual(r.status, 200, r.raw[:500])
        self.rcv.wait_ok(path, names, timeout=15)
        self.assertGreater(self.rcv.max_concurrency[path], 1)


if __name__ == "__main__":
    unittest.main()
