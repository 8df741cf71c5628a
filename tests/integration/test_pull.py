"""Black-box tests of pull inboxes (issue 4): receive (with long polling), ack,
nack, visibility timeouts, max_receives -> dead, retry of a dead message,
validation, scopes and tenant isolation, and ordered pull.

What is tested is /work/notes/pull-decisions.md (spec section 6 "Pull (inbox)"
and "ordered"). Every test uses its own tenant and subscription on the class's
shared server; waits are polls with deadlines (no long fixed sleeps).

Run from the repo root:
  /usr/bin/python3 -m unittest -v tests/integration/test_pull.py
"""

import os
import re
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import ServerTestCase, fake_ulid, make_key, unique_tenant  # noqa: E402

DLV_ID_RE = re.compile(r"^dlv_[0-9A-HJKMNP-TV-Z]{26}$", re.I)
EVENT_FIELDS = {"id", "type", "source", "subject", "ordering_key", "time", "data"}
ALL_SCOPES = ["ingest", "read", "manage", "consume"]


def q(value):
    return urllib.parse.quote(str(value), safe="")


class PullClient:
    """Thin helpers around one server, one key and (usually) one subscription."""

    def __init__(self, test, srv, key):
        self.t = test
        self.srv = srv
        self.key = key

    def create_sub(self, expect=201, **fields):
        body = {"kind": "pull"}
        body.update(fields)
        r = self.srv.request("POST", "/v1/subscriptions", body, key=self.key)
        self.t.assertEqual(r.status, expect, r.raw[:500])
        return r.json

    def ingest(self, type_="order.created", data=None, ordering_key=None, **extra):
        body = {"type": type_, "data": data if data is not None else {"n": 1}}
        if ordering_key is not None:
            body["ordering_key"] = ordering_key
        body.update(extra)
        r = self.srv.request("POST", "/v1/events", body, key=self.key)
        self.t.assertEqual(r.status, 202, r.raw[:500])
        return r.json["id"]

    def ingest_batch(self, events):
        r = self.srv.request("POST", "/v1/events/batch", {"events": events}, key=self.key)
        self.t.assertEqual(r.status, 200, r.raw[:500])
        self.t.assertEqual(r.json["failed_count"], 0, r.raw[:500])
        return [x["id"] for x in r.json["results"]]

    def stored_event(self, event_id):
        r = self.srv.request("GET", "/v1/events/" + event_id, key=self.key)
        self.t.assertEqual(r.status, 200, r.raw[:500])
        ev = dict(r.json)
        ev.pop("deliveries", None)
        return ev

    def receive_raw(self, sub_id, body=None, key=None, timeout=30.0):
        return self.srv.request("POST", "/v1/subscriptions/%s/receive" % sub_id, body,
                                key=key or self.key, timeout=timeout)

    def receive(self, sub_id, **body):
        r = self.receive_raw(sub_id, body or None)
        self.t.assertEqual(r.status, 200, r.raw[:500])
        self.t.assertIsInstance(r.json, dict, r.raw[:500])
        self.t.assertIsInstance(r.json.get("data"), list, r.raw[:500])
        for m in r.json["data"]:
            self.t.assertIsInstance(m.get("receipt"), str, r.raw[:500])
            self.t.assertTrue(m["receipt"], r.raw[:500])
            self.t.assertIsInstance(m.get("attempt"), int, r.raw[:500])
            self.t.assertRegex(m.get("delivery_id", ""), DLV_ID_RE)
            self.t.assertEqual(set(m["event"]), EVENT_FIELDS, r.raw[:500])
        return r.json["data"]

    def receive_until(self, sub_id, count=1, timeout=10.0, interval=0.05, **body):
        """Poll receive (wait_s 0) until it returned at least count messages in
        total (collected over polls) or the deadline passes."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            got += self.receive(sub_id, **body)
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(interval)

    def settle_raw(self, sub_id, verb, receipts, key=None, **extra):
        body = {"receipts": list(receipts)}
        body.update(extra)
        return self.srv.request("POST", "/v1/subscriptions/%s/%s" % (sub_id, verb), body,
                                key=key or self.key)

    def settle(self, sub_id, verb, receipts, **extra):
        r = self.settle_raw(sub_id, verb, receipts, **extra)
        self.t.assertEqual(r.status, 200, r.raw[:500])
        results = r.json["results"]
        self.t.assertEqual([x["receipt"] for x in results], list(receipts), r.raw[:500])
        return [x["status"] for x in results]

    def ack(self, sub_id, receipts):
        return self.settle(sub_id, "ack", receipts)

    def nack(self, sub_id, receipts, delay_s=None):
        extra = {} if delay_s is None else {"delay_s": delay_s}
        return self.settle(sub_id, "nack", receipts, **extra)

    def delivery(self, dlv_id):
        r = self.srv.request("GET", "/v1/deliveries/" + dlv_id, key=self.key)
        self.t.assertEqual(r.status, 200, r.raw[:500])
        return r.json

    def deliveries(self, sub_id, status=None):
        path = "/v1/deliveries?limit=1000&subscription_id=" + q(sub_id)
        if status:
            path += "&status=" + q(status)
        r = self.srv.request("GET", path, key=self.key)
        self.t.assertEqual(r.status, 200, r.raw[:500])
        return r.json["data"]


class PullTest(ServerTestCase):
    # The webhook subscription of test_receive_on_webhook_subscription points at
    # loopback; it never gets an event.
    server_args = ["--allow-private-destinations"]

    def setUp(self):
        super().setUp()
        self.tenant = unique_tenant("pull")
        self.key = make_key(self.srv, self.tenant, ALL_SCOPES)["key"]
        self.c = PullClient(self, self.srv, self.key)

    # ------------------------------------------------------------ basics
    def test_receive_and_ack(self):
        sub = self.c.create_sub()
        self.assertEqual(sub["kind"], "pull", sub)
        self.assertIsNone(sub.get("url"), sub)
        self.assertEqual(sub["max_receives"], 10, sub)
        ids = [self.c.ingest("order.created", {"order": i, "s": "\u00e9\u2603", "f": 1.50},
                             ordering_key=None, source="shop", subject="order/%d" % i)
               for i in range(3)]
        msgs = self.c.receive(sub["id"], max=10)
        self.assertEqual([m["event"]["id"] for m in msgs], ids, "oldest first")
        for m, eid in zip(msgs, ids):
            self.assertEqual(m["attempt"], 1, m)
            self.assertEqual(m["event"], self.c.stored_event(eid))
            self.assertTrue(m["receipt"].startswith(m["delivery_id"] + "."), m)
            d = self.c.delivery(m["delivery_id"])
            self.assertEqual(d["event_id"], eid, d)
            self.assertEqual(d["subscription_id"], sub["id"], d)
        # Leased: not handed out again while the visibility timeout runs.
        self.assertEqual(self.c.receive(sub["id"]), [])
        statuses = self.c.ack(sub["id"], [m["receipt"] for m in msgs])
        self.assertEqual(statuses, ["acked"] * 3)
        for m in msgs:
            self.assertEqual(self.c.delivery(m["delivery_id"])["status"], "succeeded")
        self.assertEqual(self.c.receive(sub["id"], max=100), [])
        self.assertEqual(len(self.c.deliveries(sub["id"], "succeeded")), 3)

    def test_receive_max_limits_batch(self):
        sub = self.c.create_sub()
        ids = self.c.ingest_batch([{"type": "x.y", "data": {"i": i}} for i in range(5)])
        first = self.c.receive(sub["id"], max=2)
        self.assertEqual([m["event"]["id"] for m in first], ids[:2])
        rest = self.c.receive(sub["id"], max=10)
        self.assertEqual([m["event"]["id"] for m in rest], ids[2:])
        self.assertEqual(self.c.ack(sub["id"], [m["receipt"] for m in first + rest]),
                         ["acked"] * 5)

    def test_receive_without_body_uses_defaults(self):
        sub = self.c.create_sub()
        eid = self.c.ingest()
        r = self.c.receive_raw(sub["id"], None)
        self.assertEqual(r.status, 200, r.raw[:500])
        self.assertEqual([m["event"]["id"] for m in r.json["data"]], [eid])

    def test_visibility_expiry_redelivers_with_new_receipt(self):
        sub = self.c.create_sub()
        eid = self.c.ingest()
        t0 = time.monotonic()
        first = self.c.receive(sub["id"], visibility_timeout_s=1)
        self.assertEqual(len(first), 1, first)
        self.assertEqual(first[0]["attempt"], 1)
        self.assertEqual(self.c.receive(sub["id"], visibility_timeout_s=1), [],
                         "a leased message must not be handed out before its timeout")
        again = self.c.receive_until(sub["id"], 1, timeout=5.0, visibility_timeout_s=30)
        elapsed = time.monotonic() - t0
        self.assertEqual(len(again), 1, "not received again within 5 s of a 1 s visibility")
        self.assertGreaterEqual(elapsed, 0.9, "received again before the visibility timeout")
        self.assertLess(elapsed, 3.0)
        m = again[0]
        self.assertEqual(m["event"]["id"], eid)
        self.assertEqual(m["delivery_id"], first[0]["delivery_id"])
        self.assertEqual(m["attempt"], 2)
        self.assertNotEqual(m["receipt"], first[0]["receipt"])
        self.assertEqual(self.c.ack(sub["id"], [first[0]["receipt"], m["receipt"]]),
                         ["expired", "acked"])
        self.assertEqual(self.c.delivery(m["delivery_id"])["status"], "succeeded")

    def test_ack_after_visibility_passed_is_expired(self):
        sub = self.c.create_sub()
        self.c.ingest()
        msgs = self.c.receive(sub["id"], visibility_timeout_s=1)
        self.assertEqual(len(msgs), 1)
        time.sleep(1.2)  # just past the 1 s visibility timeout
        self.assertEqual(self.c.ack(sub["id"], [msgs[0]["receipt"]]), ["expired"])
        again = self.c.receive_until(sub["id"], 1, timeout=3.0)
        self.assertEqual(len(again), 1)
        self.assertEqual(again[0]["attempt"], 2)
        self.assertEqual(self.c.ack(sub["id"], [again[0]["receipt"]]), ["acked"])

    def test_ack_unknown_receipts_not_found(self):
        sub = self.c.create_sub()
        other = self.c.create_sub()
        self.c.ingest()
        theirs = self.c.receive(other["id"])
        self.assertEqual(len(theirs), 1)
        mine = self.c.receive(sub["id"])
        self.assertEqual(len(mine), 1)
        unknown = ["dlv_%s.%s" % (fake_ulid(), "ab" * 12), "garbage", theirs[0]["receipt"],
                   mine[0]["receipt"]]
        r = self.c.settle_raw(sub["id"], "ack", unknown)
        self.assertEqual(r.status, 200, r.raw[:500])
        self.assertEqual(r.json["results"],
                         [{"receipt": unknown[0], "status": "not_found"},
                          {"receipt": unknown[1], "status": "not_found"},
                          {"receipt": unknown[2], "status": "not_found"},
                          {"receipt": unknown[3], "status": "acked"}])
        # The other subscription's message was not touched by that.
        self.assertEqual(self.c.ack(other["id"], [theirs[0]["receipt"]]), ["acked"])

    # --------------------------------------------------------------- nack
    def test_nack_delay_zero_is_receivable_at_once(self):
        sub = self.c.create_sub()
        eid = self.c.ingest()
        first = self.c.receive(sub["id"], visibility_timeout_s=60)
        self.assertEqual(len(first), 1)
        self.assertEqual(self.c.nack(sub["id"], [first[0]["receipt"]], delay_s=0), ["nacked"])
        again = self.c.receive(sub["id"], visibility_timeout_s=60)
        self.assertEqual([m["event"]["id"] for m in again], [eid])
        self.assertEqual(again[0]["attempt"], 2)
        self.assertNotEqual(again[0]["receipt"], first[0]["receipt"])
        # The nacked receipt is spent.
        self.assertEqual(self.c.ack(sub["id"], [first[0]["receipt"]]), ["expired"])
        self.assertEqual(self.c.ack(sub["id"], [again[0]["receipt"]]), ["acked"])

    def test_nack_with_delay_hides_the_message(self):
        sub = self.c.create_sub()
        eid = self.c.ingest()
        first = self.c.receive(sub["id"], visibility_timeout_s=60)
        self.assertEqual(len(first), 1)
        t0 = time.monotonic()
        self.assertEqual(self.c.nack(sub["id"], [first[0]["receipt"]], delay_s=2), ["nacked"])
        self.assertEqual(self.c.receive(sub["id"]), [], "visible before delay_s passed")
        again = self.c.receive_until(sub["id"], 1, timeout=6.0, interval=0.1)
        elapsed = time.monotonic() - t0
        self.assertEqual([m["event"]["id"] for m in again], [eid],
                         "not receivable again within 6 s of a 2 s nack delay")
        self.assertGreaterEqual(elapsed, 1.8, "received again %.2f s after a 2 s nack" % elapsed)
        self.assertLess(elapsed, 4.0)
        self.assertEqual(again[0]["attempt"], 2)
        self.assertEqual(self.c.ack(sub["id"], [again[0]["receipt"]]), ["acked"])

    # ---------------------------------------------------------- long poll
    def test_long_poll_answers_soon_after_ingest(self):
        sub = self.c.create_sub()
        box = {}

        def waiter():
            t = time.monotonic()
            box["resp"] = self.c.receive_raw(sub["id"], {"wait_s": 5}, timeout=15)
            box["t_start"], box["t_end"] = t, time.monotonic()

        th = threading.Thread(target=waiter, daemon=True)
        th.start()
        time.sleep(0.4)  # let the receive park
        self.assertTrue(th.is_alive(), "the long poll answered before any event: %r"
                        % (box.get("resp").raw[:300] if box.get("resp") else None))
        eid = self.c.ingest()
        t_ingested = time.monotonic()
        th.join(10)
        self.assertFalse(th.is_alive(), "the long poll did not answer")
        r = box["resp"]
        self.assertEqual(r.status, 200, r.raw[:500])
        self.assertEqual([m["event"]["id"] for m in r.json["data"]], [eid], r.raw[:500])
        lag = box["t_end"] - t_ingested
        self.assertLess(lag, 1.0, "long poll answered %.3f s after the ingest" % lag)
        self.assertEqual(self.c.ack(sub["id"], [r.json["data"][0]["receipt"]]), ["acked"])

    def test_long_poll_times_out_empty(self):
        sub = self.c.create_sub()
        t0 = time.monotonic()
        r = self.c.receive_raw(sub["id"], {"wait_s": 1}, timeout=10)
        elapsed = time.monotonic() - t0
        self.assertEqual(r.status, 200, r.raw[:500])
        self.assertEqual(r.json, {"data": []})
        self.assertGreaterEqual(elapsed, 0.9, "answered after %.3f s" % elapsed)
        self.assertLess(elapsed, 2.5, "answered after %.3f s" % elapsed)

    def test_long_poll_wakes_on_visibility_expiry(self):
        # Re-checked every second: a lease expiring during the wait is handed out.
        sub = self.c.create_sub()
        self.c.ingest()
        first = self.c.receive(sub["id"], visibility_timeout_s=1)
        self.assertEqual(len(first), 1)
        t0 = time.monotonic()
        r = self.c.receive_raw(sub["id"], {"wait_s": 5}, timeout=15)
        elapsed = time.monotonic() - t0
        self.assertEqual(r.status, 200, r.raw[:500])
        self.assertEqual(len(r.json["data"]), 1, r.raw[:500])
        self.assertEqual(r.json["data"][0]["attempt"], 2)
        self.assertLess(elapsed, 3.0, "answered after %.3f s" % elapsed)

    # ------------------------------------------------- max_receives, dead
    def test_max_receives_then_dead_then_retry(self):
        sub = self.c.create_sub(max_receives=2)
        self.assertEqual(sub["max_receives"], 2, sub)
        eid = self.c.ingest()
        first = self.c.receive(sub["id"], visibility_timeout_s=1)
        self.assertEqual([m["attempt"] for m in first], [1])
        dlv = first[0]["delivery_id"]
        second = self.c.receive_until(sub["id"], 1, timeout=5.0, visibility_timeout_s=1)
        self.assertEqual([m["attempt"] for m in second], [2])
        # Received twice and never acked: after the second lease expires it is dead.
        deadline = time.monotonic() + 6.0
        dead = []
        while time.monotonic() < deadline:
            extra = self.c.receive(sub["id"], visibility_timeout_s=1)
            self.assertEqual(extra, [], "received a third time with max_receives=2")
            dead = self.c.deliveries(sub["id"], "dead")
            if dead:
                break
            time.sleep(0.1)
        self.assertEqual([d["id"] for d in dead], [dlv],
                         "not dead within 6 s: %r" % self.c.deliveries(sub["id"]))
        self.assertEqual(dead[0]["event_id"], eid)
        self.assertEqual(self.c.delivery(dlv)["status"], "dead")
        time.sleep(1.2)
        self.assertEqual(self.c.receive(sub["id"]), [], "a dead message was returned")
        self.assertEqual(self.c.ack(sub["id"], [second[0]["receipt"]]), ["expired"])

        r = self.srv.request("POST", "/v1/deliveries/%s/retry" % dlv, key=self.key)
        self.assertEqual(r.status, 202, r.raw[:500])
        self.assertEqual(r.json["status"], "pending", r.raw[:500])
        back = self.c.receive_until(sub["id"], 1, timeout=3.0)
        self.assertEqual([m["delivery_id"] for m in back], [dlv],
                         "a retried dead pull delivery is not receivable again; delivery now: %r"
                         % self.c.delivery(dlv))
        self.assertEqual(back[0]["event"]["id"], eid)
        self.assertEqual(self.c.ack(sub["id"], [back[0]["receipt"]]), ["acked"])
        self.assertEqual(self.c.delivery(dlv)["status"], "succeeded")

    def test_replay_dead_makes_it_receivable(self):
        sub = self.c.create_sub(max_receives=1)
        eid = self.c.ingest()
        first = self.c.receive(sub["id"], visibility_timeout_s=1)
        self.assertEqual(len(first), 1)
        deadline = time.monotonic() + 6.0
        while time.monotonic() < deadline and not self.c.deliveries(sub["id"], "dead"):
            self.assertEqual(self.c.receive(sub["id"], visibility_timeout_s=1), [])
            time.sleep(0.1)
        self.assertEqual(len(self.c.deliveries(sub["id"], "dead")), 1)
        r = self.srv.request("POST", "/v1/subscriptions/%s/replay" % sub["id"], {"status": "dead"},
                             key=self.key)
        self.assertEqual(r.status, 202, r.raw[:500])
        self.assertEqual(r.json["requeued"], 1, r.raw[:500])
        back = self.c.receive_until(sub["id"], 1, timeout=3.0)
        self.assertEqual([m["event"]["id"] for m in back], [eid],
                         "a replayed dead pull delivery is not receivable again; delivery now: %r"
                         % self.c.deliveries(sub["id"]))

    # ---------------------------------------------------------- validation
    def test_receive_validation(self):
        sub = self.c.create_sub()
        for body, field in [({"max": 0}, "max"), ({"max": 101}, "max"),
                            ({"wait_s": 21}, "wait_s"), ({"wait_s": -1}, "wait_s"),
                            ({"visibility_timeout_s": 0}, "visibility_timeout_s"),
                            ({"visibility_timeout_s": 43201}, "visibility_timeout_s"),
                            ({"max": "5"}, "max"), ({"maxx": 5}, "maxx")]:
            r = self.c.receive_raw(sub["id"], body)
            self.assertError(r, 400, "validation_error", mentions=field, msg=repr(body))

    def test_ack_nack_validation(self):
        sub = self.c.create_sub()
        for verb, body, field in [("ack", {}, "receipts"), ("ack", {"receipts": []}, "receipts"),
                                  ("ack", {"receipts": ["x"] * 101}, "receipts"),
                                  ("ack", {"receipts": [1]}, "receipts"),
                                  ("nack", {"receipts": ["x"], "delay_s": -1}, "delay_s"),
                                  ("nack", {"receipts": ["x"], "delay_s": 43201}, "delay_s")]:
            r = self.srv.request("POST", "/v1/subscriptions/%s/%s" % (sub["id"], verb), body,
                                 key=self.key)
            self.assertError(r, 400, "validation_error", mentions=field, msg=verb + repr(body))

    def test_receive_on_webhook_subscription(self):
        r = self.srv.request("POST", "/v1/subscriptions",
                             {"url": "http://127.0.0.1:9/hook", "event_types": ["never.*"]},
                             key=self.key)
        self.assertEqual(r.status, 201, r.raw[:500])
        hook = r.json["id"]
        self.assertError(self.c.receive_raw(hook, {}), 400, "validation_error")
        for verb in ("ack", "nack"):
            self.assertError(self.c.settle_raw(hook, verb, ["dlv_x.y"]), 400, "validation_error")

    def test_pull_subscription_with_url_is_refused(self):
        r = self.srv.request("POST", "/v1/subscriptions",
                             {"kind": "pull", "url": "http://127.0.0.1:9/hook"}, key=self.key)
        self.assertError(r, 400, "validation_error", mentions="url")
        for bad in (0, 1001):
            r = self.srv.request("POST", "/v1/subscriptions", {"kind": "pull", "max_receives": bad},
                                 key=self.key)
            self.assertError(r, 400, "validation_error", mentions="max_receives")

    def test_scope_consume_required(self):
        sub = self.c.create_sub()
        self.c.ingest()
        weak = make_key(self.srv, self.tenant, ["ingest", "read", "manage"])["key"]
        self.assertError(self.c.receive_raw(sub["id"], {}, key=weak), 403, "forbidden")
        for verb in ("ack", "nack"):
            self.assertError(self.c.settle_raw(sub["id"], verb, ["dlv_x.y"], key=weak), 403,
                             "forbidden")
        # Nothing was leased by the refused call.
        self.assertEqual(len(self.c.receive(sub["id"])), 1)

    def test_consume_only_key_can_receive(self):
        sub = self.c.create_sub()
        eid = self.c.ingest()
        consumer = make_key(self.srv, self.tenant, ["consume"])["key"]
        r = self.c.receive_raw(sub["id"], {}, key=consumer)
        self.assertEqual(r.status, 200, r.raw[:500])
        self.assertEqual([m["event"]["id"] for m in r.json["data"]], [eid])
        r = self.c.settle_raw(sub["id"], "ack", [r.json["data"][0]["receipt"]], key=consumer)
        self.assertEqual(r.status, 200, r.raw[:500])
        self.assertEqual(r.json["results"][0]["status"], "acked")

    def test_other_tenant_gets_404(self):
        sub = self.c.create_sub()
        self.c.ingest()
        other = make_key(self.srv, unique_tenant("pull-other"), ALL_SCOPES)["key"]
        self.assertError(self.c.receive_raw(sub["id"], {}, key=other), 404, "not_found")
        for verb in ("ack", "nack"):
            self.assertError(self.c.settle_raw(sub["id"], verb, ["dlv_x.y"], key=other), 404,
                             "not_found")
        self.assertError(self.c.receive_raw("sub_" + fake_ulid(), {}), 404, "not_found")
        self.assertError(self.c.receive_raw("nonsense", {}), 404, "not_found")
        # Still all there for the owner.
        self.assertEqual(len(self.c.receive(sub["id"])), 1)

    def test_other_tenant_receipt_not_found(self):
        sub = self.c.create_sub()
        self.c.ingest()
        mine = self.c.receive(sub["id"])
        other_key = make_key(self.srv, unique_tenant("pull-other"), ALL_SCOPES)["key"]
        other = PullClient(self, self.srv, other_key)
        osub = other.create_sub()
        r = other.settle_raw(osub["id"], "ack", [mine[0]["receipt"]])
        self.assertEqual(r.status, 200, r.raw[:500])
        self.assertEqual(r.json["results"][0]["status"], "not_found")
        self.assertEqual(self.c.ack(sub["id"], [mine[0]["receipt"]]), ["acked"])

    # ------------------------------------------------------------- ordered
    def test_ordered_pull(self):
        sub = self.c.create_sub(ordered=True)
        self.assertTrue(sub["ordered"], sub)
        a1 = self.c.ingest(data={"n": "A1"}, ordering_key="A")
        a2 = self.c.ingest(data={"n": "A2"}, ordering_key="A")
        b1 = self.c.ingest(data={"n": "B1"}, ordering_key="B")
        first = self.c.receive(sub["id"], max=10)
        self.assertEqual([m["event"]["id"] for m in first], [a1, b1],
                         "got %r" % [m["event"]["data"] for m in first])
        self.assertEqual(self.c.receive(sub["id"], max=10), [], "A2 handed out while A1 is leased")
        by_id = {m["event"]["id"]: m for m in first}
        self.assertEqual(self.c.ack(sub["id"], [by_id[a1]["receipt"]]), ["acked"])
        nxt = self.c.receive(sub["id"], max=10)
        self.assertEqual([m["event"]["id"] for m in nxt], [a2])
        self.assertEqual(self.c.ack(sub["id"], [by_id[b1]["receipt"], nxt[0]["receipt"]]),
                         ["acked", "acked"])

    def test_disabled_pull_subscription_holds_its_messages(self):
        sub = self.c.create_sub()
        eid = self.c.ingest(data={"n": "held"})
        r = self.srv.request("PATCH", "/v1/subscriptions/" + sub["id"], {"enabled": False},
                             key=self.key)
        self.assertEqual(r.status, 200, r.raw[:300])
        self.assertEqual(self.c.receive(sub["id"]), [], "a disabled subscription handed out")
        r = self.srv.request("PATCH", "/v1/subscriptions/" + sub["id"], {"enabled": True},
                             key=self.key)
        self.assertEqual(r.status, 200, r.raw[:300])
        self.assertEqual([m["event"]["id"] for m in self.c.receive(sub["id"])], [eid])

    def test_replay_all_keeps_the_order_of_an_ordered_subscription(self):
        a1 = self.c.ingest(data={"n": "A1"}, ordering_key="A")
        a2 = self.c.ingest(data={"n": "A2"}, ordering_key="A")
        sub = self.c.create_sub(ordered=True)  # created after the events
        r = self.srv.request("POST", "/v1/subscriptions/%s/replay" % sub["id"],
                             {"status": "all"}, key=self.key)
        self.assertEqual(r.status, 202, r.raw[:300])
        self.assertEqual(r.json["created"], 2, r.raw[:300])
        first = self.c.receive(sub["id"], max=10)
        self.assertEqual([m["event"]["id"] for m in first], [a1], "replayed key A out of order")
        self.assertEqual(self.c.ack(sub["id"], [first[0]["receipt"]]), ["acked"])
        self.assertEqual([m["event"]["id"] for m in self.c.receive(sub["id"], max=10)], [a2])

    def test_ordered_pull_nack_keeps_order(self):
        sub = self.c.create_sub(ordered=True)
        a1 = self.c.ingest(data={"n": "A1"}, ordering_key="A")
        a2 = self.c.ingest(data={"n": "A2"}, ordering_key="A")
        first = self.c.receive(sub["id"], max=10)
        self.assertEqual([m["event"]["id"] for m in first], [a1])
        self.assertEqual(self.c.nack(sub["id"], [first[0]["receipt"]], delay_s=0), ["nacked"])
        again = self.c.receive(sub["id"], max=10)
        self.assertEqual([m["event"]["id"] for m in again], [a1],
                         "after a nack the head of the key must come back first, alone")
        self.assertEqual(self.c.ack(sub["id"], [again[0]["receipt"]]), ["acked"])
        self.assertEqual([m["event"]["id"] for m in self.c.receive(sub["id"], max=10)], [a2])

    def test_ordered_pull_without_key_one_at_a_time(self):
        sub = self.c.create_sub(ordered=True)
        ids = self.c.ingest_batch([{"type": "x.y", "data": {"i": i}} for i in range(3)])
        seen = []
        for _ in range(3):
            msgs = self.c.receive(sub["id"], max=10)
            self.assertEqual(len(msgs), 1, "events without ordering_key share one sequence")
            seen.append(msgs[0]["event"]["id"])
            self.assertEqual(self.c.ack(sub["id"], [msgs[0]["receipt"]]), ["acked"])
        self.assertEqual(seen, ids)


def nested(depth):
    """`data` nested `depth` levels of objects and arrays in all (the data
    object is level 1): {"kind":"x","deep":[[...[1]...]]}."""
    return '{"kind":"x","deep":%s1%s}' % ("[" * (depth - 1), "]" * (depth - 1))


class PullFilterDepthTest(ServerTestCase):
    """A filter sees `data` as deep as ingest accepts it (128 levels in the
    body, the body object included): deep events are matched on their
    fields, never as if `data` were null."""

    def setUp(self):
        super().setUp()
        self.tenant = unique_tenant("depth")
        self.key = make_key(self.srv, self.tenant, ALL_SCOPES)["key"]
        self.c = PullClient(self, self.srv, self.key)

    def post(self, data_text):
        body = '{"type":"deep.event","data":%s}' % data_text
        return self.srv.request("POST", "/v1/events", body.encode(), key=self.key)

    def test_deep_events_match_a_filter_on_a_top_level_field(self):
        sub = self.c.create_sub(filter={"data": {"kind": ["x"]}})
        other = self.c.create_sub(filter={"data": {"kind": ["y"]}})
        ids = []
        # 40 levels of data, and the deepest body ingest accepts (data at 127).
        for depth in (40, 127):
            r = self.post(nested(depth))
            self.assertEqual(r.status, 202, r.raw[:300])
            ids.append(r.json["id"])
        got = self.c.receive_until(sub["id"], count=2, max=10)
        self.assertEqual(sorted(m["event"]["id"] for m in got), sorted(ids))
        for m in got:
            self.assertEqual(m["event"]["data"]["kind"], "x")
        self.assertEqual(self.c.receive(other["id"], max=10), [], "kind y matched kind x")
        self.assertEqual(self.c.ack(sub["id"], [m["receipt"] for m in got]), ["acked"] * 2)

    def test_one_level_over_the_ingest_limit_is_refused(self):
        sub = self.c.create_sub(filter={"data": {"kind": ["x"]}})
        r = self.post(nested(128))
        self.assertError(r, 400, "invalid_json", mentions="128 levels")
        self.assertEqual(self.c.receive(sub["id"]), [])

    def test_deep_events_replayed_match_too(self):
        ids = []
        for depth in (40, 127):
            r = self.post(nested(depth))
            self.assertEqual(r.status, 202, r.raw[:300])
            ids.append(r.json["id"])
        sub = self.c.create_sub(filter={"data": {"kind": ["x"]}})  # after the events
        r = self.srv.request("POST", "/v1/subscriptions/%s/replay" % sub["id"],
                             {"status": "all"}, key=self.key)
        self.assertEqual(r.status, 202, r.raw[:300])
        self.assertEqual(r.json["created"], 2, r.raw[:300])
        got = self.c.receive(sub["id"], max=10)
        self.assertEqual(sorted(m["event"]["id"] for m in got), sorted(ids))


class PullShutdownTest(ServerTestCase):
    """SIGTERM while a receive is parked: it answers 200 {"data":[]} and
    takes no lease (the message is receivable after a restart with attempt 1)."""
    shared_server = False

    def parked(self, srv):
        r = srv.request("GET", "/metrics")
        for line in r.raw.decode().splitlines():
            if line.startswith("triggers_parked_receives "):
                return float(line.split()[1])
        self.fail("no triggers_parked_receives in /metrics")

    def test_sigterm_answers_a_parked_receive_empty_and_takes_no_lease(self):
        srv = self.start_server()
        key = make_key(srv, unique_tenant("stop"), ALL_SCOPES)["key"]
        c = PullClient(self, srv, key)
        sub = c.create_sub()
        eid = c.ingest(data={"n": "waits"})
        # Disabled, the subscription holds its message: the receive parks
        # beside a message that is there.
        r = srv.request("PATCH", "/v1/subscriptions/" + sub["id"], {"enabled": False}, key=key)
        self.assertEqual(r.status, 200, r.raw[:300])
        box = {}

        def receive():
            box["resp"] = c.receive_raw(sub["id"], {"wait_s": 20}, timeout=30)

        th = threading.Thread(target=receive, daemon=True)
        th.start()
        deadline = time.monotonic() + 5
        while self.parked(srv) < 1:
            self.assertLess(time.monotonic(), deadline, "the receive never parked")
            time.sleep(0.02)
        t0 = time.monotonic()
        self.assertEqual(srv.stop(), 0)
        self.assertLess(time.monotonic() - t0, 5, "a parked receive held up the shutdown")
        th.join(5)
        self.assertFalse(th.is_alive(), "the parked receive was not answered at shutdown")
        self.assertEqual(box["resp"].status, 200, box["resp"].raw[:300])
        self.assertEqual(box["resp"].json, {"data": []})
        srv.start()
        r = srv.request("PATCH", "/v1/subscriptions/" + sub["id"], {"enabled": True}, key=key)
        self.assertEqual(r.status, 200, r.raw[:300])
        got = c.receive(sub["id"])
        self.assertEqual([(m["event"]["id"], m["attempt"]) for m in got], [(eid, 1)])


if __name__ == "__main__":
    unittest.main()
