"""At-least-once push delivery across kill -9 (spec section 9).

Two webhook subscriptions (one for every event, one for "crash.even" only) on
a slow receiver (answers after 0.5 s) so that deliveries are in flight; the
server is SIGKILLed while they are, then restarted on the same data dir with
--delivery-timeout 1s. Every event must reach every matching subscription at
least once, correctly signed, and every delivery must end "succeeded". Leases
taken by the killed server expire delivery timeout + 5 s after they were taken
(~6 s); deliveries that were not leased must go out right after the restart.

Run from the repo root:
  /usr/bin/python3 -m unittest -v tests/integration/test_delivery_crash.py
"""

import base64
import hashlib
import hmac
import os
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import ServerTestCase, make_key, register_secret, unique_tenant  # noqa: E402
from receiver import Receiver  # noqa: E402

EVENTS = 120                 # half of them "crash.even"
SLOW_S = 0.5                 # the receiver answers after this
ARGS = ["--allow-private-destinations", "--delivery-timeout", "1s",
        "--retry-schedule", "500ms,1s,1s,1s,1s,1s,1s,1s"]
IN_FLIGHT_BEFORE_KILL = 20   # requests seen by the receiver before the kill
ALL_DELIVERED_DEADLINE_S = 45.0


def signature_ok(secret, headers, body):
    key = base64.b64decode(secret[len("whsec_"):])
    msg = "%s.%s.".encode() % (headers["webhook-id"].encode(), headers["webhook-timestamp"].encode())
    want = "v1," + base64.b64encode(hmac.new(key, msg + body, hashlib.sha256).digest()).decode()
    return want in headers.get("webhook-signature", "").split(" ")


class DeliveryCrashTests(ServerTestCase):
    shared_server = False

    def test_every_event_delivered_after_sigkill(self):
        rcv = Receiver().start()
        self.addCleanup(rcv.stop)
        rcv.ok("/all", delay=SLOW_S)
        rcv.ok("/even", delay=SLOW_S)
        srv = self.start_server(args=ARGS)
        key = make_key(srv, unique_tenant("dcrash"), ["ingest", "read", "manage"])["key"]
        subs = {}
        for path, fields in (("/all", {}), ("/even", {"event_types": ["crash.even"]})):
            r = srv.request("POST", "/v1/subscriptions", dict(fields, url=rcv.url(path)), key=key)
            self.assertEqual(r.status, 201, r.raw[:300])
            subs[path] = r.json
            register_secret(r.json["secret"])

        ids, even = [], []
        for chunk in range(0, EVENTS, 60):
            batch = [{"type": "crash.even" if i % 2 == 0 else "crash.odd", "data": {"i": i}}
                     for i in range(chunk, min(chunk + 60, EVENTS))]
            r = srv.request("POST", "/v1/events/batch", {"events": batch}, key=key)
            self.assertEqual(r.status, 200, r.raw[:300])
            self.assertEqual(r.json["failed_count"], 0, r.raw[:300])
            for ev, res in zip(batch, r.json["results"]):
                ids.append(res["id"])
                if ev["type"] == "crash.even":
                    even.append(res["id"])
        expected = {"/all": set(ids), "/even": set(even)}

        seen = rcv.wait_for(None, IN_FLIGHT_BEFORE_KILL, 15)
        self.assertGreaterEqual(len(seen), IN_FLIGHT_BEFORE_KILL, "deliveries never started")
        srv.kill9()
        t_kill = time.monotonic()
        before = {p: {r.headers["webhook-id"] for r in rcv.requests(p) if r.t <= t_kill}
                  for p in expected}
        # in flight = arrived before the kill, and its answer not even begun
        # before the kill returned: the server cannot have read it. (An answer
        # whose write began before that may have reached the server, which
        # then recorded the success: the receiver marks answered_at only
        # after the write, and a loaded machine can delay that mark past
        # t_kill. The ASan run on PostgreSQL saw it: 2 "never sent again".)
        def unanswered(r):
            at = rcv.answer_started_at(r)
            return at is None or at > t_kill
        in_flight = {p: {r.headers["webhook-id"] for r in rcv.requests(p)
                         if r.t <= t_kill and unanswered(r)} for p in expected}
        self.assertTrue(any(in_flight.values()), "nothing was in flight at the kill")
        done_before = {p: len(before[p]) for p in expected}
        self.assertTrue(all(done_before[p] < len(expected[p]) for p in expected),
                        "everything was delivered before the kill; nothing left to test: %r"
                        % done_before)

        srv.start()  # same data dir, same args (--delivery-timeout 1s)
        t_start = time.monotonic()
        first = rcv.wait_for(None, 1, 5, pred=lambda r: r.t > t_start)
        self.assertTrue(first, "no delivery within 5 s of the restart")
        first_after = first[0].t - t_start

        deadline = t_start + ALL_DELIVERED_DEADLINE_S
        for p in expected:
            missing = rcv.wait_for_ids(p, expected[p], max(deadline - time.monotonic(), 0))
            self.assertEqual(missing, set(), "%s: %d of %d events never delivered after the "
                             "restart (%d arrived before the kill)"
                             % (p, len(missing), len(expected[p]), done_before[p]))
        t_all = time.monotonic() - t_start
        # the server never saw an answer for those in flight: they must come again
        def resent(p):
            return {r.headers["webhook-id"]: r.t - t_start for r in reversed(rcv.requests(p))
                    if r.t > t_start}
        again_at = {}
        for p in expected:
            while True:
                got = resent(p)
                missing = in_flight[p] - set(got)
                if not missing or time.monotonic() > deadline:
                    break
                rcv.wait_for(p, rcv.count(p) + 1, 0.25)
            self.assertEqual(missing, set(), "%s: %d deliveries cut off by the kill were never "
                             "sent again" % (p, len(missing)))
            again_at.update({(p, e): got[e] for e in in_flight[p]})
        # nothing reached a subscription it does not match
        odd = set(ids) - set(even)
        self.assertEqual({r.headers["webhook-id"] for r in rcv.requests("/even")} & odd, set())
        # every request correctly signed (the secrets survived the restart)
        for p in expected:
            bad = [r.headers.get("webhook-id") for r in rcv.requests(p)
                   if not signature_ok(subs[p]["secret"], r.headers, r.body)]
            self.assertEqual(bad, [], "%s: badly signed deliveries" % p)

        # every delivery ends succeeded; each (event, sub) pair has exactly one delivery row
        pending = None
        while True:
            rows = []
            cursor = None
            while True:
                path = "/v1/deliveries?limit=1000" + ("&after=" + urllib.parse.quote(cursor, safe="") if cursor else "")
                r = srv.request("GET", path, key=key)
                self.assertEqual(r.status, 200, r.raw[:300])
                rows += r.json["data"]
                cursor = r.json["next_cursor"]
                if not cursor:
                    break
            pending = [d for d in rows if d["status"] != "succeeded"]
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(pending, [], "deliveries not succeeded %.0f s after the restart: %r"
                         % (ALL_DELIVERED_DEADLINE_S, pending[:5]))
        pairs = [(d["event_id"], d["subscription_id"]) for d in rows]
        self.assertEqual(len(pairs), len(set(pairs)), "duplicate delivery rows")
        self.assertEqual(len(pairs), len(ids) + len(even))

        # duplicates are allowed (at least once), but only for deliveries that were
        # attempted before the kill or that had a failed attempt
        failed_pairs = set()
        for d in rows:
            if d["attempt_count"] > 1:
                full = srv.request("GET", "/v1/deliveries/" + d["id"], key=key).json
                if any(a["status_code"] != 200 for a in full["attempts"]):
                    failed_pairs.add((d["event_id"], d["subscription_id"]))
        dups = {}
        for p in expected:
            counts = {}
            for r in rcv.requests(p):
                counts[r.headers["webhook-id"]] = counts.get(r.headers["webhook-id"], 0) + 1
            dups[p] = {e for e, n in counts.items() if n > 1}
            # Sent by the killed process: everything that arrived before the
            # restart (a request on the wire at the kill arrives just after it).
            sent_by_old = {r.headers["webhook-id"] for r in rcv.requests(p) if r.t <= t_start}
            unexplained = {e for e in dups[p]
                           if e not in sent_by_old and (e, subs[p]["id"]) not in failed_pairs}
            self.assertEqual(unexplained, set(), "%s: delivered twice though never attempted "
                             "before the kill nor failed" % p)
        sys.stderr.write("\n  [crash] before kill: %s; in flight at kill: %s; first delivery "
                         "%.2f s after restart; all delivered %.1f s after restart; "
                         "redelivered: %s; cut-off ones re-sent %.1f-%.1f s after restart\n"
                         % (done_before, {p: len(v) for p, v in in_flight.items()}, first_after,
                            t_all, {p: len(v) for p, v in dups.items()},
                            min(again_at.values(), default=-1), max(again_at.values(), default=-1)))
        self.assertLess(first_after, 3.0, "deliveries that were not leased must go out at once "
                        "after the restart (first came %.2f s later)" % first_after)
        self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    unittest.main()
