"""The OpenAPI document (docs/openapi.yaml, served at GET /openapi.json) is
true to the server:

- the binary serves exactly docs/openapi.yaml, and it is a valid OpenAPI 3.1
  document (@seriousme/openapi-schema-validator);
- the requests and responses of other test modules, recorded through the
  harness (TRIGGERS_IT_RECORD), validate against it (ajv, JSON Schema
  2020-12: tests/openapi/validate.mjs);
- a client generated from it (openapi-typescript + openapi-fetch, type-checked
  with tsc) runs the quick start against the real binary.

That every route of the router is in the document, and nothing else, is the
unit test tests/unit/api/openapi_test.cc. The npm packages are installed once
under $OPENAPI_NPM_PREFIX (default /tmp/triggers-openapi-npm); without node
or npm these tests are skipped.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import REPO, ServerTestCase, ensure_npm_package, make_key  # noqa: E402

NPM_PREFIX = os.environ.get("OPENAPI_NPM_PREFIX") or "/tmp/triggers-openapi-npm"
PACKAGES = ("@seriousme/openapi-schema-validator@2", "ajv@8", "ajv-formats@3",
            "openapi-typescript@7", "openapi-fetch@0.17", "typescript@5")
SCRIPTS = os.path.join(REPO, "tests", "openapi")
# The modules whose traffic is checked against the document.
TRAFFIC_MODULES = (os.environ.get("OPENAPI_TRAFFIC_MODULES") or "test_api test_pull").split()


def node():
    for spec in PACKAGES:
        path = ensure_npm_package(NPM_PREFIX, spec, "the OpenAPI checks")
    return path


def run(args, timeout=300, env=None, cwd=None):
    e = dict(os.environ, OPENAPI_NPM_PREFIX=NPM_PREFIX)
    e.update(env or {})
    return subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, env=e, cwd=cwd)


# The live tail never ends by itself: Server.request cannot record it.
NOT_EXERCISED = {"GET /v1/events/stream"}
# Documented ahead of the change that routes them (kDocumentedAhead in
# tests/unit/api/openapi_test.cc): exercised once the server answers them.
PROBES = ("/health/live", "/health/ready")


def exercise_every_operation(srv, test):
    """One successful request to every documented operation (but
    NOT_EXERCISED), through Server.request so that it is recorded. Returns
    the operations it could not reach (probes this server does not route)."""
    def ok(r, status):
        test.assertEqual(r.status, status, r.raw[:300])
        return r.json

    skipped = set()
    for probe in PROBES:
        record = os.environ.pop("TRIGGERS_IT_RECORD")
        try:
            routed = srv.request("GET", probe).status != 404
        finally:
            os.environ["TRIGGERS_IT_RECORD"] = record
        if routed:
            ok(srv.request("GET", probe), 200)
        else:
            skipped.add("GET " + probe)

    admin = srv.admin_key
    k = make_key(srv, "openapi", ["ingest", "read", "manage", "consume"], name="traffic")
    key = k["key"]
    for path, status in (("/", 302), ("/health", 200), ("/metrics", 200),
                         ("/openapi.json", 200), ("/ui", 200), ("/ui/app.js", 200)):
        ok(srv.request("GET", path), status)
    ok(srv.request("GET", "/v1/keys?tenant=openapi&limit=10", key=admin), 200)
    pull = ok(srv.request("POST", "/v1/subscriptions",
                          {"kind": "pull", "event_types": ["order.**"], "max_receives": 3},
                          key=key), 201)["id"]
    hook = ok(srv.request("POST", "/v1/subscriptions", {
        "url": "http://127.0.0.1:9/hook", "event_types": ["order.*"],
        "filter": {"data": {"total": [{"numeric": [">", 1]}]}}, "ordered": True},
        key=key), 201)["id"]
    ok(srv.request("PATCH", "/v1/subscriptions/" + hook,
                   {"description": "traffic", "max_in_flight": 2, "rate_limit_per_s": 0.5},
                   key=key), 200)
    ok(srv.request("POST", "/v1/subscriptions/%s/rotate-secret" % hook, key=key), 200)
    ok(srv.request("GET", "/v1/subscriptions/" + hook, key=key), 200)
    ok(srv.request("GET", "/v1/subscriptions?limit=5", key=key), 200)
    first = ok(srv.request("POST", "/v1/events", {
        "type": "order.created", "data": {"total": 5}, "source": "shop", "subject": "order/1",
        "ordering_key": "c-1"}, headers={"Idempotency-Key": "traffic-1"}, key=key), 202)["id"]
    ok(srv.request("POST", "/v1/events/batch", {"events": [
        {"type": "order.paid", "data": {"total": 5}}, {"type": "bad type"}]}, key=key), 200)
    ok(srv.request("GET", "/v1/events?type=order.created&limit=10", key=key), 200)
    ok(srv.request("GET", "/v1/events/" + first, key=key), 200)
    got = ok(srv.request("POST", "/v1/subscriptions/%s/receive" % pull,
                         {"max": 1, "wait_s": 2, "visibility_timeout_s": 30}, key=key), 200)
    test.assertEqual(len(got["data"]), 1)
    ok(srv.request("POST", "/v1/subscriptions/%s/ack" % pull,
                   {"receipts": [got["data"][0]["receipt"]]}, key=key), 200)
    again = ok(srv.request("POST", "/v1/subscriptions/%s/receive" % pull, {"wait_s": 2},
                           key=key), 200)
    test.assertEqual(len(again["data"]), 1)
    ok(srv.request("POST", "/v1/subscriptions/%s/nack" % pull,
                   {"receipts": [again["data"][0]["receipt"]], "delay_s": 0}, key=key), 200)
    ok(srv.request("GET", "/v1/deliveries?subscription_id=%s&limit=10" % pull, key=key), 200)
    dlv = got["data"][0]["delivery_id"]
    ok(srv.request("GET", "/v1/deliveries/" + dlv, key=key), 200)
    ok(srv.request("POST", "/v1/deliveries/%s/retry" % dlv, key=key), 202)
    ok(srv.request("POST", "/v1/subscriptions/%s/replay" % pull,
                   {"since": "2020-01-01T00:00:00Z", "status": "all"}, key=key), 202)
    ok(srv.request("GET", "/v1/stats", key=key), 200)
    ok(srv.request("DELETE", "/v1/subscriptions/" + hook, key=key), 204)
    ok(srv.request("DELETE", "/v1/keys/" + k["id"], key=admin), 204)
    return skipped


class OpenApiTests(ServerTestCase):

    # The webhook of exercise_every_operation points at 127.0.0.1.
    server_args = ("--allow-private-destinations",)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix="triggers-openapi-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)

    def document(self):
        r = self.srv.request("GET", "/openapi.json")
        self.assertEqual(r.status, 200, r.raw[:300])
        self.assertIn("application/json", r.headers.get("content-type", ""))
        path = os.path.join(self.tmp, "openapi.json")
        with open(path, "wb") as f:
            f.write(r.raw)
        return r.json, path

    def test_serves_docs_openapi_yaml(self):
        served, _ = self.document()
        with open(os.path.join(REPO, "docs", "openapi.yaml"), encoding="utf-8") as f:
            source = yaml.safe_load(f)
        self.assertEqual(served, source, "GET /openapi.json differs from docs/openapi.yaml")
        self.assertTrue(served["openapi"].startswith("3.1."))

    def test_document_is_valid_openapi(self):
        n = node()
        _, path = self.document()
        p = run([n, os.path.join(SCRIPTS, "validate.mjs"), "document", path])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("valid OpenAPI 3.1", p.stdout)

    def test_validator_refuses_a_broken_document(self):
        # The check above means something: a document the validator must refuse.
        n = node()
        doc, _ = self.document()
        doc["paths"]["/v1/events"]["post"]["responses"] = "202"
        path = os.path.join(self.tmp, "broken.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        p = run([n, os.path.join(SCRIPTS, "validate.mjs"), "document", path])
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_root_redirects_to_the_dashboard(self):
        r = self.srv.request("GET", "/")
        self.assertEqual(r.status, 302, r.raw[:300])
        self.assertEqual(r.headers.get("location"), "/ui")
        self.assertTrue(r.headers.get("x-request-id"))
        ui = self.srv.request("GET", r.headers["location"])
        self.assertEqual(ui.status, 200)
        self.assertIn("text/html", ui.headers.get("content-type", ""))
        # Other methods on / are a 405 like any known path.
        self.assertError(self.srv.request("POST", "/", {}), 405, "method_not_allowed")

    def test_traffic_of_the_tests_validates(self):
        n = node()
        _, doc = self.document()
        traffic = os.path.join(self.tmp, "traffic.jsonl")
        modules = [os.path.join("tests", "integration", m + ".py") for m in TRAFFIC_MODULES]
        p = run([sys.executable, "-m", "unittest"] + modules, timeout=540, cwd=REPO,
                env={"TRIGGERS_IT_RECORD": traffic})
        self.assertEqual(p.returncode, 0, "the recorded modules failed:\n" + p.stderr[-3000:])
        self.assertTrue(os.path.exists(traffic), "nothing was recorded")
        with open(traffic) as f:
            self.assertGreater(sum(1 for _ in f), 100)
        # And one success of every operation, from this test's own server.
        os.environ["TRIGGERS_IT_RECORD"] = traffic
        try:
            skipped = exercise_every_operation(self.srv, self)
        finally:
            del os.environ["TRIGGERS_IT_RECORD"]
        v = run([n, os.path.join(SCRIPTS, "validate.mjs"), "traffic", doc, traffic],
                env={"OPENAPI_PRINT_COVERAGE": "1"})
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr[-6000:])
        self.assertIn(" 0 not matching", v.stdout)
        seen = {" ".join(l.split()[:2]) for l in v.stdout.splitlines()[1:] if l.strip()}
        with open(doc) as f:
            documented = {"%s %s" % (m.upper(), p) for p, item in json.load(f)["paths"].items()
                          for m in item if m in ("get", "post", "patch", "delete", "put")}
        self.assertEqual(documented - seen - NOT_EXERCISED - skipped, set(),
                         "documented operations that no recorded request reached")

    def test_traffic_validator_catches_a_mismatch(self):
        # A response that breaks the document is reported: the check has teeth.
        n = node()
        _, doc = self.document()
        traffic = os.path.join(self.tmp, "bad.jsonl")
        exchanges = [
            {"method": "GET", "path": "/health", "request_headers": {}, "request_body": None,
             "status": 200, "response_headers": {"content-type": "application/json",
                                                 "x-request-id": "req_x"},
             "response_body": json.dumps({"status": "ok", "checks": {"store": "ok"},
                                          "version": "0.1.0", "uptime_s": "4"})},
            {"method": "GET", "path": "/v1/events", "request_headers": {}, "request_body": None,
             "status": 418, "response_headers": {"content-type": "application/json",
                                                 "x-request-id": "req_x"},
             "response_body": "{}"},
        ]
        with open(traffic, "w") as f:
            for x in exchanges:
                f.write(json.dumps(x) + "\n")
        v = run([n, os.path.join(SCRIPTS, "validate.mjs"), "traffic", doc, traffic])
        self.assertNotEqual(v.returncode, 0, v.stdout)
        self.assertIn("2 not matching", v.stdout)
        self.assertIn("uptime_s", v.stderr)
        self.assertIn("status 418 is not documented", v.stderr)

    def test_generated_client_runs_the_quick_start(self):
        n = node()
        _, doc = self.document()
        work = tempfile.mkdtemp(prefix="quickstart-", dir=NPM_PREFIX)  # finds node_modules above
        self.addCleanup(shutil.rmtree, work, True)
        for name in ("quickstart.mts", "tsconfig.json"):
            shutil.copy(os.path.join(SCRIPTS, name), work)
        bins = os.path.join(NPM_PREFIX, "node_modules")
        gen = run([n, os.path.join(bins, "openapi-typescript", "bin", "cli.js"), doc,
                   "-o", os.path.join(work, "schema.d.ts"), "--default-non-nullable=false"])
        self.assertEqual(gen.returncode, 0, gen.stdout + gen.stderr)
        tsc = run([n, os.path.join(bins, "typescript", "bin", "tsc"), "-p", "tsconfig.json"],
                  cwd=work)
        self.assertEqual(tsc.returncode, 0, "the quick start does not type-check against the "
                         "generated client:\n" + tsc.stdout + tsc.stderr)
        p = run([n, os.path.join(work, "out", "quickstart.mjs")], timeout=60, cwd=work,
                env={"TRIGGERS_URL": "http://%s:%d" % (self.srv.host, self.srv.port),
                     "TRIGGERS_ADMIN_KEY": self.srv.admin_key})
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        out = json.loads(p.stdout.strip().splitlines()[-1])
        self.assertEqual(out["received"], 1)
        self.assertEqual(out["ack"], "acked")
        self.assertEqual(out["delivery_status"], "succeeded")
        self.assertTrue(out["event_id"].startswith("evt_"))


def readme_quick_start():
    """The README's quick start script: the first sh block after "In another terminal"."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        text = f.read()
    start = text.index("```sh\n", text.index("In another terminal")) + len("```sh\n")
    return text[start:text.index("```", start)]


class ReadmeQuickStartTests(ServerTestCase):
    """The README's quick start, run verbatim with bash against a real server
    (only the base URL is pointed at it): it waits for the server, prints the
    server's error instead of a traceback, and ends with the ack."""

    shared_server = False

    def run_script(self, cwd):
        script = readme_quick_start()
        self.assertIn("B=http://127.0.0.1:8080\n", script)
        script = script.replace("B=http://127.0.0.1:8080\n", "B=%s\n" % self.base, 1)
        return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)

    def test_quick_start_runs_and_acks(self):
        srv = self.start_server(admin_key=False)  # writes <tmp>/data/admin.key
        self.base = "http://%s:%d" % (srv.host, srv.port)
        p = self.run_script(srv.tmpdir)
        self.assertNotIn("Traceback", p.stderr)
        self.assertEqual(p.stderr.strip(), "", p.stderr)
        self.assertIn('"duplicate":false', p.stdout)
        self.assertRegex(p.stdout, r'\{"results":\[\{"receipt":"dlv_[^"]+","status":"acked"\}\]\}')
        self.assertIn('"status":"ok"', p.stdout)

    def test_quick_start_prints_the_servers_error(self):
        srv = self.start_server()
        self.base = "http://%s:%d" % (srv.host, srv.port)
        work = tempfile.mkdtemp(prefix="readme-")
        self.addCleanup(shutil.rmtree, work, True)
        os.makedirs(os.path.join(work, "data"))
        with open(os.path.join(work, "data", "admin.key"), "w") as f:
            f.write("trg_not_the_admin_key\n")
        p = self.run_script(work)
        self.assertNotIn("Traceback", p.stderr)
        self.assertIn("the server answered unauthorized: unknown API key", p.stderr)

    def test_quick_start_waits_for_the_server(self):
        # Nothing listens yet: the wait loop gives up with a sentence (shortened here).
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        script = readme_quick_start().replace("$(seq 300)", "$(seq 2)", 1)
        script = script.replace("B=http://127.0.0.1:8080\n", "B=http://127.0.0.1:%d\n" % port, 1)
        p = subprocess.run(["bash", "-c", script + "\nexit 0"], capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL, cwd=tempfile.gettempdir())
        self.assertIn("no answer from http://127.0.0.1:%d/health" % port, p.stderr)
        self.assertNotIn("Traceback", p.stderr)


if __name__ == "__main__":
    unittest.main()
