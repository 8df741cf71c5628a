"""The command line (issue 13 item 7): `triggers --version`, `triggers help
<command>`, exit 2 for every usage error, a header on tabular output,
`triggers tail` saying it is connected, the reason of a failed webhook
attempt in its log line, and `make test` (scripts/ctest-run) stopping the
private PostgreSQL when interrupted.

Run from the repo root: /usr/bin/python3 -m unittest tests/integration/test_cli.py
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (  # noqa: E402
    REPO, ServerTestCase, binary_path, clean_env, cli_create_key, make_key, run_cli,
    unique_tenant)
from receiver import Receiver  # noqa: E402

VERSION_LINE = "triggers 0.1.0"


def run(*args, env=None):
    return subprocess.run([binary_path()] + list(args), capture_output=True, text=True,
                          env=clean_env(env), stdin=subprocess.DEVNULL, timeout=30)


class VersionAndHelpTests(unittest.TestCase):
    def test_version_flag_and_command(self):
        for args in (["--version"], ["version"]):
            with self.subTest(args=args):
                p = run(*args)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertTrue(p.stdout.startswith("triggers "), p.stdout)
        self.assertEqual(run("--version").stdout.strip(), run("version").stdout.strip())

    def test_help_of_one_command(self):
        cases = {("keys",): "Usage: triggers keys", ("keys", "create"): "Usage: triggers keys create",
                 ("serve",): "--data-dir", ("config", "show"): "Usage: triggers config show",
                 ("tail",): "--url"}
        for topic, expect in cases.items():
            with self.subTest(topic=topic):
                p = run("help", *topic)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertIn(expect, p.stdout)
        whole = run("help")
        self.assertEqual(whole.returncode, 0)
        for sub in ("serve", "keys", "tail", "config", "migrate-store"):
            self.assertIn(sub, whole.stdout)
        self.assertIn("create", run("help", "keys").stdout)

    def test_help_of_an_unknown_command_exits_2(self):
        p = run("help", "nope")
        self.assertEqual(p.returncode, 2)
        self.assertIn("nope", p.stderr)

    def test_an_unknown_command_is_named(self):
        for args, where in ((["nope"], "triggers:"), (["keys", "nope"], "triggers keys:")):
            with self.subTest(args=args):
                p = run(*args)
                self.assertEqual(p.returncode, 2)
                self.assertIn("%s unknown command 'nope'" % where, p.stderr)
                self.assertIn("serve" if len(args) == 1 else "create", p.stderr)

    def test_usage_errors_exit_2(self):
        d = tempfile.mkdtemp(prefix="triggers-cli-")
        self.addCleanup(shutil.rmtree, d, True)
        cases = [
            [],                                            # a subcommand is required
            ["nope"],                                      # unknown command
            ["keys"],                                      # keys needs a subcommand
            ["keys", "list", "--bogus"],                   # unknown flag (CLI11: 109)
            ["keys", "create", "--data-dir", d],           # required flags missing (106)
            ["keys", "revoke", "--data-dir", d],           # required positional missing
            ["keys", "revoke", "--data-dir", d, "not-an-id"],
            ["keys", "create", "--data-dir", d, "--tenant", "BAD!", "--scopes", "read"],
            ["serve", "--threads", "abc"],                 # not a number
            ["serve", "--threads", "1000", "--data-dir", d + "/x"],  # out of range
            ["serve", "extra-positional"],
            ["config"],
            ["config", "check"],                           # --config is required
            ["config", "show", "--nope"],
            ["tail", "--url", "http://127.0.0.1:1"],       # no key
            ["migrate-store", "--bogus"],
        ]
        for args in cases:
            with self.subTest(args=args):
                p = run(*args)
                self.assertEqual(p.returncode, 2, "%r: %s" % (args, p.stderr))
                self.assertTrue(p.stderr.strip(), "no message on stderr")
        self.assertFalse(os.path.exists(d + "/x"))

    def test_help_flags_exit_0(self):
        for args in (["--help"], ["serve", "--help"], ["keys", "list", "-h"], ["--help-all"]):
            with self.subTest(args=args):
                self.assertEqual(run(*args).returncode, 0)


class TabularOutputTests(unittest.TestCase):
    def test_keys_list_has_a_header_and_aligned_columns(self):
        d = tempfile.mkdtemp(prefix="triggers-cli-")
        self.addCleanup(shutil.rmtree, d, True)
        cli_create_key(d, "acme", ["ingest", "read"], name="checkout")
        empty = run_cli("keys", "list", "--data-dir", d, "--tenant", "nobody")
        self.assertEqual(empty.returncode, 0, empty.stderr)
        self.assertEqual(empty.stdout.split(), ["ID", "TENANT", "SCOPES", "NAME", "CREATED",
                                                "AWS_ACCESS_KEY_ID", "STATUS"])
        cli_create_key(d, "a-much-longer-tenant-name", ["read"])
        p = run_cli("keys", "list", "--data-dir", d)
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 3, p.stdout)
        self.assertEqual(lines[0].split()[0], "ID")
        # every column starts at the same offset on every line
        col = lines[0].index("SCOPES")
        for line in lines[1:]:
            self.assertEqual(line[col - 2:col], "  ", line)
            self.assertNotEqual(line[col], " ", line)


class TailTests(ServerTestCase):
    def test_tail_says_connected_before_the_first_event(self):
        key = make_key(self.srv, unique_tenant("tail"), ["ingest", "read"])["key"]
        env = clean_env({"TRIGGERS_KEY": key})
        proc = subprocess.Popen(
            [binary_path(), "tail", "--url", "http://%s:%d" % (self.srv.host, self.srv.port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        err_lines, out_lines = [], []
        got_connected = threading.Event()

        def read_err():
            for line in iter(proc.stderr.readline, b""):
                err_lines.append(line)
                if b"connected" in line:
                    got_connected.set()
        threading.Thread(target=read_err, daemon=True).start()
        threading.Thread(target=lambda: [out_lines.append(l) for l in
                                         iter(proc.stdout.readline, b"")], daemon=True).start()
        try:
            # No event is ingested before the line: it comes from the open stream alone.
            self.assertTrue(got_connected.wait(10), "no 'connected' line: %r" % err_lines)
            self.assertEqual(out_lines, [])
            deadline = time.monotonic() + 10
            while not out_lines and time.monotonic() < deadline:
                r = self.srv.request("POST", "/v1/events", {"type": "tail.c", "data": {}},
                                     key=key)
                self.assertEqual(r.status, 202)
                time.sleep(0.2)
            self.assertTrue(out_lines, "tail printed no event")
        finally:
            proc.terminate()
            rc = proc.wait(timeout=10)
            proc.stdout.close()
            proc.stderr.close()
        self.assertEqual(rc, 0)
        self.assertNotIn(key.encode(), b"".join(err_lines + out_lines))


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class FailedAttemptLogTests(ServerTestCase):
    server_args = ("--allow-private-destinations", "--retry-schedule", "1h")

    def test_connection_refused_is_in_the_log_line(self):
        key = make_key(self.srv, unique_tenant("flog"), ["ingest", "read", "manage"])["key"]
        url = "http://127.0.0.1:%d/hook-PATHSECRET?token=QUERYSECRET" % closed_port()
        r = self.srv.request("POST", "/v1/subscriptions", {"url": url, "event_types": ["f.*"]},
                             key=key)
        self.assertEqual(r.status, 201, r.raw[:300])
        sub = r.json["id"]
        self.assertEqual(self.srv.request("POST", "/v1/events", {"type": "f.one"},
                                          key=key).status, 202)
        line = self.srv.wait_log(lambda o: o.get("msg") == "delivery attempt"
                                 and o.get("subscription_id") == sub, 20)
        self.assertIsNotNone(line, "no delivery attempt logged")
        self.assertEqual(line["level"], "warn")
        self.assertNotIn("status_code", line, "no response: no status code")
        self.assertIn("error", line)
        self.assertRegex(line["error"].lower(), "connect|refused")
        text = str(line)
        self.assertNotIn("PATHSECRET", text)
        self.assertNotIn("QUERYSECRET", text)

    def test_an_http_error_has_its_status(self):
        rcv = Receiver().start()
        self.addCleanup(rcv.stop)
        rcv.error("/h500", 500)
        key = make_key(self.srv, unique_tenant("flog"), ["ingest", "read", "manage"])["key"]
        r = self.srv.request("POST", "/v1/subscriptions",
                             {"url": rcv.url("/h500"), "event_types": ["g.*"]}, key=key)
        self.assertEqual(r.status, 201, r.raw[:300])
        sub = r.json["id"]
        self.assertEqual(self.srv.request("POST", "/v1/events", {"type": "g.one"},
                                          key=key).status, 202)
        line = self.srv.wait_log(lambda o: o.get("msg") == "delivery attempt"
                                 and o.get("subscription_id") == sub, 20)
        self.assertIsNotNone(line, "no delivery attempt logged")
        self.assertEqual(line.get("status_code"), 500, line)
        self.assertEqual(line.get("error"), "HTTP 500", line)


TEST_PG = os.path.join(REPO, "scripts", "test-pg")
CTEST_RUN = os.path.join(REPO, "scripts", "ctest-run")
STAND_IN = """#!/bin/bash
# A stand-in for ctest: the "pg" fixture starts the private server, then a
# test runs until interrupted.
bash {test_pg} start {build}/pg >/dev/null || exit 1
touch {build}/ready
sleep 120
"""


class MakeTestInterruptTests(unittest.TestCase):
    @unittest.skipUnless(os.path.exists("/usr/lib/postgresql/15/bin/pg_ctl"), "needs PostgreSQL")
    def test_ctrl_c_stops_the_private_postgres(self):
        build = tempfile.mkdtemp(prefix="triggers-ctest-run-")
        self.addCleanup(shutil.rmtree, build, True)
        self.addCleanup(subprocess.run, ["bash", TEST_PG, "stop", os.path.join(build, "pg")],
                        capture_output=True, timeout=120)
        stand_in = os.path.join(build, "ctest")
        with open(stand_in, "w") as f:
            f.write(STAND_IN.format(test_pg=TEST_PG, build=build))
        os.chmod(stand_in, 0o755)
        # its own process group, as a terminal's foreground job
        proc = subprocess.Popen(["bash", CTEST_RUN, build, "--output-on-failure"],
                                env=clean_env({"CTEST": stand_in}), start_new_session=True,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        self.addCleanup(proc.stdout.close)
        deadline = time.monotonic() + 120
        while not os.path.exists(os.path.join(build, "ready")):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                self.fail("the stand-in never started PostgreSQL: %r" % proc.stdout.read())
            time.sleep(0.1)
        status = ["bash", TEST_PG, "status", os.path.join(build, "pg")]
        self.assertEqual(subprocess.run(status, timeout=60).returncode, 0, "not running")
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        rc = proc.wait(timeout=120)
        self.assertEqual(rc, 130, proc.stdout.read())
        self.assertNotEqual(subprocess.run(status, timeout=60).returncode, 0,
                            "the private PostgreSQL still runs after Ctrl-C")


if __name__ == "__main__":
    unittest.main()
