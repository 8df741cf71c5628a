"""The dashboard (GET /ui) in a real browser.

Starts the real binary (SQLite store) and a real webhook receiver with one
path that answers 500 and one that answers 200, creates a key and two
subscriptions, then runs tests/browser/dashboard.test.js: Debian's chromium
(/usr/bin/chromium, installed by scripts/bootstrap) driven by the npm package
playwright-core, which pastes the key, sees an ingested event appear live,
sees the failed delivery become a dead letter, asks this wrapper to make the
endpoint healthy, clicks Retry and sees the delivery succeed.

playwright-core is installed once into $TRIGGERS_UI_NPM_PREFIX (default
<tmp>/triggers-ui-npm). The screenshots go to $TRIGGERS_TEST_OUTPUT (default
<repo>/build/test-output)/dashboard/. Skipped only when node or npm are
missing; a missing chromium is a failure (bootstrap installs it).

TRIGGERS_UI_DEMO_S=N first sends N seconds of varied traffic (and a flaky
third endpoint), so that the chart of the screenshot has a shape; that is
how docs/img/dashboard.png was taken (N=150). Off by default.

Run from the repo root:
  /usr/bin/python3 -m unittest -v tests/integration/test_dashboard.py
"""

import math
import os
import random
import select
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import REPO, ServerTestCase, ensure_npm_package, make_key, unique_tenant  # noqa: E402
from receiver import Receiver  # noqa: E402

SCRIPT = os.path.join(REPO, "tests", "browser", "dashboard.test.js")
NPM_PREFIX = os.environ.get("TRIGGERS_UI_NPM_PREFIX") or os.path.join(
    tempfile.gettempdir(), "triggers-ui-npm")
CHROMIUM = "/usr/bin/chromium"
OUTPUT_DIR = os.path.join(
    os.environ.get("TRIGGERS_TEST_OUTPUT") or os.path.join(REPO, "build", "test-output"), "dashboard")
RUN_DEADLINE_S = 240.0
DEMO_S = float(os.environ.get("TRIGGERS_UI_DEMO_S") or 0)


def ensure_playwright():
    """Returns the node binary, with playwright-core installed under NPM_PREFIX."""
    return ensure_npm_package(NPM_PREFIX, "playwright-core@1",
                              "the browser test of the dashboard")


class DashboardTest(ServerTestCase):
    # Three attempts 200 ms apart, then dead: the dead letter comes quickly.
    server_args = ["--allow-private-destinations", "--retry-schedule", "200ms,200ms",
                   "--delivery-timeout", "5s"]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rcv = Receiver().start()
        cls.addClassCleanup(cls.rcv.stop)

    def test_dashboard_in_chromium(self):
        node = ensure_playwright()
        self.assertTrue(os.access(CHROMIUM, os.X_OK),
                        "%s is missing: scripts/bootstrap installs Debian's chromium" % CHROMIUM)

        fail_path, ok_path = "/dash-failing", "/dash-ok"
        self.rcv.error(fail_path, 500, body=b"upstream exploded")
        self.rcv.ok(ok_path)
        tenant = unique_tenant("ui")
        key = make_key(self.srv, tenant, ["ingest", "read", "manage"], name="dashboard-test")["key"]
        # Every event goes to the healthy endpoint; only the first event
        # (order_id 42) goes to the failing one, so its circuit stays closed.
        for body in ({"url": self.rcv.url(ok_path), "description": "Orders service"},
                     {"url": self.rcv.url(fail_path), "event_types": ["order.created"],
                      "filter": {"data": {"order_id": [42]}}, "description": "Billing (flaky)"}):
            r = self.srv.request("POST", "/v1/subscriptions", body, key=key)
            self.assertStatus(r, 201)

        if DEMO_S > 0:
            self._demo_traffic(key, DEMO_S)

        os.makedirs(OUTPUT_DIR, exist_ok=True)
        screenshot = os.path.join(OUTPUT_DIR, "dashboard.png")
        for stale in ("dashboard.png", "dashboard-event.png", "dashboard-failure.png"):
            try:
                os.remove(os.path.join(OUTPUT_DIR, stale))
            except FileNotFoundError:
                pass
        env = dict(os.environ, BASE_URL="http://%s:%d" % (self.srv.host, self.srv.port), KEY=key,
                   FAIL_PATH=fail_path, SCREENSHOT=screenshot, PW_PREFIX=NPM_PREFIX,
                   CHROMIUM=CHROMIUM)
        stderr_path = os.path.join(OUTPUT_DIR, "node.stderr.log")
        with open(stderr_path, "wb") as err:
            proc = subprocess.Popen([node, SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=err, env=env, cwd=REPO, start_new_session=True)
        try:
            out = self._converse(proc, {"switch " + fail_path: lambda: self.rcv.ok(fail_path)})
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)  # its own process group: node and chromium
                proc.wait()
            proc.stdin.close()
            proc.stdout.close()
        with open(stderr_path, "rb") as f:
            err_text = f.read().decode("utf-8", "replace")
        self.assertEqual(proc.returncode, 0, "dashboard.test.js failed (exit %s):\n%s\n--- stdout\n%s"
                         % (proc.returncode, err_text[-4000:], out[-3000:]))
        self.assertTrue(os.path.getsize(screenshot) > 10000, "the screenshot is missing or empty")
        # The retried delivery really reached the endpoint with a 200.
        answered = [r for r in self.rcv.requests(fail_path) if r.answer == 200]
        self.assertEqual(len(answered), 1, "the endpoint should have got exactly one retried request")

    def _demo_traffic(self, key, seconds):
        """Ingests a varying number of events each second for `seconds`, to a
        third endpoint that fails now and then (never three times in a row for
        one delivery, so nothing dies), for a chart with a shape."""
        flaky = "/dash-flaky"
        r = self.srv.request("POST", "/v1/subscriptions",
                             {"url": self.rcv.url(flaky), "event_types": ["order.*"],
                              "description": "Analytics warehouse"}, key=key)
        self.assertStatus(r, 201)
        types = ["order.created", "order.paid", "order.shipped", "invoice.created",
                 "user.signed_up"]
        rnd = random.Random(7)
        start = time.monotonic()
        second = 0
        while time.monotonic() - start < seconds:
            t = time.monotonic() - start
            n = max(0, int(4 + 3 * math.sin(t / 17.0) + 2 * math.sin(t / 5.0) + rnd.random() * 2))
            if second % 23 == 11:
                self.rcv.fail_first(flaky, 2)
            if n:
                events = [{"type": rnd.choice(types), "subject": "order/%d" % rnd.randint(1, 9999),
                           "data": {"n": second, "amount": rnd.randint(1, 500)}} for _ in range(n)]
                r = self.srv.request("POST", "/v1/events/batch", {"events": events}, key=key)
                self.assertStatus(r, 200)
            second += 1
            time.sleep(max(0.0, start + second - time.monotonic()))  # pacing, not waiting

    def _converse(self, proc, handlers):
        """Reads the script's stdout until it exits (within RUN_DEADLINE_S),
        answering "@@ <command>" lines with "ok" after running the handler."""
        deadline = time.monotonic() + RUN_DEADLINE_S
        out, buf = [], b""
        fd = proc.stdout.fileno()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail("dashboard.test.js did not finish within %.0f s; output:\n%s"
                          % (RUN_DEADLINE_S, "".join(out)[-3000:]))
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                proc.wait(max(1.0, deadline - time.monotonic()))
                return "".join(out)
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace")
                out.append(line + "\n")
                if line.startswith("@@ "):
                    command = line[3:].strip()
                    handler = handlers.get(command)
                    if handler is None:
                        proc.stdin.write(b"unknown\n")
                    else:
                        handler()
                        proc.stdin.write(b"ok\n")
                    proc.stdin.flush()


if __name__ == "__main__":
    unittest.main()
