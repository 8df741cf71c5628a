"""`triggers serve --config PATH` (TOML), `triggers config check` and
`triggers config show` (SPEC section 11): every serve flag is a key,
precedence flags > TRIGGERS_* environment > file > defaults, and an unknown
key or a bad value exits 2 naming the key and the line of the file.

Run from the repo root: /usr/bin/python3 -m unittest tests/integration/test_config.py
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import ServerTestCase, binary_path, clean_env, make_key, unique_tenant  # noqa: E402


def run(*args, env=None, cwd=None):
    return subprocess.run([binary_path()] + [str(a) for a in args], capture_output=True,
                          text=True, env=clean_env(env), stdin=subprocess.DEVNULL, timeout=30,
                          cwd=cwd)


def show_values(text):
    """{key: (value text, origin comment)} of `triggers config show`."""
    out = {}
    for line in text.splitlines():
        m = re.match(r'^([a-z0-9-]+) = (.*?)  # (.*)$', line)
        if m:
            out[m.group(1)] = (m.group(2), m.group(3))
    return out


class ConfigFileTests(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="triggers-config-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write(self, text, name="triggers.toml"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def assertUsageError(self, p, *mentions):
        self.assertEqual(p.returncode, 2, p.stderr + p.stdout)
        for m in mentions:
            self.assertIn(m, p.stderr)

    def test_precedence_flag_env_file_default(self):
        path = self.write('# every key is a long flag of triggers serve\n'
                          'retention = "3d"\n'
                          'purge-interval = "2m"\n'
                          'log-level = "warn"\n')
        env = {"TRIGGERS_PURGE_INTERVAL": "3m", "TRIGGERS_LOG_LEVEL": "error"}
        p = run("config", "show", "--config", path, "--log-level", "debug", env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        v = show_values(p.stdout)
        self.assertEqual(v["log-level"], ('"debug"', "flag --log-level"))
        self.assertEqual(v["purge-interval"], ('"3m"', "environment TRIGGERS_PURGE_INTERVAL"))
        self.assertEqual(v["retention"], ('"3d"', "file %s line 2" % path))
        self.assertEqual(v["max-body"], ('"256KiB"', "default"))
        self.assertEqual(v["allow-private-destinations"], ("false", "default"))

    def test_every_serve_flag_is_a_key(self):
        p = run("serve", "--help")
        self.assertEqual(p.returncode, 0, p.stderr)
        flags = set(re.findall(r"--([a-z][a-z0-9-]+)", p.stdout)) - {"help", "help-all", "config"}
        self.assertIn("data-dir", flags)
        shown = show_values(run("config", "show").stdout)
        self.assertEqual(set(shown), flags)
        # and each can be set from the file: write the shown defaults back
        lines = ["%s = %s" % (k, v) for k, (v, _) in shown.items()]
        path = self.write("\n".join(lines) + "\n")
        c = run("config", "check", "--config", path)
        self.assertEqual(c.returncode, 0, c.stderr)
        again = show_values(run("config", "show", "--config", path).stdout)
        self.assertTrue(all(o.startswith("file ") for _, o in again.values()), again)
        # and each has its TRIGGERS_<FLAG> variable, which wins over the file
        # (an empty variable counts as unset: postgres-url's default is empty)
        env = {"TRIGGERS_" + k.upper().replace("-", "_"): v.strip('"')
               for k, (v, _) in shown.items() if v != '""'}
        p = run("config", "show", "--config", path, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        for k, (v, origin) in show_values(p.stdout).items():
            if v != '""':
                self.assertEqual(origin, "environment TRIGGERS_" + k.upper().replace("-", "_"))

    def test_show_output_is_a_valid_config(self):
        path = self.write('max-connections = 500\nallow-private-destinations = true\n')
        p = run("config", "show", "--config", path, "--threads", "3")
        self.assertEqual(p.returncode, 0, p.stderr)
        again = self.write(p.stdout, "again.toml")
        c = run("config", "check", "--config", again)
        self.assertEqual(c.returncode, 0, c.stderr)
        v = show_values(run("config", "show", "--config", again).stdout)
        self.assertEqual(v["threads"][0], "3")
        self.assertEqual(v["max-connections"][0], "500")
        self.assertEqual(v["allow-private-destinations"][0], "true")

    def test_show_masks_secrets(self):
        path = self.write('store = "postgres"\n'
                          'postgres-url = "postgresql://app:S3cretPw@db.internal:5432/t"\n')
        p = run("config", "show", "--config", path)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("S3cretPw", p.stdout + p.stderr)
        self.assertIn('postgresql://app:****@db.internal:5432/t', p.stdout)
        env = {"TRIGGERS_POSTGRES_URL": "host=db user=app password=EnvPw77 dbname=t"}
        p = run("config", "show", "--store", "postgres", env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("EnvPw77", p.stdout + p.stderr)
        self.assertIn("password=****", p.stdout)
        p = run("config", "show", "--postgres-url", "postgresql://u:FlagPw9@h/d?password=Q2")
        self.assertNotIn("FlagPw9", p.stdout)
        self.assertNotIn("Q2", p.stdout)

    def test_check_accepts_a_good_file(self):
        path = self.write('listen = "0.0.0.0:8080"\ndata-dir = "/var/lib/triggers"\n'
                          'threads = 4\nrate-limit-per-key = 2.5\nmetrics-require-admin = true\n')
        p = run("config", "check", "--config", path)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("ok", p.stdout)
        self.assertFalse(os.path.exists("/var/lib/triggers/triggers.db"))

    def test_bad_files_exit_2_naming_key_and_line(self):
        cases = [
            ('listen = "127.0.0.1:0"\nbogus-key = 1\n', ["bogus-key", "line 2", "unknown key"]),
            ('\n[server]\nlisten = "127.0.0.1:0"\n', ["server", "line 2", "unknown key"]),
            ('threads = "four"\n', ["threads", "line 1", "integer"]),
            ('\n\nthreads = 999\n', ["threads", "line 3", "0-256"]),
            ('retention = "7 days"\n', ["retention", "line 1", "duration"]),
            ('allow-private-destinations = "yes"\n', ["allow-private-destinations", "line 1"]),
            ('data-dir = 5\n', ["data-dir", "line 1", "string"]),
            ('postgres-pool = 99999999999999\n', ["postgres-pool", "line 1"]),
            ('\nstore = "postgres"\n', ["store", "line 2", "--postgres-url"]),
            ('retry-schedule = "1s,nope"\n', ["retry-schedule", "line 1"]),
            ('listen = \n', ["line 1"]),
            ('threads = 1\nthreads = 2\n', ["line 2", "threads"]),
        ]
        for text, mentions in cases:
            with self.subTest(text=text):
                path = self.write(text)
                data = os.path.join(self.dir, "data")  # the flag wins; the file is still checked
                self.assertUsageError(run("config", "check", "--config", path),
                                      path, *mentions)
                p = run("serve", "--config", path, "--data-dir", data)
                self.assertUsageError(p, path, *mentions)
                self.assertFalse(os.path.exists(data), "serve touched the data dir")
                self.assertUsageError(run("config", "show", "--config", path), *mentions)

    def test_check_reads_the_file_alone(self):
        path = self.write('threads = 4\n')
        env = {"TRIGGERS_THREADS": "999", "TRIGGERS_RETENTION": "bad"}
        p = run("config", "check", "--config", path, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        # while serve and show take the environment over the file
        self.assertUsageError(run("config", "show", "--config", path, env=env), "TRIGGERS_")

    def test_missing_file_exits_2(self):
        missing = os.path.join(self.dir, "nope.toml")
        for args in (("config", "check", "--config", missing), ("serve", "--config", missing)):
            with self.subTest(args=args):
                self.assertUsageError(run(*args), missing, "cannot read")

    def test_a_bad_value_from_the_environment_names_the_variable(self):
        path = self.write('retention = "1d"\n')
        p = run("serve", "--config", path, env={"TRIGGERS_RETENTION": "soon"})
        self.assertUsageError(p, "TRIGGERS_RETENTION", "soon")
        self.assertNotIn("line", p.stderr)

    def test_config_path_from_the_environment(self):
        path = self.write('threads = 7\n')
        v = show_values(run("config", "show", env={"TRIGGERS_CONFIG": path}).stdout)
        self.assertEqual(v["threads"], ("7", "file %s line 1" % path))


class ServeFromConfigTests(ServerTestCase):
    """The file really configures the server, under the environment and flags."""
    shared_server = False

    def post_2kib(self, srv):
        key = make_key(srv, unique_tenant("cfg"), ["ingest"])["key"]
        body = b'{"type":"cfg.big","data":{"pad":"' + b"x" * 2048 + b'"}}'
        return srv.request("POST", "/v1/events", body=body, key=key,
                           headers={"Content-Type": "application/json"}).status

    def test_file_then_env_then_flag(self):
        d = tempfile.mkdtemp(prefix="triggers-config-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "triggers.toml")
        with open(path, "w") as f:
            f.write('max-body = "1KiB"\nlog-level = "info"\n')
        srv = self.start_server(args=["--config", path])
        self.assertEqual(self.post_2kib(srv), 413)
        srv.stop()
        srv = self.start_server(args=["--config", path], env={"TRIGGERS_MAX_BODY": "8KiB"})
        self.assertEqual(self.post_2kib(srv), 202)
        srv.stop()
        srv = self.start_server(args=["--config", path, "--max-body", "1KiB"],
                                env={"TRIGGERS_MAX_BODY": "8KiB"})
        self.assertEqual(self.post_2kib(srv), 413)


if __name__ == "__main__":
    unittest.main()
