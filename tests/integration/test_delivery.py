"""Black-box tests of push delivery (issue 3): subscriptions, matching, signed
webhooks, retries, dead letters, retry/replay, isolation and shutdown.

What is tested is /work/notes/delivery-decisions.md (spec sections 5, 6, 9).
A real receiver (receiver.py) listens on 127.0.0.1, so the servers run with
--allow-private-destinations (except the test of that guard).

The signature is checked by our own HMAC code and by the official npm package
`standardwebhooks` (js/verify.js). It is installed once into
$TRIGGERS_IT_NPM_PREFIX (default <tmp>/triggers-it-npm); that test is skipped
only when node or npm are missing.

Run from the repo root:
  /usr/bin/python3 -m unittest -v tests/integration/test_delivery.py
"""

import base64
import datetime
import email.utils
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (  # noqa: E402
    TIME_RE, Server, ServerTestCase, ensure_npm_package, make_key, register_secret, unique_tenant,
)
from receiver import Receiver  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
VERIFY_JS = os.path.join(HERE, "js", "verify.js")
NPM_PREFIX = os.environ.get("TRIGGERS_IT_NPM_PREFIX") or os.path.join(
    tempfile.gettempdir(), "triggers-it-npm")

SCHEDULE = ["100ms", "100ms", "100ms"]     # max attempts = 4
DELIVERY_TIMEOUT_S = 2
BASE_ARGS = ["--allow-private-destinations", "--retry-schedule", ",".join(SCHEDULE),
             "--delivery-timeout", "%ds" % DELIVERY_TIMEOUT_S]

SUB_ID_RE = re.compile(r"^sub_[0-9A-HJKMNP-TV-Z]{26}$", re.I)
DLV_ID_RE = re.compile(r"^dlv_[0-9A-HJKMNP-TV-Z]{26}$", re.I)
SECRET_RE = re.compile(r"^whsec_[A-Za-z0-9+/]+={0,2}$")
SUB_FIELDS = {"id", "kind", "url", "event_types", "filter", "max_in_flight", "rate_limit_per_s",
              "ordered", "max_receives", "description", "enabled", "name", "created_at",
              "updated_at"}
DLV_FIELDS = {"id", "event_id", "subscription_id", "status", "attempt_count", "next_attempt_at",
              "last_status_code", "last_error", "created_at", "updated_at"}
ATTEMPT_FIELDS = {"at", "status_code", "latency_ms", "error", "response_snippet"}
DLV_STATES = {"pending", "in_flight", "succeeded", "retrying", "dead"}


def q(value):
    return urllib.parse.quote(str(value), safe="")


def parse_time(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)


def fmt_time(dt):
    dt = dt.astimezone(datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def expected_signature(secret, msg_id, ts, body):
    key = base64.b64decode(secret[len("whsec_"):])
    mac = hmac.new(key, msg_id.encode() + b"." + ts.encode() + b"." + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


# ------------------------------------------------------------ raw JSON spans
_WS = b" \t\r\n"


def _skip_ws(raw, i):
    while i < len(raw) and raw[i] in _WS:
        i += 1
    return i


def _end_of_string(raw, i):
    """i is at the opening quote; returns the index after the closing quote."""
    i += 1
    while True:
        c = raw[i]
        if c == 0x5C:  # backslash
            i += 2
        elif c == 0x22:
            return i + 1
        else:
            i += 1


def _end_of_value(raw, i):
    c = raw[i]
    if c == 0x22:
        return _end_of_string(raw, i)
    if c in b"{[":
        depth = 0
        while True:
            c = raw[i]
            if c == 0x22:
                i = _end_of_string(raw, i)
                continue
            if c in b"{[":
                depth += 1
            elif c in b"}]":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
    while i < len(raw) and raw[i] not in b",}] \t\r\n":
        i += 1
    return i


def top_level_members(raw):
    """The members of the JSON object text raw as [(key, member_bytes, value_bytes)],
    spans taken verbatim from raw."""
    i = _skip_ws(raw, 0)
    assert raw[i:i + 1] == b"{", raw[:50]
    i = _skip_ws(raw, i + 1)
    out = []
    if raw[i:i + 1] == b"}":
        return out
    while True:
        start = i
        kend = _end_of_string(raw, i)
        key = json.loads(raw[i:kend])
        i = _skip_ws(raw, kend)
        assert raw[i:i + 1] == b":"
        i = _skip_ws(raw, i + 1)
        vstart = i
        i = _end_of_value(raw, i)
        out.append((key, raw[start:i], raw[vstart:i]))
        i = _skip_ws(raw, i)
        if raw[i:i + 1] == b"}":
            return out
        assert raw[i:i + 1] == b",", raw[i:i + 20]
        i = _skip_ws(raw, i + 1)


# ----------------------------------------------------- standardwebhooks (npm)
def ensure_standardwebhooks():
    """Returns the node binary, with standardwebhooks installed under NPM_PREFIX."""
    return ensure_npm_package(NPM_PREFIX, "standardwebhooks@1",
                              "the check with the official `standardwebhooks` npm package")


def npm_verify(cases):
    """cases: [(secret, headers dict, body bytes)] -> [(ok, error)] and the package version."""
    node = ensure_standardwebhooks()
    payload = {"cases": [{"secret": s, "headers": h, "body_b64": base64.b64encode(b).decode()}
                         for s, h, b in cases]}
    p = subprocess.run([node, VERIFY_JS, NPM_PREFIX], input=json.dumps(payload),
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("verify.js failed (%d): %s" % (p.returncode, p.stderr[-2000:]))
    out = json.loads(p.stdout)
    return [(r["ok"], r.get("error")) for r in out["results"]], out["version"]


# ================================================================ base class
class DeliveryCase(ServerTestCase):
    server_args = BASE_ARGS

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rcv = Receiver().start()
        cls.addClassCleanup(cls.rcv.stop)  # runs before the server is stopped

    def setUp(self):
        super().setUp()
        self.tenant = unique_tenant("dlv")
        self.key = make_key(self.srv, self.tenant, ["ingest", "read", "manage"])["key"]
        self.token = secrets.token_hex(4)

    # ---------------------------------------------------------------- helpers
    def path(self, name):
        return "/%s/%s" % (self.token, name)

    def create_sub(self, path=None, key=None, srv=None, expect=201, **fields):
        body = dict(fields)
        if path is not None:
            body["url"] = self.rcv.url(path)
        r = (srv or self.srv).request("POST", "/v1/subscriptions", body, key=key or self.key)
        self.assertStatus(r, expect, "POST /v1/subscriptions %r" % (body,))
        if expect == 201:
            register_secret(r.json.get("secret"))
        return r.json

    def delete_sub_later(self, sub_id, key=None):
        def cleanup():
            self.srv.request("DELETE", "/v1/subscriptions/" + sub_id, key=key or self.key)
        self.addCleanup(cleanup)

    def ingest(self, etype, data_text=None, key=None, srv=None, **extra):
        """POST /v1/events with data given as raw JSON text; returns the event id."""
        parts = ['"type":%s' % json.dumps(etype)]
        if data_text is not None:
            parts.append('"data":' + data_text)
        for k, v in extra.items():
            parts.append("%s:%s" % (json.dumps(k), json.dumps(v)))
        body = ("{" + ",".join(parts) + "}").encode()
        r = (srv or self.srv).request("POST", "/v1/events", body, key=key or self.key)
        self.assertStatus(r, 202, "POST /v1/events %r" % body[:200])
        return r.json["id"]

    def ingest_batch(self, events, key=None):
        r = self.srv.request("POST", "/v1/events/batch", {"events": events}, key=key or self.key)
        self.assertStatus(r, 200, "batch")
        self.assertEqual(r.json["failed_count"], 0, r.raw[:300])
        return [x["id"] for x in r.json["results"]]

    def get(self, path, key=None, srv=None, expect=200):
        r = (srv or self.srv).request("GET", path, key=key or self.key)
        self.assertStatus(r, expect, "GET " + path)
        return r

    def list_deliveries(self, key=None, srv=None, **query):
        items, cursor = [], None
        for _ in range(1000):
            qs = "&".join("%s=%s" % (k, q(v)) for k, v in query.items())
            path = "/v1/deliveries?limit=1000" + ("&" + qs if qs else "")
            if cursor is not None:
                path += "&after=" + q(cursor)
            r = self.get(path, key=key, srv=srv)
            items.extend(r.json["data"])
            cursor = r.json["next_cursor"]
            if cursor is None:
                return items
        self.fail("pagination of /v1/deliveries does not end")

    def delivery_of(self, event_id, sub_id, key=None, srv=None):
        """The single delivery of (event, subscription); fails if there is not exactly one."""
        ds = [d for d in self.list_deliveries(key=key, srv=srv, event_id=event_id)
              if d["subscription_id"] == sub_id]
        self.assertEqual(len(ds), 1, "deliveries of %s for %s: %r" % (event_id, sub_id, ds))
        return ds[0]

    def wait_delivery(self, dlv_id, pred, timeout, what="", key=None, srv=None):
        """Polls GET /v1/deliveries/{id} until pred(obj); returns the object."""
        deadline = time.monotonic() + timeout
        while True:
            obj = self.get("/v1/deliveries/" + dlv_id, key=key, srv=srv).json
            if pred(obj):
                return obj
            if time.monotonic() > deadline:
                self.fail("delivery %s: %s not reached within %.1f s; last: %s"
                          % (dlv_id, what, timeout, json.dumps(obj)[:1500]))
            time.sleep(0.05)

    def wait_status(self, dlv_id, status, timeout, **kw):
        return self.wait_delivery(dlv_id, lambda d: d["status"] == status, timeout,
                                  "status %r" % status, **kw)

    def arrivals(self, path, count, timeout):
        got = self.rcv.wait_for(path, count, timeout)
        self.assertGreaterEqual(len(got), count, "%d request(s) to %s within %.1f s, expected %d"
                                % (len(got), path, timeout, count))
        return got

    def assertNoDelivery(self, event_id, sub_id, msg=""):
        ds = [d for d in self.list_deliveries(event_id=event_id) if d["subscription_id"] == sub_id]
        self.assertEqual(ds, [], "event %s must not have a delivery for %s %s" % (event_id, sub_id, msg))

    def assertDeliveryShape(self, d):
        self.assertTrue(DLV_FIELDS <= set(d), "delivery lacks %s: %r" % (DLV_FIELDS - set(d), d))
        self.assertRegex(d["id"], DLV_ID_RE)
        self.assertIn(d["status"], DLV_STATES)
        self.assertRegex(d["created_at"], TIME_RE)
        self.assertRegex(d["updated_at"], TIME_RE)


# ======================================================== content and signing
class DeliveryContentTests(DeliveryCase):

    DATA = '{ "z" : 1.50, "a":[1e3 ,-0.0, "\\u00e9\\n", true,null], "\u00fc":{} }'

    def deliver_one(self, name):
        path = self.path(name)
        sub = self.create_sub(path, event_types=["content.*"])
        eid = self.ingest("content.created", self.DATA, source="shop", subject="order/42",
                          ordering_key="cust-7")
        req = self.arrivals(path, 1, 10)[0]
        return sub, eid, req

    def test_body_is_the_stored_event_exactly(self):
        sub, eid, req = self.deliver_one("body")
        self.assertEqual(req.method, "POST")
        got = self.get("/v1/events/" + eid)
        members = top_level_members(got.raw)
        keys = [m[0] for m in members]
        self.assertIn("deliveries", keys, got.raw[:300])
        # 1. the raw GET text without its "deliveries" member, byte for byte
        expected = b"{" + b",".join(m[1] for m in members if m[0] != "deliveries") + b"}"
        self.assertEqual(req.body, expected,
                         "delivered body differs from GET /v1/events/{id} minus deliveries")
        # 2. the same object, with exactly the fields of a stored event
        obj = json.loads(req.body)
        stored = dict(got.json)
        stored.pop("deliveries")
        self.assertEqual(obj, stored)
        self.assertEqual(set(obj), {"id", "type", "source", "subject", "ordering_key", "time",
                                    "data"})
        self.assertEqual((obj["id"], obj["type"], obj["source"], obj["subject"],
                          obj["ordering_key"]),
                         (eid, "content.created", "shop", "order/42", "cust-7"))
        # 3. data byte for byte as ingested
        data_raw = [m[2] for m in top_level_members(req.body) if m[0] == "data"]
        self.assertEqual(data_raw, [self.DATA.encode()], "data not byte-for-byte")
        # the event's delivery summary names this subscription
        self.assertIn(sub["id"], [d["subscription_id"] for d in got.json["deliveries"]])

    def test_headers(self):
        sub, eid, req = self.deliver_one("headers")
        h = req.headers
        version = self.get("/health").json.get("version")
        self.assertEqual(h.get("content-type", "").split(";")[0].strip(), "application/json", h)
        self.assertTrue(h.get("user-agent", "").startswith("triggers/"), h)
        if version:
            self.assertEqual(h["user-agent"], "triggers/" + version)
        self.assertEqual(h.get("webhook-id"), eid)
        ts = h.get("webhook-timestamp", "")
        self.assertRegex(ts, r"^\d+$")
        self.assertLess(abs(int(ts) - req.wall), 60, "webhook-timestamp %s vs now %d"
                        % (ts, req.wall))
        self.assertIn("webhook-signature", h)

    def test_signature_own_hmac(self):
        sub, eid, req = self.deliver_one("sig")
        secret = sub["secret"]
        self.assertRegex(secret, SECRET_RE)
        self.assertGreaterEqual(len(base64.b64decode(secret[6:])), 24)
        sigs = req.headers["webhook-signature"].split(" ")
        self.assertEqual(sigs, [expected_signature(secret, req.headers["webhook-id"],
                                                   req.headers["webhook-timestamp"], req.body)])
        # a different secret does not produce it (the check is not vacuous)
        other = "whsec_" + base64.b64encode(os.urandom(24)).decode()
        self.assertNotEqual(sigs[0], expected_signature(other, req.headers["webhook-id"],
                                                        req.headers["webhook-timestamp"],
                                                        req.body))

    def test_signature_standardwebhooks_npm(self):
        """The official JS library accepts our deliveries, also after a rotation
        (with the new and with the old secret), and rejects a tampered body."""
        ensure_standardwebhooks()  # skips only if node/npm are missing
        sub, eid, req = self.deliver_one("npm")
        r = self.srv.request("POST", "/v1/subscriptions/%s/rotate-secret" % sub["id"],
                             key=self.key)
        self.assertStatus(r, 200, "rotate-secret")
        new_secret = register_secret(r.json["secret"])
        eid2 = self.ingest("content.updated", '{"n":2}')
        req2 = self.arrivals(self.path("npm"), 2, 10)[1]
        self.assertEqual(req2.headers["webhook-id"], eid2)
        cases = [
            (sub["secret"], req.headers, req.body),
            (new_secret, req2.headers, req2.body),
            (sub["secret"], req2.headers, req2.body),
            (sub["secret"], req.headers, req.body.replace(b"content.created", b"content.CREATED")),
            (new_secret, req.headers, req.body),  # new secret did not sign the old delivery
        ]
        results, version = npm_verify(cases)
        self.assertTrue(version.startswith("1."), version)
        self.assertEqual(results[0], (True, None), "standardwebhooks rejects a delivery")
        self.assertEqual(results[1], (True, None), "rejected with the new secret after rotation")
        self.assertEqual(results[2], (True, None), "rejected with the old secret after rotation")
        self.assertFalse(results[3][0], "a tampered body must not verify")
        self.assertFalse(results[4][0], "the new secret must not verify a pre-rotation delivery")

    def test_delivery_attempt_log_line_has_no_payload_or_secret(self):
        marker = "payload-marker-" + secrets.token_hex(8)
        path = self.path("log")
        sub = self.create_sub(path)
        eid = self.ingest("log.test", json.dumps({"m": marker}))
        self.arrivals(path, 1, 10)
        d = self.wait_status(self.delivery_of(eid, sub["id"])["id"], "succeeded", 10)
        line = self.srv.wait_log(lambda o: o.get("msg") == "delivery attempt"
                                 and o.get("delivery_id") == d["id"], timeout=5)
        self.assertIsNotNone(line, "no 'delivery attempt' log line for %s" % d["id"])
        for f in ("delivery_id", "subscription_id", "attempt", "status_code", "latency_ms",
                  "outcome"):
            self.assertIn(f, line)
        self.assertEqual(line["subscription_id"], sub["id"])
        self.assertEqual(line["attempt"], 1)
        self.assertEqual(line["status_code"], 200)
        text = "\n".join(self.srv.log_lines())
        self.assertNotIn(marker, text, "the payload appears in the log")
        self.assertNotIn(sub["secret"], text, "the webhook secret appears in the log")
        self.assertNotIn(sub["secret"][6:], text, "the webhook secret appears in the log")


# ==================================================================== matching
class MatchingTests(DeliveryCase):

    def check_matching(self, subs, events, expected, skip=None):
        """subs: name -> sub object (path self.path(name)); events: label -> event id;
        expected: name -> set of labels; skip: name -> labels not judged.
        Checks the delivery rows (created at ingest) and then the requests."""
        skip = skip or {}
        ids = {v: k for k, v in events.items()}
        problems = []
        for name, sub in subs.items():
            for label, eid in events.items():
                if label in skip.get(name, ()):
                    continue
                has = [d for d in self.list_deliveries(event_id=eid)
                       if d["subscription_id"] == sub["id"]]
                want = label in expected[name]
                if want and len(has) != 1:
                    problems.append("%s should match %s (deliveries: %d)" % (name, label, len(has)))
                if not want and has:
                    problems.append("%s must not match %s" % (name, label))
        self.assertEqual(problems, [], "\n" + "\n".join(problems))
        for name, sub in subs.items():
            want_ids = {events[l] for l in expected[name]}
            missing = self.rcv.wait_for_ids(self.path(name), want_ids, 15)
            self.assertEqual(missing, set(), "%s: never received %s"
                             % (name, sorted(ids[m] for m in missing)))
            got = {r.headers.get("webhook-id") for r in self.rcv.requests(self.path(name))}
            judged = {events[l] for l in events if l not in skip.get(name, ())}
            extra = (got & judged) - want_ids
            self.assertEqual(extra, set(), "%s received unexpected %s"
                             % (name, sorted(ids.get(e, e) for e in extra)))

    def test_event_type_globs(self):
        patterns = {
            "one": ["order.*"],
            "many": ["order.**"],
            "exact": ["order.created"],
            "lead": ["*.created"],
            "mid": ["order.*.b"],
            "multi": ["order.*", "invoice.paid"],
            "all": None,
        }
        subs = {}
        for name, et in patterns.items():
            fields = {} if et is None else {"event_types": et}
            subs[name] = self.create_sub(self.path(name), **fields)
            self.assertEqual(subs[name]["event_types"], et if et is not None
                             else subs[name]["event_types"])
        types = ["order", "order.created", "order.updated", "order.a.b", "order.a.b.c",
                 "orders.created", "xorder.created", "invoice.paid", "order_created",
                 "order.created.x"]
        events = {t: self.ingest(t, '{"t":%s}' % json.dumps(t)) for t in types}
        expected = {
            "one": {"order.created", "order.updated"},
            "many": {"order.created", "order.updated", "order.a.b", "order.a.b.c",
                     "order.created.x"},
            "exact": {"order.created"},
            "lead": {"order.created", "orders.created", "xorder.created"},
            "mid": {"order.a.b"},
            "multi": {"order.created", "order.updated", "invoice.paid"},
            "all": set(types),
        }
        self.check_matching(subs, events, expected)

    def test_filter_operators(self):
        filters = {
            "exact": {"data": {"status": ["paid"]}},
            "or": {"data": {"status": ["paid", "shipped"]}},
            "nested": {"data": {"customer": {"tier": ["gold"]}}},
            "prefix": {"source": [{"prefix": "shop-"}]},
            "suffix": {"subject": [{"suffix": ".png"}]},
            "butlist": {"data": {"status": [{"anything-but": ["paid", "shipped"]}]}},
            "butone": {"data": {"status": [{"anything-but": "paid"}]}},
            "range": {"data": {"total": [{"numeric": [">", 100, "<=", 250.5]}]}},
            "eq": {"data": {"total": [{"numeric": ["=", 100]}]}},
            "neg": {"data": {"total": [{"numeric": ["<", 0]}]}},
            "exists": {"data": {"coupon": [{"exists": True}]}},
            "absent": {"data": {"coupon": [{"exists": False}]}},
            "and": {"source": [{"prefix": "shop-"}], "data": {"total": [{"numeric": [">=", 150]}]}},
            "type": {"type": ["f.other"]},
            "mixedor": {"data": {"status": ["refunded", {"prefix": "ship"}]}},
        }
        subs = {}
        for name, flt in filters.items():
            subs[name] = self.create_sub(self.path(name), filter=flt)
            self.assertEqual(subs[name]["filter"], flt)
        E = {
            "e1": dict(source="shop-eu", subject="img/a.png",
                       data='{"status":"paid","total":150,"coupon":"X","customer":{"tier":"gold"}}'),
            "e2": dict(source="shop-us", subject="img/b.jpg",
                       data='{"status":"shipped","total":100,"coupon":"","customer":{"tier":"silver"}}'),
            "e3": dict(source="warehouse", subject="doc.png.txt",
                       data='{"status":"cancelled","total":250.5}'),
            "e4": dict(source="shop-", data='{"status":"paid","total":"150"}'),
            "e5": dict(data='{"status":"refunded","total":-5}'),
            "e6": dict(data='{"other":1}'),
            "e7": dict(type="f.other", data='{"status":"paid"}'),
        }
        events = {}
        for label, ev in E.items():
            ev = dict(ev)
            etype = ev.pop("type", "f.evt")
            data = ev.pop("data")
            events[label] = self.ingest(etype, data, **ev)
        expected = {
            "exact": {"e1", "e4", "e7"},
            "or": {"e1", "e2", "e4", "e7"},
            "nested": {"e1"},
            "prefix": {"e1", "e2", "e4"},
            "suffix": {"e1"},
            "butlist": {"e3", "e5"},
            "butone": {"e2", "e3", "e5"},
            "range": {"e1", "e3"},
            "eq": {"e2"},
            "neg": {"e5"},
            "exists": {"e1", "e2"},
            "absent": {"e3", "e4", "e5", "e6", "e7"},
            "and": {"e1"},
            "type": {"e7"},
            "mixedor": {"e2", "e5"},
        }
        # Whether anything-but matches an event WITHOUT the field is not judged here.
        skip = {"butlist": {"e6"}, "butone": {"e6"}}
        self.check_matching(subs, events, expected, skip)

    def test_filter_array_value_matches_any_element(self):
        """EventBridge semantics: a field whose value is an array matches if any element does."""
        sub = self.create_sub(self.path("arr"), filter={"data": {"tags": ["vip"]}})
        yes = self.ingest("arr.t", '{"tags":["new","vip"]}')
        no = self.ingest("arr.t", '{"tags":["new"]}')
        self.check_matching({"arr": sub}, {"yes": yes, "no": no}, {"arr": {"yes"}})

    def test_other_tenants_events_never_match(self):
        sub = self.create_sub(self.path("mine"))  # all types, no filter
        other = make_key(self.srv, unique_tenant("other"), ["ingest", "read", "manage"])["key"]
        foreign = self.ingest("x.y", '{"a":1}', key=other)
        mine = self.ingest("x.y", '{"a":2}')
        self.arrivals(self.path("mine"), 1, 10)
        self.assertNoDelivery(foreign, sub["id"])
        got = {r.headers["webhook-id"] for r in self.rcv.requests(self.path("mine"))}
        self.assertEqual(got, {mine})


# ===================================================================== retries
class RetryTests(DeliveryCase):

    def one_delivery(self, name, **fields):
        path = self.path(name)
        sub = self.create_sub(path, **fields)
        eid = self.ingest("retry.t", '{"n":1}')
        return path, sub, eid, self.delivery_of(eid, sub["id"])

    def test_fails_twice_then_succeeds(self):
        path = self.path("f2")
        self.rcv.fail_first(path, 2, 500)
        _, sub, eid, d = self.one_delivery("f2")
        self.assertDeliveryShape(d)
        d = self.wait_status(d["id"], "succeeded", 15)
        self.assertEqual(d["attempt_count"], 3)
        self.assertEqual([a["status_code"] for a in d["attempts"]], [500, 500, 200])
        for a in d["attempts"]:
            self.assertEqual(set(a), ATTEMPT_FIELDS, a)
            self.assertRegex(a["at"], TIME_RE)
            self.assertIsInstance(a["latency_ms"], (int, float))
        self.assertEqual(d["last_status_code"], 200)
        self.assertIsNone(d["next_attempt_at"])
        self.assertEqual(d["attempts"][0]["response_snippet"], "failing")
        reqs = self.rcv.requests(path)
        self.assertEqual(len(reqs), 3)
        self.assertEqual({r.headers["webhook-id"] for r in reqs}, {eid})
        for a, b in zip(reqs, reqs[1:]):  # 100 ms +-20%
            self.assertGreaterEqual(b.t - a.t, 0.075, "retry came too early")

    def test_always_500_goes_dead_after_the_schedule(self):
        path = self.path("dead")
        self.rcv.error(path, 500, body=b"boom-" + b"x" * 3000)
        _, sub, eid, d = self.one_delivery("dead")
        d = self.wait_status(d["id"], "dead", 15)
        self.assertEqual(d["attempt_count"], len(SCHEDULE) + 1)
        self.assertEqual([a["status_code"] for a in d["attempts"]], [500] * (len(SCHEDULE) + 1))
        self.assertEqual(d["last_status_code"], 500)
        snip = d["attempts"][0]["response_snippet"]
        self.assertEqual(snip, ("boom-" + "x" * 3000)[:1024], "response_snippet = first 1 KiB")
        self.assertEqual(self.rcv.count(path), len(SCHEDULE) + 1)
        dead = self.list_deliveries(status="dead", subscription_id=sub["id"])
        self.assertEqual([x["id"] for x in dead], [d["id"]])
        dead_all = self.list_deliveries(status="dead")
        self.assertIn(d["id"], [x["id"] for x in dead_all])
        self.assertTrue(all(x["status"] == "dead" for x in dead_all))
        self.assertEqual(self.list_deliveries(status="succeeded", subscription_id=sub["id"]), [])

    def test_retry_after_429_replaces_the_schedule(self):
        path = self.path("r429")
        self.rcv.retry_after(path, "1", 429, times=1)
        _, sub, eid, d = self.one_delivery("r429")
        reqs = self.arrivals(path, 2, 10)
        gap = reqs[1].t - reqs[0].t
        self.assertGreaterEqual(gap, 0.9, "next attempt %.3f s after a 429 with Retry-After: 1" % gap)
        self.assertLess(gap, 3.0)
        d = self.wait_status(d["id"], "succeeded", 10)
        self.assertEqual([a["status_code"] for a in d["attempts"]], [429, 200])

    def test_retry_after_503_http_date(self):
        path = self.path("r503")
        when = email.utils.formatdate(time.time() + 3, usegmt=True)
        self.rcv.retry_after(path, when, 503, times=1)
        _, sub, eid, d = self.one_delivery("r503")
        reqs = self.arrivals(path, 2, 12)
        gap = reqs[1].t - reqs[0].t
        self.assertGreaterEqual(gap, 1.9, "next attempt %.3f s after 503 Retry-After: %s"
                                % (gap, when))
        self.assertLess(gap, 5.0)
        d = self.wait_status(d["id"], "succeeded", 10)
        self.assertEqual([a["status_code"] for a in d["attempts"]], [503, 200])

    def test_redirect_is_a_failure_and_not_followed(self):
        path, target = self.path("redir"), self.path("target")
        self.rcv.redirect(path, self.rcv.url(target))
        _, sub, eid, d = self.one_delivery("redir")
        d = self.wait_status(d["id"], "dead", 15)
        self.assertEqual([a["status_code"] for a in d["attempts"]], [302] * (len(SCHEDULE) + 1))
        self.assertEqual(self.rcv.count(target), 0, "the redirect was followed")

    def test_connection_reset_is_a_failed_attempt(self):
        path = self.path("reset")
        self.rcv.reset(path)
        _, sub, eid, d = self.one_delivery("reset")
        d = self.wait_status(d["id"], "dead", 15)
        self.assertEqual(len(d["attempts"]), len(SCHEDULE) + 1)
        for a in d["attempts"]:
            self.assertIsNone(a["status_code"], a)
            self.assertIsInstance(a["error"], str, a)
            self.assertTrue(a["error"], a)
        self.assertIsInstance(d["last_error"], str)

    def test_timeout_is_a_failed_attempt(self):
        path = self.path("slow")
        self.rcv.hang(path, DELIVERY_TIMEOUT_S + 3)
        _, sub, eid, d = self.one_delivery("slow")
        self.delete_sub_later(sub["id"])
        d = self.wait_delivery(d["id"], lambda x: len(x.get("attempts") or []) >= 1,
                               DELIVERY_TIMEOUT_S + 8, "first attempt recorded")
        a = d["attempts"][0]
        self.assertIsNone(a["status_code"], a)
        self.assertTrue(a["error"], a)
        self.assertGreaterEqual(a["latency_ms"], DELIVERY_TIMEOUT_S * 1000 * 0.9, a)
        self.assertLess(a["latency_ms"], DELIVERY_TIMEOUT_S * 1000 + 1500, a)

    def test_retry_endpoint(self):
        path = self.path("retry")
        self.rcv.error(path, 500)
        _, sub, eid, d = self.one_delivery("retry")
        d = self.wait_status(d["id"], "dead", 15)
        n = self.rcv.count(path)
        self.rcv.ok(path)
        r = self.srv.request("POST", "/v1/deliveries/%s/retry" % d["id"], key=self.key)
        self.assertStatus(r, 202, "retry of a dead delivery")
        self.assertDeliveryShape(r.json)
        self.assertEqual(r.json["id"], d["id"])
        self.assertEqual(r.json["status"], "pending")
        d = self.wait_status(d["id"], "succeeded", 10)
        self.assertEqual(d["attempt_count"], n + 1)
        self.assertEqual(d["attempts"][-1]["status_code"], 200)
        reqs = self.arrivals(path, n + 1, 5)
        self.assertEqual(reqs[-1].headers["webhook-id"], eid)
        # a succeeded delivery can be sent again (409 is only for pending/in_flight)
        r = self.srv.request("POST", "/v1/deliveries/%s/retry" % d["id"], key=self.key)
        self.assertStatus(r, 202, "retry of a succeeded delivery")
        self.arrivals(path, n + 2, 10)
        # unknown ids
        for bad in ("dlv_00000000000000000000000000", "dlv_nope", "evt_" + "0" * 26):
            r = self.srv.request("POST", "/v1/deliveries/%s/retry" % bad, key=self.key)
            self.assertError(r, 404, "not_found", msg=bad)
        # 409 while in flight
        hpath = self.path("retry-hang")
        self.rcv.hang(hpath, DELIVERY_TIMEOUT_S + 3)
        hsub = self.create_sub(hpath)
        self.delete_sub_later(hsub["id"])
        heid = self.ingest("retry.hang", "1")
        hd = self.delivery_of(heid, hsub["id"])
        self.arrivals(hpath, 1, 10)
        cur = self.get("/v1/deliveries/" + hd["id"]).json
        self.assertEqual(cur["status"], "in_flight", cur)
        r = self.srv.request("POST", "/v1/deliveries/%s/retry" % hd["id"], key=self.key)
        self.assertError(r, 409, "conflict", msg="retry while in_flight")

    def test_replay_dead(self):
        path = self.path("rdead")
        self.rcv.error(path, 500)
        sub = self.create_sub(path)
        e1 = self.ingest("replay.t", '{"n":1}')
        e2 = self.ingest("replay.t", '{"n":2}')
        d1, d2 = self.delivery_of(e1, sub["id"]), self.delivery_of(e2, sub["id"])
        self.wait_status(d1["id"], "dead", 15)
        self.wait_status(d2["id"], "dead", 15)
        self.rcv.ok(path)
        n = self.rcv.count(path)
        t1 = parse_time(self.get("/v1/events/" + e1).json["time"])
        before = fmt_time(t1 - datetime.timedelta(seconds=5))
        r = self.srv.request("POST", "/v1/subscriptions/%s/replay" % sub["id"],
                             {"status": "dead", "until": before}, key=self.key)
        self.assertStatus(r, 202, "replay until before the events")
        self.assertEqual((r.json["requeued"], r.json["created"]), (0, 0), r.raw)
        r = self.srv.request("POST", "/v1/subscriptions/%s/replay" % sub["id"], {}, key=self.key)
        self.assertStatus(r, 202, "replay {} (default: dead)")
        self.assertEqual(set(r.json), {"requeued", "created", "events_scanned"}, r.raw)
        self.assertEqual((r.json["requeued"], r.json["created"]), (2, 0), r.raw)
        self.wait_status(d1["id"], "succeeded", 10)
        self.wait_status(d2["id"], "succeeded", 10)
        self.assertEqual(self.rcv.count(path), n + 2)
        # nothing dead any more: a second replay requeues nothing, creates nothing
        r = self.srv.request("POST", "/v1/subscriptions/%s/replay" % sub["id"],
                             {"status": "dead"}, key=self.key)
        self.assertStatus(r, 202)
        self.assertEqual((r.json["requeued"], r.json["created"]), (0, 0), r.raw)
        self.assertEqual(len(self.list_deliveries(subscription_id=sub["id"])), 2)

    def test_replay_all_creates_deliveries_for_older_events(self):
        path = self.path("rall")
        old_a = self.ingest("replay.all", '{"n":"a"}')
        time.sleep(0.03)  # so that old_b's time is strictly later than old_a's
        old_b = self.ingest("replay.all", '{"n":"b"}')
        other = self.ingest("replay.other", '{"n":"o"}')
        sub = self.create_sub(path, event_types=["replay.all"])
        new = self.ingest("replay.all", '{"n":"new"}')
        self.assertEqual(self.rcv.wait_for_ids(path, {new}, 10), set())
        dn = self.delivery_of(new, sub["id"])
        self.wait_status(dn["id"], "succeeded", 10)
        for e in (old_a, old_b, other):
            self.assertNoDelivery(e, sub["id"], "(ingested before the subscription)")
        ta = parse_time(self.get("/v1/events/" + old_a).json["time"])
        tb = parse_time(self.get("/v1/events/" + old_b).json["time"])
        self.assertLess(ta, tb)
        between = fmt_time(ta + (tb - ta) / 2)
        r = self.srv.request("POST", "/v1/subscriptions/%s/replay" % sub["id"],
                             {"status": "all", "since": between}, key=self.key)
        self.assertStatus(r, 202, "replay all since")
        self.assertEqual((r.json["requeued"], r.json["created"]), (0, 1), r.raw)
        self.assertEqual(self.rcv.wait_for_ids(path, {old_b}, 10), set())
        r = self.srv.request("POST", "/v1/subscriptions/%s/replay" % sub["id"],
                             {"status": "all"}, key=self.key)
        self.assertStatus(r, 202, "replay all")
        self.assertEqual((r.json["requeued"], r.json["created"]), (0, 1), r.raw)
        self.assertGreaterEqual(r.json["events_scanned"], 3, r.raw)
        self.assertEqual(self.rcv.wait_for_ids(path, {old_a}, 10), set())
        for e in (old_a, old_b, new):
            self.wait_status(self.delivery_of(e, sub["id"])["id"], "succeeded", 10)
        self.assertNoDelivery(other, sub["id"], "(type does not match)")
        # never a duplicate
        r = self.srv.request("POST", "/v1/subscriptions/%s/replay" % sub["id"],
                             {"status": "all"}, key=self.key)
        self.assertStatus(r, 202)
        self.assertEqual((r.json["requeued"], r.json["created"]), (0, 0), r.raw)
        self.assertEqual(len(self.list_deliveries(subscription_id=sub["id"])), 3)
        ids = [x.headers["webhook-id"] for x in self.rcv.requests(path)]
        self.assertEqual(sorted(ids), sorted([old_a, old_b, new]))

    def test_hanging_endpoint_does_not_delay_a_healthy_one(self):
        hang, healthy = self.path("hang"), self.path("healthy")
        self.rcv.hang(hang, DELIVERY_TIMEOUT_S + 3)
        hsub = self.create_sub(hang)
        self.delete_sub_later(hsub["id"])
        self.create_sub(healthy)
        t0 = time.monotonic()
        ids = self.ingest_batch([{"type": "load.t", "data": {"i": i}} for i in range(20)])
        missing = self.rcv.wait_for_ids(healthy, ids, 3.0 - (time.monotonic() - t0))
        self.assertEqual(missing, set(), "%d of 20 events reached the healthy endpoint within 3 s"
                         " while the other one hangs" % (20 - len(missing)))
        self.assertGreater(self.rcv.count(hang), 0, "the hanging endpoint was never called")


# ================================================================ flow control
def max_concurrency(rcv, reqs):
    """The largest number of reqs in progress at once at the receiver (a request
    is in progress from its arrival until its answer began to be written)."""
    best = 0
    for r in reqs:
        n = 0
        for o in reqs:
            end = rcv.answer_started_at(o)
            if o.t <= r.t and (end is None or end > r.t):
                n += 1
        best = max(best, n)
    return best


class FlowControlTests(DeliveryCase):

    def test_retry_after_is_capped_at_one_hour(self):
        path = self.path("cap")
        self.rcv.retry_after(path, "99999", 429)
        sub = self.create_sub(path)
        self.delete_sub_later(sub["id"])
        eid = self.ingest("cap.t", "1")
        d = self.delivery_of(eid, sub["id"])
        d = self.wait_delivery(d["id"], lambda x: x["attempt_count"] >= 1
                               and x["next_attempt_at"] is not None, 10, "first attempt")
        self.assertEqual(d["status"], "retrying", d)
        self.assertEqual(d["last_status_code"], 429)
        delay = (parse_time(d["next_attempt_at"]) - parse_time(d["attempts"][0]["at"])).total_seconds()
        self.assertLessEqual(delay, 3600 + 5, "Retry-After: 99999 must be capped at 1 h: %r" % d)
        self.assertGreaterEqual(delay, 3600 * 0.8 - 5, d)

    def test_max_in_flight(self):
        path = self.path("mif")
        self.rcv.ok(path, delay=0.4)
        self.create_sub(path, max_in_flight=2)
        ids = self.ingest_batch([{"type": "mif.t", "data": i} for i in range(6)])
        self.assertEqual(self.rcv.wait_for_ids(path, ids, 10), set())
        reqs = self.rcv.requests(path)
        self.assertLessEqual(max_concurrency(self.rcv, reqs), 2, "max_in_flight 2 exceeded")
        self.assertGreaterEqual(reqs[-1].t - reqs[0].t, 0.75)

    def test_rate_limit_per_s(self):
        """Assumption: the burst allowed is at most one second's worth."""
        path = self.path("rate")
        self.create_sub(path, rate_limit_per_s=5)
        ids = self.ingest_batch([{"type": "rate.t", "data": i} for i in range(10)])
        self.assertEqual(self.rcv.wait_for_ids(path, ids, 10), set())
        reqs = self.rcv.requests(path)
        span = reqs[-1].t - reqs[0].t
        self.assertGreaterEqual(span, 0.9, "10 deliveries at rate_limit_per_s=5 took %.2f s" % span)

    def test_circuit_breaker_pauses_then_probes_once(self):
        """10 consecutive failures -> the subscription pauses ~5 s, then one probe."""
        path = self.path("breaker")
        self.rcv.error(path, 500)
        sub = self.create_sub(path)
        ids = self.ingest_batch([{"type": "cb.t", "data": i} for i in range(6)])
        self.arrivals(path, 10, 10)
        # Without a breaker the retries (100 ms schedule, 250 ms polling) keep coming;
        # a quiet second means the breaker is open. The endpoint keeps failing until then.
        deadline = time.monotonic() + 10
        while True:
            n = self.rcv.count(path)
            if len(self.rcv.wait_for(path, n + 1, 1.0)) == n:
                break
            self.assertLess(time.monotonic(), deadline, "the failing endpoint is never paused")
        failures = self.rcv.requests(path)
        last_fail = failures[-1]
        self.assertGreaterEqual(len(failures), 10)
        states = [self.delivery_of(e, sub["id"])["status"] for e in ids]
        self.assertTrue(any(st != "dead" for st in states),
                        "every delivery went dead without a pause: %r" % states)
        # healthy but slow from now on: the probe takes 1 s
        self.rcv.ok(path, delay=1.0)
        got = self.rcv.wait_for(path, len(failures) + 1, 9)
        self.assertGreater(len(got), len(failures), "no probe within 10 s of the last failure")
        probe = got[len(failures)]
        pause = probe.t - last_fail.t
        self.assertGreaterEqual(pause, 4.0, "breaker pause %.2f s (5 s documented)" % pause)
        self.assertLess(pause, 7.5, "breaker pause %.2f s (5 s documented)" % pause)
        more = self.rcv.wait_for(path, len(failures) + 2, max(probe.t + 0.9 - time.monotonic(), 0))
        during = [r for r in more[len(failures) + 1:] if r.t < probe.t + 0.9]
        self.assertEqual(during, [], "more than one probe while the breaker is half-open")
        for eid in ids:
            self.wait_status(self.delivery_of(eid, sub["id"])["id"], "succeeded", 15)

    def test_ordered_per_ordering_key(self):
        path = self.path("ordered")
        self.rcv.ok(path, delay=0.15)
        sub = self.create_sub(path, ordered=True)
        self.assertIs(sub["ordered"], True)
        events = [{"type": "ord.t", "ordering_key": k, "data": {"k": k, "i": i}}
                  for i in range(4) for k in ("A", "B")]
        ids = self.ingest_batch(events)
        self.assertEqual(self.rcv.wait_for_ids(path, ids, 15), set())
        reqs = self.rcv.requests(path)
        key_of = dict(zip(ids, [e["ordering_key"] for e in events]))
        for k in ("A", "B"):
            rk = [r for r in reqs if key_of.get(r.headers["webhook-id"]) == k]
            self.assertEqual([r.headers["webhook-id"] for r in rk],
                             [i for i in ids if key_of[i] == k], "key %s out of order" % k)
            self.assertEqual(max_concurrency(self.rcv, rk), 1, "key %s: two at once" % k)
        self.assertEqual(max_concurrency(self.rcv, reqs), 2, "keys A and B should proceed "
                         "in parallel")


# ============================================================ subscription API
class SubscriptionApiTests(DeliveryCase):

    def test_create_get_list_patch_shape(self):
        path = self.path("shape")
        sub = self.create_sub(path, event_types=["a.*"], description="d1")
        self.assertEqual(set(sub), SUB_FIELDS | {"secret"})
        self.assertRegex(sub["id"], SUB_ID_RE)
        self.assertEqual((sub["kind"], sub["url"], sub["max_in_flight"], sub["rate_limit_per_s"],
                          sub["ordered"], sub["max_receives"], sub["enabled"], sub["filter"]),
                         ("webhook", self.rcv.url(path), 16, 0, False, 10, True, None))
        g = self.get("/v1/subscriptions/" + sub["id"]).json
        self.assertEqual(set(g), SUB_FIELDS, "GET must not show the secret")
        lst = self.get("/v1/subscriptions").json
        self.assertEqual([s["id"] for s in lst["data"]], [sub["id"]])
        self.assertNotIn("secret", lst["data"][0])
        r = self.srv.request("PATCH", "/v1/subscriptions/" + sub["id"],
                             {"description": None, "max_in_flight": 3,
                              "filter": {"data": {"x": [1]}}}, key=self.key)
        self.assertStatus(r, 200, "PATCH")
        self.assertEqual(set(r.json), SUB_FIELDS)
        self.assertEqual((r.json["description"], r.json["max_in_flight"], r.json["filter"],
                          r.json["event_types"]), (None, 3, {"data": {"x": [1]}}, ["a.*"]))

    def test_disable_and_enable(self):
        path = self.path("onoff")
        sub = self.create_sub(path)
        r = self.srv.request("PATCH", "/v1/subscriptions/" + sub["id"], {"enabled": False},
                             key=self.key)
        self.assertStatus(r, 200, "PATCH enabled=false")
        self.assertIs(r.json["enabled"], False)
        off = self.ingest("onoff.t", '{"n":"off"}')
        self.assertNoDelivery(off, sub["id"], "(subscription disabled)")
        r = self.srv.request("PATCH", "/v1/subscriptions/" + sub["id"], {"enabled": True},
                             key=self.key)
        self.assertStatus(r, 200, "PATCH enabled=true")
        self.assertIs(r.json["enabled"], True)
        on = self.ingest("onoff.t", '{"n":"on"}')
        self.assertEqual(self.rcv.wait_for_ids(path, {on}, 10), set())
        self.assertNoDelivery(off, sub["id"], "(ingested while disabled)")
        self.assertEqual({r.headers["webhook-id"] for r in self.rcv.requests(path)}, {on})

    def test_disabled_subscription_pending_deliveries_wait(self):
        path = self.path("wait")
        self.rcv.retry_after(path, "1", 429, times=1)
        sub = self.create_sub(path)
        eid = self.ingest("wait.t", '{"n":1}')
        first = self.arrivals(path, 1, 10)[0]
        r = self.srv.request("PATCH", "/v1/subscriptions/" + sub["id"], {"enabled": False},
                             key=self.key)
        self.assertStatus(r, 200)
        # the retry was due 1 s after the first attempt; allow 2.5 s for it not to come
        left = first.t + 2.5 - time.monotonic()
        extra = self.rcv.wait_for(path, 2, max(left, 0))
        self.assertEqual(len(extra), 1, "a disabled subscription got a delivery attempt")
        d = self.delivery_of(eid, sub["id"])
        self.assertIn(d["status"], ("pending", "retrying"), d)
        r = self.srv.request("PATCH", "/v1/subscriptions/" + sub["id"], {"enabled": True},
                             key=self.key)
        self.assertStatus(r, 200)
        self.arrivals(path, 2, 5)
        self.wait_status(d["id"], "succeeded", 5)

    def test_delete(self):
        path = self.path("del")
        self.rcv.retry_after(path, "1", 429)
        sub = self.create_sub(path)
        self.ingest("del.t", "1")
        first = self.arrivals(path, 1, 10)[0]
        r = self.srv.request("DELETE", "/v1/subscriptions/" + sub["id"], key=self.key)
        self.assertEqual(r.status, 204, r.raw[:300])
        self.assertEqual(r.raw, b"")
        for method in ("GET", "PATCH", "DELETE"):
            body = {"enabled": True} if method == "PATCH" else None
            r = self.srv.request(method, "/v1/subscriptions/" + sub["id"], body, key=self.key)
            self.assertError(r, 404, "not_found", msg=method + " after DELETE")
        r = self.srv.request("POST", "/v1/subscriptions/%s/rotate-secret" % sub["id"],
                             key=self.key)
        self.assertError(r, 404, "not_found")
        self.assertEqual(self.get("/v1/subscriptions").json["data"], [])
        # its unfinished delivery was dropped: no retry 1 s later
        left = first.t + 2.5 - time.monotonic()
        self.assertEqual(len(self.rcv.wait_for(path, 2, max(left, 0))), 1,
                         "a deleted subscription's delivery was retried")
        eid = self.ingest("del.t", "2")
        self.assertNoDelivery(eid, sub["id"])

    def test_validation_errors(self):
        url = self.rcv.url(self.path("v"))
        cases = [
            ({"url": url, "event_types": ["order.**.x"]}, "event_types"),
            ({"url": url, "event_types": [""]}, "event_types"),
            ({"url": url, "event_types": ["bad type"]}, "event_types"),
            ({"url": url, "event_types": "order.*"}, "event_types"),
            ({"url": url, "event_types": [5]}, "event_types"),
            ({"url": url, "filter": {"data": {"total": [{"bogus": 1}]}}}, "filter.data.total[0]"),
            ({"url": url, "filter": {"data": {"total": [{"numeric": [">"]}]}}}, "filter.data.total"),
            ({"url": url, "filter": {"data": {"total": [{"numeric": ["~", 3]}]}}},
             "filter.data.total"),
            ({"url": url, "filter": {"data": {"x": [{"exists": "yes"}]}}}, "filter.data.x[0]"),
            ({"url": url, "filter": {"data": {"x": [{"prefix": 5}]}}}, "filter.data.x[0]"),
            ({"url": url, "filter": {"data": {"total": 5}}}, "filter.data.total"),
            ({"url": url, "filter": "x"}, "filter"),
            ({"url": url, "colour": "red"}, "colour"),
            ({"event_types": ["a.b"]}, "url"),
            ({"url": "ftp://127.0.0.1/x"}, "url"),
            ({"url": "not a url"}, "url"),
            ({"url": 5}, "url"),
            ({"url": url, "kind": "carrier-pigeon"}, "kind"),
            ({"url": url, "max_in_flight": 0}, "max_in_flight"),
            ({"url": url, "max_in_flight": 1001}, "max_in_flight"),
            ({"url": url, "rate_limit_per_s": -1}, "rate_limit_per_s"),
            ({"url": url, "max_receives": 0}, "max_receives"),
            ({"url": url, "enabled": "yes"}, "enabled"),
            ({"url": url, "ordered": 1}, "ordered"),
            ({"url": url, "description": 5}, "description"),
        ]
        for body, field in cases:
            with self.subTest(body=json.dumps(body)[:120]):
                r = self.srv.request("POST", "/v1/subscriptions", body, key=self.key)
                self.assertError(r, 400, "validation_error", mentions=field)
        self.assertEqual(self.get("/v1/subscriptions").json["data"], [], "a bad create was stored")
        sub = self.create_sub(self.path("v"))
        for body, field in [({"kind": "pull"}, "kind"), ({"colour": 1}, "colour"),
                            ({"event_types": ["a.**.b"]}, "event_types"),
                            ({"filter": {"data": {"n": [{"nope": 1}]}}}, "filter.data.n[0]"),
                            ({"url": "gopher://127.0.0.1/"}, "url"), ({"url": None}, "url")]:
            with self.subTest(patch=body):
                r = self.srv.request("PATCH", "/v1/subscriptions/" + sub["id"], body, key=self.key)
                self.assertError(r, 400, "validation_error", mentions=field)
        r = self.srv.request("POST", "/v1/subscriptions", b'{"url":', key=self.key)
        self.assertError(r, 400, "invalid_json")

    def test_rotation_signs_with_both_secrets(self):
        path = self.path("rot")
        sub = self.create_sub(path)
        old = sub["secret"]
        r = self.srv.request("POST", "/v1/subscriptions/%s/rotate-secret" % sub["id"],
                             key=self.key)
        self.assertStatus(r, 200, "rotate-secret")
        new = register_secret(r.json["secret"])
        self.assertRegex(new, SECRET_RE)
        self.assertNotEqual(new, old)
        self.assertEqual(r.json["id"], sub["id"])
        exp = parse_time(r.json["previous_secret_expires_at"])
        in24h = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=24)
        self.assertLess(abs((exp - in24h).total_seconds()), 300, r.json)
        self.assertNotIn("secret", self.get("/v1/subscriptions/" + sub["id"]).json)
        eid = self.ingest("rot.t", '{"n":1}')
        req = self.arrivals(path, 1, 10)[0]
        self.assertEqual(req.headers["webhook-id"], eid)
        sigs = req.headers["webhook-signature"].split(" ")
        self.assertEqual(len(sigs), 2, req.headers["webhook-signature"])
        ts = req.headers["webhook-timestamp"]
        self.assertEqual(sigs[0], expected_signature(new, eid, ts, req.body), "new secret first")
        self.assertEqual(sigs[1], expected_signature(old, eid, ts, req.body), "then the old one")

    def test_tenant_isolation(self):
        path = self.path("iso")
        self.rcv.error(path, 500)
        sub = self.create_sub(path)
        eid = self.ingest("iso.t", "1")
        d = self.wait_status(self.delivery_of(eid, sub["id"])["id"], "dead", 15)
        other = make_key(self.srv, unique_tenant("intruder"), ["ingest", "read", "manage"])["key"]
        calls = [
            ("GET", "/v1/subscriptions/" + sub["id"], None),
            ("PATCH", "/v1/subscriptions/" + sub["id"], {"enabled": False}),
            ("POST", "/v1/subscriptions/%s/rotate-secret" % sub["id"], None),
            ("POST", "/v1/subscriptions/%s/replay" % sub["id"], {"status": "dead"}),
            ("GET", "/v1/deliveries/" + d["id"], None),
            ("POST", "/v1/deliveries/%s/retry" % d["id"], None),
            ("DELETE", "/v1/subscriptions/" + sub["id"], None),
        ]
        for method, p, body in calls:
            with self.subTest(call=method + " " + p):
                r = self.srv.request(method, p, body, key=other)
                self.assertError(r, 404, "not_found")
        for query in ("subscription_id=" + sub["id"], "event_id=" + eid):
            with self.subTest(list=query):
                r = self.srv.request("GET", "/v1/deliveries?" + query, key=other)
                if r.status != 404:
                    self.assertStatus(r, 200)
                    self.assertEqual(r.json["data"], [], "another tenant's deliveries are listed")
        self.assertEqual(self.get("/v1/subscriptions", key=other).json["data"], [])
        self.assertEqual(self.list_deliveries(key=other), [])
        self.assertEqual(self.list_deliveries(key=other, status="dead"), [])
        # untouched
        g = self.get("/v1/subscriptions/" + sub["id"]).json
        self.assertIs(g["enabled"], True)
        self.assertEqual(self.get("/v1/deliveries/" + d["id"]).json["status"], "dead")

    def test_scopes(self):
        tenant = self.tenant
        read = make_key(self.srv, tenant, ["read"])["key"]
        ingest = make_key(self.srv, tenant, ["ingest"])["key"]
        sub = self.create_sub(self.path("scope"))
        body = {"url": self.rcv.url(self.path("scope2"))}
        r = self.srv.request("POST", "/v1/subscriptions", body, key=read)
        self.assertError(r, 403, "forbidden", msg="create with read")
        r = self.srv.request("PATCH", "/v1/subscriptions/" + sub["id"], {"enabled": False}, key=read)
        self.assertError(r, 403, "forbidden", msg="patch with read")
        r = self.srv.request("POST", "/v1/subscriptions/%s/replay" % sub["id"], {}, key=read)
        self.assertError(r, 403, "forbidden", msg="replay with read")
        self.assertStatus(self.srv.request("GET", "/v1/subscriptions", key=read), 200)
        self.assertStatus(self.srv.request("GET", "/v1/deliveries", key=read), 200)
        r = self.srv.request("GET", "/v1/subscriptions", key=ingest)
        self.assertError(r, 403, "forbidden", msg="list with ingest")
        r = self.srv.request("POST", "/v1/subscriptions", body, key=self.srv.admin_key)
        self.assertError(r, 403, "forbidden", msg="admin key")
        r = self.srv.request("GET", "/v1/subscriptions", key=None)
        self.assertError(r, 401, "unauthorized")


# ============================================================ private targets
class PrivateDestinationTests(ServerTestCase):
    shared_server = False

    def test_private_urls_refused_without_the_flag(self):
        srv = self.start_server(args=["--retry-schedule", "100ms"])
        key = make_key(srv, unique_tenant("ssrf"), ["ingest", "read", "manage"])["key"]
        urls = ["http://127.0.0.1:9/hook", "http://localhost:9/hook", "https://10.1.2.3/h",
                "http://172.16.0.1/h", "http://192.168.0.10/h", "http://169.254.169.254/latest",
                "http://100.64.0.1/h", "http://[::1]:9/h", "http://[fd00::1]/h",
                "http://[fe80::1]/h", "http://[::ffff:127.0.0.1]:9/h", "http://0.0.0.0:9/h",
                "http://2130706433:9/h", "http://127.1:9/h"]
        for url in urls:
            with self.subTest(url=url):
                r = srv.request("POST", "/v1/subscriptions", {"url": url}, key=key)
                self.assertError(r, 400, "validation_error", mentions="url")
        r = srv.request("GET", "/v1/subscriptions", key=key)
        self.assertEqual(r.json["data"], [], "a refused subscription was stored")
        # a public address literal is accepted (no event will ever match it)
        r = srv.request("POST", "/v1/subscriptions",
                        {"url": "https://93.184.215.14/hook", "event_types": ["never.ever"]},
                        key=key)
        self.assertStatus(r, 201, "public IP literal")
        register_secret(r.json.get("secret"))
        sub_id = r.json["id"]
        r = srv.request("PATCH", "/v1/subscriptions/" + sub_id, {"url": "http://127.0.0.1:9/x"},
                        key=key)
        self.assertError(r, 400, "validation_error", mentions="url", msg="PATCH to a private url")
        self.assertEqual(srv.request("DELETE", "/v1/subscriptions/" + sub_id, key=key).status, 204)

    def test_env_variable_allows_private_destinations(self):
        srv = self.start_server(env={"TRIGGERS_ALLOW_PRIVATE_DESTINATIONS": "true"})
        key = make_key(srv, unique_tenant("ssrf"), ["manage"])["key"]
        r = srv.request("POST", "/v1/subscriptions", {"url": "http://127.0.0.1:9/hook",
                                                      "event_types": ["never.ever"]}, key=key)
        self.assertStatus(r, 201)
        register_secret(r.json.get("secret"))


# ==================================================================== shutdown
def cpu_seconds(pid):
    """utime + stime of a process (all threads), or None without /proc."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def cpu_rate(proc, window):
    """Fraction of one core used by proc over window seconds (None if it exited
    meanwhile or /proc is not there)."""
    c0 = cpu_seconds(proc.pid)
    if c0 is None:
        return None
    try:
        proc.wait(window)
        return None  # exited within the window
    except subprocess.TimeoutExpired:
        pass
    c1 = cpu_seconds(proc.pid)
    return None if c1 is None else (c1 - c0) / window


class ShutdownTests(ServerTestCase):
    shared_server = False

    def test_sigterm_while_a_delivery_hangs(self):
        rcv = Receiver().start()
        self.addCleanup(rcv.stop)
        srv = self.start_server(args=["--allow-private-destinations", "--delivery-timeout", "30s",
                                      "--retry-schedule", "100ms"])
        key = make_key(srv, unique_tenant("term"), ["ingest", "read", "manage"])["key"]
        rcv.hang("/hang", 25)
        r = srv.request("POST", "/v1/subscriptions", {"url": rcv.url("/hang")}, key=key)
        self.assertStatus(r, 201)
        register_secret(r.json["secret"])
        r = srv.request("POST", "/v1/events", {"type": "term.t", "data": 1}, key=key)
        self.assertStatus(r, 202)
        eid = r.json["id"]
        self.assertEqual(len(rcv.wait_for("/hang", 1, 10)), 1, "the delivery never started")
        # CPU use while a delivery hangs, then while the shutdown waits for it
        cpu_idle = cpu_rate(srv.proc, 1.5)
        t0 = time.monotonic()
        os.kill(srv.pid, signal.SIGTERM)
        cpu_drain = cpu_rate(srv.proc, 3.0)
        rc = srv.stop(sig=0, timeout=20)  # signal 0: SIGTERM was sent already; wait + reap
        took = time.monotonic() - t0
        self.assertFalse(srv.last_stop_forced, "not stopped within 20 s of SIGTERM")
        self.assertEqual(rc, 0, "exit code after SIGTERM")
        self.assertLess(took, 12.5, "SIGTERM took %.1f s with a hanging delivery" % took)
        # the unfinished delivery goes out again right after a restart (lease released;
        # an expiring lease would take 30 s + 5 s)
        rcv.ok("/hang")
        srv.start()
        got = rcv.wait_for("/hang", 2, 8)
        self.assertEqual(len(got), 2, "the interrupted delivery was not resumed within 8 s"
                         " of the restart")
        self.assertEqual(got[1].headers.get("webhook-id"), eid)
        srv.stop()
        # no busy loop, neither while a delivery hangs nor while the shutdown waits for it
        if cpu_idle is not None:
            self.assertLess(cpu_idle, 0.3, "server uses %.0f%% of a core while a delivery hangs"
                            % (cpu_idle * 100))
        if cpu_drain is not None:
            self.assertLess(cpu_drain, 0.3, "server busy-waits after SIGTERM: %.0f%% of a core "
                            "while waiting for the hanging delivery" % (cpu_drain * 100))


if __name__ == "__main__":
    unittest.main()
