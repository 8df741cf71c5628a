"""Black-box tests of the Triggers HTTP API and CLI (issue 2 scope).

Run from the repo root: /usr/bin/python3 -m unittest tests/integration/test_api.py
"""

import http.client
import json
import os
import re
import secrets
import signal
import stat
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import (  # noqa: E402
    EVT_ID_RE, KEY_ID_RE, KEY_SECRET_RE, REQ_ID_RE, TIME_RE, RawConn, Server, ServerTestCase,
    cli_create_key, cli_list_keys, fake_ulid, gen_key, make_key, run_cli, unique_tenant,
)

ALL_SCOPES = ["ingest", "read", "consume", "manage"]
EVENT_FIELDS = {"id", "type", "source", "subject", "ordering_key", "time", "data"}
KEY_FIELDS = {"id", "tenant", "scopes", "name", "created_at", "revoked_at"}


def q(value):
    return urllib.parse.quote(str(value), safe="")


class ApiCase(ServerTestCase):
    """Helpers shared by the API tests."""

    def new_key(self, scopes=("ingest", "read"), tenant=None, srv=None, name=None):
        """Returns (plain key, key object) for a new key of tenant (default: a new tenant)."""
        info = make_key(srv or self.srv, tenant or unique_tenant(), scopes, name=name)
        return info["key"], info

    def ingest(self, key, body, srv=None, headers=None, expect=202):
        r = (srv or self.srv).request("POST", "/v1/events", body, key=key, headers=headers)
        self.assertStatus(r, expect, "POST /v1/events %r" % (body,))
        return r.json

    def list_all(self, key, query="", srv=None, limit=1000):
        """Follows next_cursor to the end; returns all items."""
        items, cursor, pages = [], None, 0
        while True:
            path = "/v1/events?limit=%d" % limit + query
            if cursor is not None:
                path += "&after=" + q(cursor)
            r = (srv or self.srv).request("GET", path, key=key)
            self.assertStatus(r, 200, path)
            items.extend(r.json["data"])
            cursor = r.json["next_cursor"]
            pages += 1
            self.assertLess(pages, 1000, "pagination does not end")
            if cursor is None:
                return items

    def list_keys(self, key, query="", srv=None):
        items, cursor = [], None
        while True:
            path = "/v1/keys?limit=1000" + query
            if cursor is not None:
                path += "&after=" + q(cursor)
            r = (srv or self.srv).request("GET", path, key=key)
            self.assertStatus(r, 200, path)
            items.extend(r.json["data"])
            cursor = r.json["next_cursor"]
            if cursor is None:
                return items

    def wait_status(self, fn, status, timeout):
        """Poll fn() (returning a Response) until it has status; returns (resp, seconds)."""
        t0 = time.monotonic()
        while True:
            r = fn()
            if r.status == status:
                return r, time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                self.fail("status %d not reached within %.1f s (last %d %r)"
                          % (status, timeout, r.status, r.raw[:200]))
            time.sleep(0.02)


# =========================================================================
# The error table
# =========================================================================
class ErrorTableTests(ApiCase):

    def test_400_invalid_json_says_at_which_byte(self):
        key, _ = self.new_key()
        for body in [b'{"type":"a",', b'{"type": "a"', b"not json", b'{"type":"a"} x',
                     b'{"type":"a","data":[1,2,}', b"{'type':'a'}"]:
            with self.subTest(body=body):
                r = self.srv.request("POST", "/v1/events", body, key=key)
                err = self.assertError(r, 400, "invalid_json")
                self.assertRegex(err["message"], r"at byte \d+")
        r = self.srv.request("POST", "/v1/events/batch", b'{"events":[', key=key)
        self.assertRegex(self.assertError(r, 400, "invalid_json")["message"], r"at byte \d+")
        r = self.srv.request("POST", "/v1/keys", b'{"tenant":', key=self.srv.admin_key)
        self.assertRegex(self.assertError(r, 400, "invalid_json")["message"], r"at byte \d+")

    def test_400_validation_error_names_the_field(self):
        key, _ = self.new_key()
        cases = [
            ({"type": "ok.t", "typo_field": 1}, "typo_field"),
            ({"type": "ok.t", "Data": 1}, "Data"),
            ({"type": "bad type"}, "type"),
            ({"type": "bad*type"}, "type"),
            ({"type": "bad\u00e9type"}, "type"),
            ({"type": ""}, "type"),
            ({"type": "a" * 129}, "type"),
            ({"type": 5}, "type"),
            ({"type": None}, "type"),
            ({"data": {"x": 1}}, "type"),
            ({"type": "ok", "source": "s" * 257}, "source"),
            ({"type": "ok", "subject": "s" * 257}, "subject"),
            ({"type": "ok", "ordering_key": "k" * 257}, "ordering_key"),
            ({"type": "ok", "source": 5}, "source"),
            ({"type": "ok", "subject": ["x"]}, "subject"),
            ({"type": "ok", "subject": "a\u0000b"}, "subject"),
            ({"type": "ok", "source": "\u0000"}, "source"),
            ({"type": "ok", "ordering_key": "k\u0000"}, "ordering_key"),
            ({"type": "ok", "ordering_key": {}}, "ordering_key"),
        ]
        for body, field in cases:
            with self.subTest(body=body if isinstance(body, bytes) else json.dumps(body)[:80]):
                r = self.srv.request("POST", "/v1/events", body, key=key)
                self.assertError(r, 400, "validation_error", mentions=field)
        # A key given twice is not JSON any route takes (the one reader of every body).
        r = self.srv.request("POST", "/v1/events", b'{"type":"a","type":"b"}', key=key)
        self.assertError(r, 400, "invalid_json", mentions="type")
        for body in [b"[]", b'[{"type":"a"}]', b'"order.created"', b"null", b"42", b"true"]:
            with self.subTest(body=body):
                r = self.srv.request("POST", "/v1/events", body, key=key)
                self.assertError(r, 400, "validation_error")

    def test_boundary_values_are_accepted(self):
        key, _ = self.new_key()
        allowed = "AZaz09._:/-"
        for body in [{"type": "a"}, {"type": "x" * 128}, {"type": (allowed * 12)[:128]},
                     {"type": "ok", "source": "s" * 256, "subject": "u" * 256,
                      "ordering_key": "k" * 256},
                     {"type": "ok", "source": None, "subject": None, "ordering_key": None,
                      "data": None}]:
            with self.subTest(body=json.dumps(body)[:60]):
                out = self.ingest(key, body)
                self.assertEqual(out["type"], body["type"])

    def test_400_list_limit_out_of_range(self):
        key, _ = self.new_key()
        for limit in ["0", "1001", "-1", "abc", "1.5", "99999999999999999999"]:
            with self.subTest(limit=limit):
                r = self.srv.request("GET", "/v1/events?limit=" + limit, key=key)
                self.assertError(r, 400, "validation_error", mentions="limit")
        for limit in ["1", "1000"]:
            with self.subTest(limit=limit):
                self.assertStatus(self.srv.request("GET", "/v1/events?limit=" + limit, key=key), 200)
        r = self.srv.request("GET", "/v1/keys?limit=0", key=self.srv.admin_key)
        self.assertError(r, 400, "validation_error", mentions="limit")
        r = self.srv.request("GET", "/v1/keys?limit=1001", key=self.srv.admin_key)
        self.assertError(r, 400, "validation_error", mentions="limit")

    def test_400_malformed_cursor(self):
        key, _ = self.new_key()
        for cursor in ["!!!garbage!!!", "x", "evt_" + "Z" * 40]:
            with self.subTest(cursor=cursor):
                r = self.srv.request("GET", "/v1/events?after=" + q(cursor), key=key)
                self.assertError(r, 400, "validation_error")

    def test_400_key_creation_validation(self):
        admin = self.srv.admin_key
        cases = [
            ({"tenant": "Acme", "scopes": ["read"]}, "tenant"),
            ({"tenant": "a b", "scopes": ["read"]}, "tenant"),
            ({"tenant": "", "scopes": ["read"]}, "tenant"),
            ({"tenant": "a" * 65, "scopes": ["read"]}, "tenant"),
            ({"tenant": 7, "scopes": ["read"]}, "tenant"),
            ({"scopes": ["read"]}, "tenant"),
            ({"tenant": "acme"}, "scopes"),
            ({"tenant": "acme", "scopes": []}, "scopes"),
            ({"tenant": "acme", "scopes": ["read", "fly"]}, "scopes"),
            ({"tenant": "acme", "scopes": "read"}, "scopes"),
            ({"tenant": "acme", "scopes": ["read"], "name": "n" * 129}, "name"),
            ({"tenant": "acme", "scopes": ["read"], "name": 5}, "name"),
            ({"tenant": "acme", "scopes": ["read"], "colour": "red"}, "colour"),
        ]
        for body, field in cases:
            with self.subTest(body=json.dumps(body)[:80]):
                r = self.srv.request("POST", "/v1/keys", body, key=admin)
                self.assertError(r, 400, "validation_error", mentions=field)
        # the edges that are fine
        tenant = ("a-_9" + secrets.token_hex(30))[:64]
        info = make_key(self.srv, tenant, ["read"], name="n" * 128)
        self.assertEqual(info["tenant"], tenant)
        self.assertEqual(info["name"], "n" * 128)

    def test_401_without_valid_key(self):
        evt = "/v1/events/evt_" + fake_ulid()
        routes = [("GET", "/v1/events", None), ("POST", "/v1/events", {"type": "a"}),
                  ("POST", "/v1/events/batch", {"events": [{"type": "a"}]}), ("GET", evt, None),
                  ("GET", "/v1/keys", None), ("POST", "/v1/keys", {"tenant": "a", "scopes": ["read"]}),
                  ("DELETE", "/v1/keys/key_" + fake_ulid(), None)]
        creds = [
            ("none", {}),
            ("unknown bearer", {"Authorization": "Bearer " + gen_key()}),
            ("unknown x-api-key", {"X-API-Key": gen_key()}),
            ("malformed bearer", {"Authorization": "Bearer hello"}),
            ("short trg key", {"Authorization": "Bearer trg_abc"}),
            ("long trg key", {"X-API-Key": gen_key() + "x"}),
            ("empty bearer", {"Authorization": "Bearer "}),
            ("basic auth", {"Authorization": "Basic dXNlcjpwYXNz"}),
            ("key without scheme", {"Authorization": gen_key()}),
            ("empty x-api-key", {"X-API-Key": ""}),
        ]
        for method, path, body in routes:
            for label, hdrs in creds:
                with self.subTest(route="%s %s" % (method, path), creds=label):
                    r = self.srv.request(method, path, body, headers=hdrs)
                    self.assertError(r, 401, "unauthorized")

    def test_401_revoked_key(self):
        key, info = self.new_key()
        self.assertStatus(self.srv.request("GET", "/v1/events", key=key), 200)
        r = self.srv.request("DELETE", "/v1/keys/" + info["id"], key=self.srv.admin_key)
        self.assertStatus(r, 204)
        self.assertEqual(r.raw, b"")
        self.assertError(self.srv.request("GET", "/v1/events", key=key), 401, "unauthorized")
        self.assertError(self.srv.request("POST", "/v1/events", {"type": "a"},
                                          headers={"X-API-Key": key}), 401, "unauthorized")

    def test_403_scope_missing(self):
        tenant = unique_tenant()
        keys = {s: self.new_key([s], tenant=tenant)[0] for s in ALL_SCOPES}
        writer, _ = self.new_key(["ingest", "read"], tenant=tenant)
        evt = self.ingest(writer, {"type": "scope.t"})["id"]
        _, victim = self.new_key(["read"], tenant=tenant)
        forbidden = {
            "ingest": [("GET", "/v1/events", None), ("GET", "/v1/events/" + evt, None),
                       ("GET", "/v1/keys", None), ("POST", "/v1/keys", {"scopes": ["read"]}),
                       ("DELETE", "/v1/keys/" + victim["id"], None)],
            "read": [("POST", "/v1/events", {"type": "a"}),
                     ("POST", "/v1/events/batch", {"events": [{"type": "a"}]}),
                     ("GET", "/v1/keys", None)],
            "consume": [("POST", "/v1/events", {"type": "a"}), ("GET", "/v1/events", None),
                        ("GET", "/v1/events/" + evt, None)],
            "manage": [("POST", "/v1/events", {"type": "a"}), ("GET", "/v1/events", None),
                       ("GET", "/v1/events/" + evt, None)],
        }
        for scope, routes in forbidden.items():
            for method, path, body in routes:
                with self.subTest(scope=scope, route="%s %s" % (method, path)):
                    r = self.srv.request(method, path, body, key=keys[scope])
                    self.assertError(r, 403, "forbidden")
        # and what each scope may do
        self.assertStatus(self.srv.request("POST", "/v1/events", {"type": "a"}, key=keys["ingest"]), 202)
        self.assertStatus(self.srv.request("GET", "/v1/events/" + evt, key=keys["read"]), 200)
        self.assertStatus(self.srv.request("GET", "/v1/keys", key=keys["manage"]), 200)
        # the victim key was not revoked by the failed attempt
        r = self.list_keys(self.srv.admin_key, "&tenant=" + tenant)
        self.assertIsNone([k for k in r if k["id"] == victim["id"]][0]["revoked_at"])

    def test_403_admin_key_on_event_routes(self):
        admin = self.srv.admin_key
        evt = "/v1/events/evt_" + fake_ulid()
        routes = [("GET", "/v1/events", None), ("POST", "/v1/events", {"type": "a"}),
                  ("POST", "/v1/events/batch", {"events": [{"type": "a"}]}), ("GET", evt, None)]
        for method, path, body in routes:
            for hdrs in ({"Authorization": "Bearer " + admin}, {"X-API-Key": admin}):
                with self.subTest(route="%s %s" % (method, path), header=list(hdrs)[0]):
                    r = self.srv.request(method, path, body, headers=hdrs)
                    self.assertError(r, 403, "forbidden")

    def test_403_manage_key_for_another_tenant(self):
        tenant = unique_tenant()
        manage, _ = self.new_key(["manage"], tenant=tenant)
        r = self.srv.request("POST", "/v1/keys", {"tenant": unique_tenant(), "scopes": ["read"]},
                             key=manage)
        self.assertError(r, 403, "forbidden")
        # own tenant, explicit or implied, is fine
        r = self.srv.request("POST", "/v1/keys", {"tenant": tenant, "scopes": ["read"]}, key=manage)
        self.assertStatus(r, 201)
        harness.register_secret(r.json["key"])
        self.assertEqual(r.json["tenant"], tenant)
        r = self.srv.request("POST", "/v1/keys", {"scopes": ["ingest"], "name": "child"}, key=manage)
        self.assertStatus(r, 201)
        harness.register_secret(r.json["key"])
        self.assertEqual(r.json["tenant"], tenant)
        self.assertEqual(r.json["name"], "child")
        # a manage key lists only its own tenant's keys
        tenants = {k["tenant"] for k in self.list_keys(manage)}
        self.assertEqual(tenants, {tenant})

    def test_404_unknown_routes(self):
        key, _ = self.new_key()
        for method, path in [("GET", "/v1/nope"), ("GET", "/nope"), ("POST", "/v1/eventz"),
                             ("GET", "/v2/events"), ("GET", "/v1/events/x/y/z"),
                             ("GET", "/v1/events/%s/extra" % ("evt_" + fake_ulid())),
                             ("DELETE", "/v1"), ("GET", "/healthz")]:
            with self.subTest(route="%s %s" % (method, path)):
                r = self.srv.request(method, path, key=key)
                self.assertError(r, 404, "not_found")

    def test_404_unknown_foreign_and_malformed_ids(self):
        tenant_a = unique_tenant("a")
        key_a, _ = self.new_key(["ingest", "read"], tenant=tenant_a)
        key_b, _ = self.new_key(["ingest", "read", "manage"])
        evt = self.ingest(key_a, {"type": "mine"})["id"]
        self.assertStatus(self.srv.request("GET", "/v1/events/" + evt, key=key_a), 200)
        for label, eid in [("unknown", "evt_" + fake_ulid()), ("short", "evt_123"),
                           ("no prefix", "123"), ("prefix only", "evt_"),
                           ("other prefix", "key_" + evt[4:]), ("bad chars", "evt_" + "!" * 26),
                           ("too long", evt + "0"), ("lowercase prefix", "EVT_" + evt[4:]),
                           ("foreign", evt)]:
            with self.subTest(id=label):
                r = self.srv.request("GET", "/v1/events/" + eid, key=key_b)
                self.assertError(r, 404, "not_found")
        for kid in ["key_" + fake_ulid(), "key_x", "garbage", "evt_" + fake_ulid()]:
            with self.subTest(key_id=kid):
                r = self.srv.request("DELETE", "/v1/keys/" + kid, key=self.srv.admin_key)
                self.assertError(r, 404, "not_found")

    def test_405_with_allow_header(self):
        key, _ = self.new_key(ALL_SCOPES)
        admin = self.srv.admin_key
        evt = "/v1/events/evt_" + fake_ulid()
        kid = "/v1/keys/key_" + fake_ulid()
        cases = [("DELETE", "/v1/events", key, {"GET", "POST"}),
                 ("PUT", "/v1/events", key, {"GET", "POST"}),
                 ("GET", "/v1/events/batch", key, {"POST"}),
                 ("PUT", "/v1/events/batch", key, {"POST"}),
                 ("POST", evt, key, {"GET"}),
                 ("PATCH", evt, key, {"GET"}),
                 ("PUT", "/v1/keys", admin, {"GET", "POST"}),
                 ("GET", kid, admin, {"DELETE"}),
                 ("POST", "/health", None, {"GET"})]
        for method, path, k, allowed in cases:
            with self.subTest(route="%s %s" % (method, path)):
                r = self.srv.request(method, path, key=k)
                self.assertError(r, 405, "method_not_allowed")
                self.assertIn("allow", r.headers)
                got = {m.strip().upper() for m in r.headers["allow"].split(",") if m.strip()}
                self.assertTrue(allowed <= got, "Allow %r lacks %s" % (r.headers["allow"], allowed))
                self.assertNotIn(method, got)

    def test_409_idempotency_conflict(self):
        key, _ = self.new_key()
        ik = {"Idempotency-Key": "conflict-" + secrets.token_hex(8)}
        self.ingest(key, {"type": "idem.c", "data": 1}, headers=ik)
        r = self.srv.request("POST", "/v1/events", {"type": "idem.c", "data": 2}, key=key, headers=ik)
        self.assertError(r, 409, "conflict")

    def test_413_body_over_max_body(self):
        for label, kw in [("flag", {"args": ["--max-body", "1024"]}),
                          ("env", {"env": {"TRIGGERS_MAX_BODY": "1KiB"}})]:
            with self.subTest(config=label):
                srv = self.start_server(**kw)
                key, _ = self.new_key(srv=srv)

                def body_of(size):
                    head = b'{"type":"big","data":"'
                    tail = b'"}'
                    return head + b"x" * (size - len(head) - len(tail)) + tail

                self.assertEqual(len(body_of(1024)), 1024)
                self.assertStatus(srv.request("POST", "/v1/events", body_of(1024), key=key), 202)
                r = srv.request("POST", "/v1/events", body_of(1025), key=key)
                self.assertError(r, 413, "payload_too_large")
                r = srv.request("POST", "/v1/events", body_of(5000), key=key)
                self.assertError(r, 413, "payload_too_large")
                batch = json.dumps({"events": [{"type": "b", "data": "y" * 100}] * 20})
                r = srv.request("POST", "/v1/events/batch", batch, key=key)
                self.assertError(r, 413, "payload_too_large")
                # the connection is closed after a 413
                with RawConn(srv) as c:
                    body = body_of(2000)
                    c.send(b"POST /v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
                           + key.encode() + b"\r\nContent-Type: application/json\r\n"
                           b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                    resp = c.read_response()
                    self.assertIsNotNone(resp, "no response before close")
                    self.assertEqual(resp.status, 413)
                    self.assertTrue(c.wait_closed(5), "connection not closed after 413")
                self.assertStatus(srv.request("GET", "/health"), 200)

    def test_415_wrong_content_type(self):
        key, _ = self.new_key()
        body = b'{"type":"ct.test"}'
        for ct in ["text/plain", "application/x-www-form-urlencoded", "application/xml",
                   "application/jsonx", "multipart/form-data; boundary=x", None]:
            with self.subTest(content_type=ct):
                r = self.srv.request("POST", "/v1/events", body, key=key,
                                     headers={"Content-Type": ct})
                self.assertError(r, 415, "unsupported_media_type")
        r = self.srv.request("POST", "/v1/events/batch", b'{"events":[{"type":"a"}]}', key=key,
                             headers={"Content-Type": "text/plain"})
        self.assertError(r, 415, "unsupported_media_type")
        r = self.srv.request("POST", "/v1/keys", b'{"tenant":"a","scopes":["read"]}',
                             key=self.srv.admin_key, headers={"Content-Type": "text/plain"})
        self.assertError(r, 415, "unsupported_media_type")
        for ct in ["application/json; charset=utf-8", "application/json;charset=UTF-8"]:
            with self.subTest(content_type=ct):
                r = self.srv.request("POST", "/v1/events", body, key=key,
                                     headers={"Content-Type": ct})
                self.assertStatus(r, 202)

    def test_429_rate_limited_with_retry_after(self):
        srv = self.start_server(args=["--rate-limit-per-key", "5"])
        key, _ = self.new_key(srv=srv)
        other, _ = self.new_key(srv=srv)
        responses = [srv.request("GET", "/v1/events?limit=1", key=key) for _ in range(20)]
        statuses = [r.status for r in responses]
        self.assertIn(200, statuses)
        self.assertIn(429, statuses)
        self.assertLessEqual(statuses.count(200), 10, statuses)
        self.assertEqual(set(statuses), {200, 429}, statuses)
        limited = [r for r in responses if r.status == 429][0]
        self.assertError(limited, 429, "rate_limited")
        self.assertEqual(limited.headers.get("retry-after"), "1")
        # the limit is per key: another key is unaffected
        self.assertStatus(srv.request("GET", "/v1/events?limit=1", key=other), 200)
        # and it recovers
        self.wait_status(lambda: srv.request("GET", "/v1/events?limit=1", key=key), 200, 5)


# =========================================================================
# Request ids, CORS, health
# =========================================================================
class ConventionsTests(ApiCase):

    def test_request_id_echoed(self):
        key, _ = self.new_key()
        for rid in ["my-trace-1", "a", "x" * 128, "!#$%&'*+-.^_`|~09AZaz()<>@,;:/[]?={}\""]:
            with self.subTest(rid=rid[:20]):
                r = self.srv.request("GET", "/health", headers={"X-Request-Id": rid})
                self.assertEqual(r.headers.get("x-request-id"), rid)
                r = self.srv.request("POST", "/v1/events", {"type": "rid"}, key=key,
                                     headers={"X-Request-Id": rid})
                self.assertStatus(r, 202)
                self.assertEqual(r.headers.get("x-request-id"), rid)
                r = self.srv.request("GET", "/v1/events", headers={"X-Request-Id": rid})
                err = self.assertError(r, 401, "unauthorized")
                self.assertEqual(err["request_id"], rid)

    def test_request_id_generated(self):
        seen = set()
        for hdrs in [{}, {"X-Request-Id": "x" * 129}, {"X-Request-Id": "r\u00e9q"}]:
            with self.subTest(hdrs=str(hdrs)[:40]):
                r = self.srv.request("GET", "/health", headers=hdrs)
                rid = r.headers.get("x-request-id", "")
                self.assertRegex(rid, REQ_ID_RE)
                seen.add(rid)
                r = self.srv.request("POST", "/health", headers=hdrs)
                err = self.assertError(r, 405, "method_not_allowed")
                self.assertRegex(err["request_id"], REQ_ID_RE)
                seen.add(err["request_id"])
        self.assertEqual(len(seen), 6, "generated request ids must be unique")

    def test_dashboard_files_revalidate_with_their_etag(self):
        for path in ("/ui", "/ui/app.js", "/ui/app.css"):
            with self.subTest(path=path):
                r = self.srv.request("GET", path)
                self.assertEqual(r.status, 200, r.raw[:200])
                etag = r.headers["etag"]
                self.assertRegex(etag, r'^"[0-9a-f]{32}"$')
                self.assertEqual(r.headers["cache-control"], "no-cache")
                self.assertIn("default-src 'self'", r.headers["content-security-policy"])
                same = self.srv.request("GET", path, headers={"If-None-Match": etag})
                self.assertEqual(same.status, 304)
                self.assertEqual(same.raw, b"")
                self.assertEqual(same.headers["etag"], etag)
                for header in ('W/' + etag, '"other", ' + etag, "*"):
                    self.assertEqual(
                        self.srv.request("GET", path, headers={"If-None-Match": header}).status,
                        304, header)
                changed = self.srv.request("GET", path, headers={"If-None-Match": '"stale"'})
                self.assertEqual(changed.status, 200)
                self.assertEqual(changed.raw, r.raw)
        r = self.srv.request("GET", "/ui/nope.js")
        self.assertError(r, 404, "not_found")

    def test_cors_preflight(self):
        for path in ["/v1/events", "/v1/keys", "/some/unknown/path", "/health"]:
            with self.subTest(path=path):
                r = self.srv.request("OPTIONS", path, headers={
                    "Origin": "https://app.example.com",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization,content-type"})
                self.assertEqual(r.status, 204, r.raw[:200])
                self.assertEqual(r.raw, b"")
                self.assertEqual(r.headers.get("access-control-allow-origin"), "*")
                self.assertIn("access-control-allow-methods", r.headers)
                self.assertIn("POST", r.headers["access-control-allow-methods"].upper())
                allowed = {h.strip().lower() for h in
                           r.headers.get("access-control-allow-headers", "").split(",")}
                for h in ["authorization", "x-api-key", "content-type", "idempotency-key",
                          "x-request-id"]:
                    self.assertIn(h, allowed)
                self.assertRegex(r.headers.get("access-control-max-age", ""), r"^\d+$")
                self.assertIn("x-request-id", r.headers)

    def test_cors_header_on_every_response(self):
        key, _ = self.new_key()
        for method, path, k in [("GET", "/health", None), ("GET", "/v1/events", key),
                                ("GET", "/v1/events", None), ("GET", "/v1/nope", key),
                                ("DELETE", "/v1/events", key)]:
            with self.subTest(route="%s %s" % (method, path), auth=bool(k)):
                r = self.srv.request(method, path, key=k, headers={"Origin": "https://x.example"})
                self.assertEqual(r.headers.get("access-control-allow-origin"), "*")

    def test_cors_configured_origin(self):
        origin = "https://app.example.com"
        srv = self.start_server(args=["--cors-origins", origin])
        for method, path in [("GET", "/health"), ("GET", "/v1/events"), ("OPTIONS", "/v1/events")]:
            with self.subTest(route="%s %s" % (method, path)):
                r = srv.request(method, path, headers={"Origin": origin})
                self.assertEqual(r.headers.get("access-control-allow-origin"), origin)

    def test_health(self):
        r = self.srv.request("GET", "/health")
        body = self.assertStatus(r, 200)
        self.assertIn("application/json", r.headers.get("content-type", ""))
        self.assertEqual(body["status"], "ok")
        self.assertEqual(body["checks"], {"store": "ok"})
        self.assertIsInstance(body["version"], str)
        self.assertTrue(body["version"])
        self.assertIsInstance(body["uptime_s"], (int, float))
        self.assertGreaterEqual(body["uptime_s"], 0)
        self.assertIn("x-request-id", r.headers)


# =========================================================================
# Keys: auth headers, scopes, revocation, CLI
# =========================================================================
class KeyTests(ApiCase):

    def test_key_object_shape(self):
        tenant = unique_tenant()
        r = self.srv.request("POST", "/v1/keys", {"tenant": tenant, "scopes": ["ingest", "read"],
                                                  "name": "checkout"}, key=self.srv.admin_key)
        body = self.assertStatus(r, 201)
        harness.register_secret(body.get("key"))
        self.assertEqual(set(body), KEY_FIELDS | {"key"})
        self.assertRegex(body["id"], KEY_ID_RE)
        self.assertRegex(body["key"], KEY_SECRET_RE)
        self.assertEqual(body["tenant"], tenant)
        self.assertEqual(sorted(body["scopes"]), ["ingest", "read"])
        self.assertEqual(body["name"], "checkout")
        self.assertRegex(body["created_at"], TIME_RE)
        self.assertIsNone(body["revoked_at"])
        _, unnamed = self.new_key(["read"], tenant=tenant)
        self.assertIsNone(unnamed["name"])
        listed = self.list_keys(self.srv.admin_key, "&tenant=" + tenant)
        self.assertEqual({k["id"] for k in listed}, {body["id"], unnamed["id"]})
        for k in listed:
            self.assertEqual(set(k), KEY_FIELDS)
            self.assertNotIn("key", k)
        self.assertNotIn(body["key"].encode(), self.srv.request(
            "GET", "/v1/keys?tenant=" + tenant, key=self.srv.admin_key).raw)

    def test_both_auth_headers(self):
        key, _ = self.new_key()
        evt = self.srv.request("POST", "/v1/events", {"type": "hdr.a"},
                               headers={"Authorization": "Bearer " + key})
        self.assertStatus(evt, 202)
        r = self.srv.request("POST", "/v1/events", {"type": "hdr.b"}, headers={"X-API-Key": key})
        self.assertStatus(r, 202)
        r = self.srv.request("GET", "/v1/events/" + evt.json["id"], headers={"X-API-Key": key})
        self.assertStatus(r, 200)
        r = self.srv.request("GET", "/v1/keys", headers={"X-API-Key": self.srv.admin_key})
        self.assertStatus(r, 200)

    def test_manage_key_revokes_own_tenant_key(self):
        tenant = unique_tenant()
        manage, _ = self.new_key(["manage"], tenant=tenant)
        key, info = self.new_key(["read"], tenant=tenant)
        self.assertStatus(self.srv.request("GET", "/v1/events", key=key), 200)
        self.assertStatus(self.srv.request("DELETE", "/v1/keys/" + info["id"], key=manage), 204)
        self.assertError(self.srv.request("GET", "/v1/events", key=key), 401, "unauthorized")
        listed = [k for k in self.list_keys(manage) if k["id"] == info["id"]]
        self.assertEqual(len(listed), 1)
        self.assertRegex(listed[0]["revoked_at"] or "", TIME_RE)

    def test_cli_revoke_while_running(self):
        key, info = self.new_key()
        self.assertStatus(self.srv.request("GET", "/v1/events", key=key), 200)
        p = run_cli("keys", "revoke", "--data-dir", self.srv.data_dir, info["id"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn(key, p.stdout + p.stderr)
        r, took = self.wait_status(lambda: self.srv.request("GET", "/v1/events", key=key), 401, 6.0)
        self.assertError(r, 401, "unauthorized")
        rows = [row for row in cli_list_keys(self.srv.data_dir) if row[0] == info["id"]]
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0][-1], "revoked")

    def test_cli_create_offline_then_serve(self):
        srv = self.start_server(start=False)
        tenant = unique_tenant("cli")
        key = cli_create_key(srv.data_dir, tenant, ["ingest", "read"], name="cli-made")
        self.assertRegex(key, KEY_SECRET_RE)
        rows = cli_list_keys(srv.data_dir)
        self.assertEqual(len(rows), 1, rows)
        row = rows[0]
        self.assertRegex(row[0], KEY_ID_RE)
        self.assertEqual(row[1], tenant)
        self.assertEqual(set(re.split(r"[,\s]+", row[2])), {"ingest", "read"})
        self.assertIn("cli-made", row)
        self.assertEqual(row[-1], "active")
        self.assertEqual(cli_list_keys(srv.data_dir, tenant="other-tenant"), [])
        self.assertEqual(len(cli_list_keys(srv.data_dir, tenant=tenant)), 1)
        for line in row:
            self.assertNotIn(key, line)

        srv.start()
        evt = self.ingest(key, {"type": "cli.t"}, srv=srv)
        self.assertStatus(srv.request("GET", "/v1/events/" + evt["id"], key=key), 200)
        listed = self.list_keys(srv.admin_key, "&tenant=" + tenant, srv=srv)
        self.assertEqual([k["id"] for k in listed], [row[0]])
        self.assertEqual(listed[0]["name"], "cli-made")
        self.assertEqual(sorted(listed[0]["scopes"]), ["ingest", "read"])
        # a key created by the API shows up in the CLI list too
        _, api_info = self.new_key(["read"], tenant=tenant, srv=srv)
        self.assertIn(api_info["id"], [r[0] for r in cli_list_keys(srv.data_dir, tenant=tenant)])

    def test_cli_version_and_help(self):
        p = run_cli("version")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout.strip(), r"^triggers \S+")
        p = run_cli("help")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("serve", p.stdout + p.stderr)


# =========================================================================
# Tenant isolation
# =========================================================================
class TenantIsolationTests(ApiCase):

    def test_tenants_never_see_each_other(self):
        ta, tb = unique_tenant("a"), unique_tenant("b")
        key_a, info_a = self.new_key(ALL_SCOPES, tenant=ta)
        key_b, info_b = self.new_key(ALL_SCOPES, tenant=tb)
        etype = "iso." + secrets.token_hex(4)
        evt = self.ingest(key_a, {"type": etype, "data": {"secret": "a-only"}})["id"]

        self.assertError(self.srv.request("GET", "/v1/events/" + evt, key=key_b), 404, "not_found")
        self.assertEqual(self.list_all(key_b, "&type=" + etype), [])
        self.assertEqual(self.list_all(key_b), [])
        self.assertEqual([e["id"] for e in self.list_all(key_a, "&type=" + etype)], [evt])

        # B cannot revoke (or see) A's key
        r = self.srv.request("DELETE", "/v1/keys/" + info_a["id"], key=key_b)
        self.assertError(r, 404, "not_found")
        self.assertStatus(self.srv.request("GET", "/v1/events/" + evt, key=key_a), 200)
        self.assertEqual({k["tenant"] for k in self.list_keys(key_b)}, {tb})
        self.assertNotIn(info_a["id"], [k["id"] for k in self.list_keys(key_b)])

        # the admin sees both, and can filter
        only_a = self.list_keys(self.srv.admin_key, "&tenant=" + ta)
        self.assertEqual([k["id"] for k in only_a], [info_a["id"]])
        everyone = {k["id"] for k in self.list_keys(self.srv.admin_key)}
        self.assertTrue({info_a["id"], info_b["id"]} <= everyone)

        # idempotency keys are per tenant
        ik = {"Idempotency-Key": "shared-" + secrets.token_hex(4)}
        body = {"type": etype}
        first = self.ingest(key_a, body, headers=ik)
        other = self.ingest(key_b, body, headers=ik)
        self.assertNotEqual(first["id"], other["id"])
        self.assertFalse(other["duplicate"])


# =========================================================================
# Events: ingest, idempotency, batch, lists, data fidelity
# =========================================================================
class EventTests(ApiCase):

    def test_event_shapes(self):
        key, _ = self.new_key()
        body = {"type": "order.created", "data": {"order_id": 42}, "source": "shop",
                "subject": "order/42", "ordering_key": "customer-7"}
        r = self.srv.request("POST", "/v1/events", body, key=key)
        ack = self.assertStatus(r, 202)
        self.assertIn("application/json", r.headers.get("content-type", ""))
        self.assertEqual(set(ack), {"id", "type", "received_at", "duplicate"})
        self.assertRegex(ack["id"], EVT_ID_RE)
        self.assertEqual(ack["type"], "order.created")
        self.assertRegex(ack["received_at"], TIME_RE)
        self.assertIs(ack["duplicate"], False)

        got = self.assertStatus(self.srv.request("GET", "/v1/events/" + ack["id"], key=key), 200)
        self.assertEqual(set(got), EVENT_FIELDS | {"deliveries"})
        self.assertEqual(got["deliveries"], [])
        self.assertEqual(got["id"], ack["id"])
        self.assertEqual(got["time"], ack["received_at"])
        for f in ("type", "data", "source", "subject", "ordering_key"):
            self.assertEqual(got[f], body[f], f)

        minimal = self.ingest(key, {"type": "bare"})
        got = self.assertStatus(self.srv.request("GET", "/v1/events/" + minimal["id"], key=key), 200)
        for f in ("data", "source", "subject", "ordering_key"):
            self.assertIsNone(got[f], f)

        listed = self.list_all(key)
        self.assertEqual([e["id"] for e in listed], [ack["id"], minimal["id"]])
        for e in listed:
            self.assertEqual(set(e), EVENT_FIELDS)

    def test_idempotency(self):
        tenant = unique_tenant()
        key, _ = self.new_key(tenant=tenant)
        key2, _ = self.new_key(tenant=tenant)
        etype = "idem." + secrets.token_hex(4)
        raw = '{"type":"%s","data":{"n":1}}' % etype
        ik = {"Idempotency-Key": "order-" + secrets.token_hex(8)}
        first = self.ingest(key, raw, headers=ik)
        self.assertIs(first["duplicate"], False)
        again = self.ingest(key, raw, headers=ik)
        self.assertEqual(again["id"], first["id"])
        self.assertIs(again["duplicate"], True)
        # same tenant, other key: still the same event
        third = self.ingest(key2, raw, headers=ik)
        self.assertEqual(third["id"], first["id"])
        self.assertIs(third["duplicate"], True)
        self.assertEqual([e["id"] for e in self.list_all(key, "&type=" + etype)], [first["id"]])
        # different raw bytes (even only whitespace) -> 409
        for other in ['{"type":"%s","data":{"n":2}}' % etype,
                      '{"type": "%s", "data": {"n": 1}}' % etype]:
            with self.subTest(body=other):
                r = self.srv.request("POST", "/v1/events", other, key=key, headers=ik)
                self.assertError(r, 409, "conflict")
        self.assertEqual(len(self.list_all(key, "&type=" + etype)), 1)
        # without the header, the same body makes a new event
        self.assertNotEqual(self.ingest(key, raw)["id"], first["id"])

    def test_idempotency_key_length(self):
        key, _ = self.new_key()
        self.ingest(key, {"type": "idem.len"}, headers={"Idempotency-Key": "k" * 255})
        r = self.srv.request("POST", "/v1/events", {"type": "idem.len"}, key=key,
                             headers={"Idempotency-Key": "k" * 256})
        self.assertError(r, 400, "validation_error", mentions="idempotency")

    def test_text_that_no_store_can_hold_is_a_400_and_harms_no_one(self):
        """NUL characters and bytes that are not UTF-8 are refused where they
        enter (the PostgreSQL store cannot hold them in text), and a bad batch
        entry fails alone: the rest of the batch, and other tenants' events
        committed in the same group commit, are stored."""
        key, _ = self.new_key(scopes=("ingest", "read", "manage"))
        for value in (b"k\xff\xfe", b"tab\tkey", b"k\x7f"):
            with self.subTest(idempotency_key=value):
                conn = self.srv.connection()
                try:
                    conn.putrequest("POST", "/v1/events")
                    conn.putheader("Authorization", "Bearer " + key)
                    conn.putheader("Content-Type", "application/json")
                    conn.putheader("Idempotency-Key", value)
                    body = b'{"type":"idem.bad"}'
                    conn.putheader("Content-Length", str(len(body)))
                    conn.endheaders(body)
                    resp = conn.getresponse()
                    raw = resp.read()
                finally:
                    conn.close()
                self.assertEqual(resp.status, 400, raw)
                if value != b"k\x7f":  # DEL: the HTTP parser refuses the header already
                    self.assertIn(b"Idempotency-Key", raw)
        self.ingest(key, {"type": "idem.ok"}, headers={"Idempotency-Key": "caf\u00e9-1".encode()})
        r = self.srv.request("POST", "/v1/events/batch", {"events": [
            {"type": "nul.ok", "data": {"s": "\u0000 inside data is fine"}},
            {"type": "nul.bad", "subject": "x\u0000y"},
            {"type": "nul.ok", "data": 2}]}, key=key)
        body = self.assertStatus(r, 200)
        self.assertEqual(body["failed_count"], 1)
        self.assertIn("subject", body["results"][1]["error"]["message"])
        got = self.srv.request("GET", "/v1/events/" + body["results"][0]["id"], key=key)
        self.assertEqual(self.assertStatus(got, 200)["data"], {"s": "\u0000 inside data is fine"})
        r = self.srv.request("POST", "/v1/subscriptions", {"kind": "pull", "description": "a\u0000b"},
                             key=key)
        self.assertError(r, 400, "validation_error", mentions="description")
        r = self.srv.request("POST", "/v1/keys", {"tenant": "x", "scopes": ["read"],
                                                  "name": "n\u0000"}, key=self.srv.admin_key)
        self.assertError(r, 400, "validation_error", mentions="name")
        # Lookups with bytes that are not UTF-8 find nothing; they are not a 503.
        for path in ("/v1/events/evt_%FF", "/v1/deliveries?event_id=%FF",
                     "/v1/events?type=%FF"):
            with self.subTest(path=path):
                r = self.srv.request("GET", path, key=key)
                self.assertIn(r.status, (200, 400, 404), r.raw)

    def test_batch_mixed_entries(self):
        key, _ = self.new_key()
        etype = "batch." + secrets.token_hex(4)
        entries = [
            {"type": etype, "data": 0},
            {"type": "bad type"},
            {"type": etype, "data": 2, "source": "s"},
            5,
            {"type": etype, "extra_field": 1},
            {"type": etype, "data": 5, "subject": "x" * 257},
            {"type": etype, "data": 6},
        ]
        r = self.srv.request("POST", "/v1/events/batch", {"events": entries}, key=key)
        body = self.assertStatus(r, 200)
        self.assertEqual(set(body), {"results", "failed_count"})
        results = body["results"]
        self.assertEqual(len(results), len(entries))
        self.assertEqual(body["failed_count"], 4)
        ok_idx = [0, 2, 6]
        for i, res in enumerate(results):
            with self.subTest(entry=i):
                if i in ok_idx:
                    self.assertEqual(set(res), {"id", "type", "received_at", "duplicate"})
                    self.assertRegex(res["id"], EVT_ID_RE)
                    self.assertEqual(res["type"], etype)
                    self.assertRegex(res["received_at"], TIME_RE)
                    self.assertIs(res["duplicate"], False)
                else:
                    self.assertEqual(set(res), {"error"})
                    self.assertEqual(res["error"]["code"], "validation_error")
                    self.assertIsInstance(res["error"]["message"], str)
        self.assertIn("type", results[1]["error"]["message"])
        self.assertIn("extra_field", results[4]["error"]["message"])
        self.assertIn("subject", results[5]["error"]["message"])
        listed = self.list_all(key, "&type=" + etype)
        self.assertEqual([e["id"] for e in listed], [results[i]["id"] for i in ok_idx])
        self.assertEqual([e["data"] for e in listed], [0, 2, 6])

    def test_batch_size_limits(self):
        key, _ = self.new_key()
        for label, body in [("empty", {"events": []}),
                            ("501", {"events": [{"type": "b"}] * 501}),
                            ("missing", {}),
                            ("not a list", {"events": {"type": "b"}})]:
            with self.subTest(case=label):
                r = self.srv.request("POST", "/v1/events/batch", body, key=key)
                self.assertError(r, 400, "validation_error", mentions="events")
        r = self.srv.request("POST", "/v1/events/batch", {"events": [{"type": "b"}]}, key=key,
                             headers={"Idempotency-Key": "nope"})
        self.assertError(r, 400, "validation_error")
        r = self.srv.request("POST", "/v1/events/batch",
                             {"events": [{"type": "b500", "data": i} for i in range(500)]}, key=key)
        body = self.assertStatus(r, 200)
        self.assertEqual(len(body["results"]), 500)
        self.assertEqual(body["failed_count"], 0)

    def test_pagination_and_type_filter(self):
        key, _ = self.new_key()
        expected = []

        def batch(lo, hi):
            evs = [{"type": "pg.a" if i % 2 == 0 else "pg.b", "data": {"i": i}} for i in range(lo, hi)]
            r = self.srv.request("POST", "/v1/events/batch", {"events": evs}, key=key)
            body = self.assertStatus(r, 200)
            self.assertEqual(body["failed_count"], 0)
            expected.extend(res["id"] for res in body["results"])

        batch(0, 100)
        for i in range(100, 125):
            expected.append(self.ingest(key, {"type": "pg.a" if i % 2 == 0 else "pg.b",
                                              "data": {"i": i}})["id"])
        batch(125, 250)
        self.assertEqual(len(set(expected)), 250)

        pages, cursor = [], None
        while True:
            path = "/v1/events?limit=100" + ("&after=" + q(cursor) if cursor is not None else "")
            body = self.assertStatus(self.srv.request("GET", path, key=key), 200)
            self.assertEqual(set(body), {"data", "next_cursor"})
            pages.append(body["data"])
            cursor = body["next_cursor"]
            if cursor is None:
                break
            self.assertIsInstance(cursor, str)
            self.assertLess(len(pages), 10)
        self.assertEqual([len(p) for p in pages], [100, 100, 50])
        seen = [e["id"] for p in pages for e in p]
        self.assertEqual(seen, expected, "each event exactly once, oldest first")
        self.assertEqual([e["data"]["i"] for p in pages for e in p], list(range(250)))
        self.assertEqual(seen, sorted(seen), "ids sort by creation time")

        # default limit is 100
        body = self.assertStatus(self.srv.request("GET", "/v1/events", key=key), 200)
        self.assertEqual([e["id"] for e in body["data"]], expected[:100])
        self.assertIsNotNone(body["next_cursor"])

        # type filter, also across pages
        only_b = self.list_all(key, "&type=pg.b", limit=100)
        self.assertEqual([e["data"]["i"] for e in only_b], list(range(1, 250, 2)))
        self.assertTrue(all(e["type"] == "pg.b" for e in only_b))
        self.assertEqual(self.list_all(key, "&type=pg.none"), [])
        body = self.assertStatus(self.srv.request("GET", "/v1/events?type=pg.a&limit=1000", key=key), 200)
        self.assertEqual(len(body["data"]), 125)
        self.assertIsNone(body["next_cursor"])

    def assertRawData(self, raw_response, data_text, msg=None):
        pattern = rb'"data"\s*:\s*' + re.escape(data_text) + rb"\s*[,}]"
        self.assertRegex(raw_response, pattern, msg)

    def test_data_returned_byte_for_byte(self):
        key, _ = self.new_key()
        data = rb'{"b":1.50,"a":"\u00e9","z":[1e2, true ,null]}'
        raw_body = rb'{"type":"raw.test","data":' + data + b"}"
        r = self.srv.request("POST", "/v1/events", raw_body, key=key)
        evt = self.assertStatus(r, 202)["id"]
        got = self.srv.request("GET", "/v1/events/" + evt, key=key)
        self.assertStatus(got, 200)
        self.assertIn(data, got.raw)
        self.assertRawData(got.raw, data)
        self.assertEqual(got.json["data"], json.loads(data))
        listed = self.srv.request("GET", "/v1/events?type=raw.test", key=key)
        self.assertIn(data, listed.raw)

        others = [rb'"plain string"', rb"12.50e+3", rb"-0", rb"[ ]", rb"{ }", rb'{"z":1,"a":2}',
                  b'{"s":"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"}', rb'"\ud83d\ude00 \" \\ \/"',
                  rb"123456789012345678901234567890", rb"true", rb"null"]
        for d in others:
            with self.subTest(data=d):
                evt = self.ingest(key, rb'{"type":"raw.more","data":' + d + b"}")["id"]
                got = self.srv.request("GET", "/v1/events/" + evt, key=key)
                self.assertStatus(got, 200)
                self.assertRawData(got.raw, d)


# =========================================================================
# Logs, lifecycle, admin key, retention
# =========================================================================
class LifecycleTests(ApiCase):

    def test_request_log_fields(self):
        tenant = unique_tenant()
        key, _ = self.new_key(tenant=tenant)
        marker = "PAYLOAD-MARKER-" + secrets.token_hex(8)
        evt = self.ingest(key, {"type": "log.t", "data": {"m": marker}})["id"]
        rid = "logcheck-" + secrets.token_hex(6)
        self.assertStatus(self.srv.request("GET", "/v1/events/" + evt, key=key,
                                           headers={"X-Request-Id": rid}), 200)
        line = self.srv.wait_log(lambda o: o.get("request_id") == rid)
        self.assertIsNotNone(line, "no log line with request_id %s" % rid)
        self.assertEqual(line.get("route"), "/v1/events/{id}")
        self.assertEqual(line.get("method"), "GET")
        self.assertEqual(line.get("status"), 200)
        self.assertEqual(line.get("tenant"), tenant)
        self.assertIsInstance(line.get("latency_ms"), (int, float))
        for f in ("time", "level", "msg"):
            self.assertIn(f, line)

        rid2 = "logcheck-" + secrets.token_hex(6)
        self.srv.request("GET", "/v1/events", headers={"X-Request-Id": rid2})
        line = self.srv.wait_log(lambda o: o.get("request_id") == rid2)
        self.assertIsNotNone(line, "no log line with request_id %s" % rid2)
        self.assertEqual(line.get("status"), 401)
        self.assertIn("tenant", line)
        self.assertIsNone(line["tenant"])
        for text in self.srv.log_lines():
            self.assertNotIn(marker, text, "payload data must never be logged")

    def test_no_admin_key_file_when_env_is_set(self):
        self.assertFalse(os.path.exists(os.path.join(self.srv.data_dir, "admin.key")))

    def test_admin_key_file_created(self):
        srv = self.start_server(admin_key=False)
        path = os.path.join(srv.data_dir, "admin.key")
        self.assertTrue(os.path.exists(path))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path) as f:
            content = f.read()
        self.assertRegex(content, r"^trg_[0-9A-Za-z]{43}\n$")
        admin = content.strip()
        self.assertEqual(srv.admin_key, admin)
        self.assertStatus(srv.request("GET", "/v1/keys", key=admin), 200)
        self.assertTrue(any("admin.key" in l for l in srv.log_lines()),
                        "the path of the new admin key should be logged")
        self.assertFalse(any(admin in l for l in srv.log_lines()))
        # a restart keeps it
        srv.restart()
        with open(path) as f:
            self.assertEqual(f.read(), content)
        self.assertStatus(srv.request("GET", "/v1/keys", key=admin), 200)

    def test_sigterm_exits_zero(self):
        srv = self.start_server()
        self.assertStatus(srv.request("GET", "/health"), 200)
        # an idle keep-alive connection must not hold up the shutdown
        conn = srv.connection()
        conn.request("GET", "/health")
        conn.getresponse().read()
        try:
            t0 = time.monotonic()
            rc = srv.stop(signal.SIGTERM)
            took = time.monotonic() - t0
        finally:
            conn.close()
        self.assertFalse(srv.last_stop_forced, "needed SIGKILL")
        self.assertEqual(rc, 0)
        self.assertLess(took, 11)

    def test_sigint_exits_zero(self):
        srv = self.start_server()
        self.assertEqual(srv.stop(signal.SIGINT), 0)
        self.assertFalse(srv.last_stop_forced)

    def test_restart_keeps_data_and_keys(self):
        srv = self.start_server()
        key, _ = self.new_key(srv=srv)
        evt = self.ingest(key, {"type": "restart.t", "data": {"x": 1}}, srv=srv)["id"]
        self.assertEqual(srv.stop(), 0)
        srv.start()
        got = self.assertStatus(srv.request("GET", "/v1/events/" + evt, key=key), 200)
        self.assertEqual(got["data"], {"x": 1})

    def test_retention_purge(self):
        srv = self.start_server(args=["--retention", "1s", "--purge-interval", "200ms"])
        key, _ = self.new_key(srv=srv)
        evt = self.ingest(key, {"type": "ret.t"}, srv=srv)["id"]
        self.assertStatus(srv.request("GET", "/v1/events/" + evt, key=key), 200)
        r, took = self.wait_status(lambda: srv.request("GET", "/v1/events/" + evt, key=key), 404, 10)
        self.assertError(r, 404, "not_found")
        self.assertEqual(self.list_all(key, srv=srv), [])
        # keys are not affected by event retention
        self.assertStatus(srv.request("GET", "/v1/events", key=key), 200)


if __name__ == "__main__":
    unittest.main()
