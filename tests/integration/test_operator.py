"""Careless operators and hostile environments (issue 11), through the real
binary:

- proxies in the environment (http_proxy, HTTPS_PROXY, ALL_PROXY) are never
  used for webhooks: they go straight to their destination;
- one `triggers serve` per SQLite data directory (triggers.lock names the PID
  of the holder); offline `keys` commands still work beside it, while
  `migrate-store` refuses it;
- commands that read a store refuse a missing one and create nothing; `serve`
  creates its store only once it holds its port;
- the data directory is 0700 and every file in it 0600, whatever the umask;
  looser modes found there are tightened (or warned about);
- webhook URLs with a trailing dot ("localhost.", "127.0.0.1.") get the same
  refusal as without it.

Servers run on the embedded SQLite store (the proxy tests do not depend on
the store). Run from the repo root:
  /usr/bin/python3 -m unittest -v tests/integration/test_operator.py
"""

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (  # noqa: E402
    Server, ServerTestCase, binary_path, clean_env, gen_key, make_key, register_secret, run_cli,
    skip_on_postgres, unique_tenant,
)
from receiver import Receiver  # noqa: E402

STORE_FILES = ("triggers.db", "triggers.db-wal", "triggers.db-shm", "admin.key", "triggers.lock")


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def json_lines(text):
    out = []
    for line in text.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


class TcpSpy:
    """A TCP listener on 127.0.0.1 that records every connection it gets
    (with its first bytes). As a stand-in proxy it answers whatever HTTP
    request arrives (a proxied POST, a CONNECT) with 200, as a real proxy in
    front of a healthy destination would; otherwise it just closes."""

    def __init__(self, answer_http=True):
        self.answer_http = answer_http
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.first_bytes = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="tcpspy-%d" % self.port)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2.0)
                try:
                    data = conn.recv(65536)
                except OSError:
                    data = b""
                with self._lock:
                    self.first_bytes.append(data)
                if self.answer_http and data[:1].isalpha():
                    try:
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                     b"Connection: close\r\n\r\nok")
                    except OSError:
                        pass

    def connections(self):
        with self._lock:
            return list(self.first_bytes)

    def wait_connections(self, n, timeout):
        deadline = time.monotonic() + timeout
        while len(self.connections()) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.connections()

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


class OperatorCase(ServerTestCase):
    shared_server = False

    def tmpdir(self):
        d = tempfile.mkdtemp(prefix="triggers-it-op-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def serve_once(self, data_dir, listen="127.0.0.1:0", args=(), env=None, umask=None,
                   timeout=15):
        """Runs a `triggers serve` that is expected to exit by itself; returns
        the CompletedProcess (stderr as text)."""
        cmd = [binary_path(), "serve", "--listen", listen, "--data-dir", data_dir] + list(args)
        pre = (lambda: os.umask(umask)) if umask is not None else None
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              env=clean_env(env), timeout=timeout, preexec_fn=pre)

    def start_with_umask(self, umask, **kw):
        """A Server (harness) whose data dir does not exist before it starts,
        run under `umask`. The data dir is <tmp>/data/store."""
        srv = self.start_server(start=False, **kw)
        shutil.rmtree(srv.data_dir)
        srv.data_dir = os.path.join(srv.data_dir, "store")
        old = os.umask(umask)
        try:
            srv.start()
        finally:
            os.umask(old)
        return srv

    def assertNoLooseModes(self, data_dir, what):
        self.assertEqual(mode(data_dir), 0o700, "%s: the data dir" % what)
        for name in os.listdir(data_dir):
            path = os.path.join(data_dir, name)
            self.assertEqual(mode(path), 0o600, "%s: %s is %04o" % (what, name, mode(path)))


# =========================================================================
# 1. Proxies from the environment
# =========================================================================
class ProxyTests(OperatorCase):
    def proxy_env(self, spy, *names):
        env = {n: "http://127.0.0.1:%d" % spy.port for n in names}
        # A no_proxy inherited from the machine must not hide a proxy in use.
        env.update({"no_proxy": "", "NO_PROXY": ""})
        return env

    def spy(self, **kw):
        s = TcpSpy(**kw)
        self.addCleanup(s.close)
        return s

    def webhook(self, srv, key, url, etype):
        r = srv.request("POST", "/v1/subscriptions", {"url": url, "event_types": [etype]},
                        key=key)
        self.assertStatus(r, 201, url)
        register_secret(r.json.get("secret"))
        r = srv.request("POST", "/v1/events", {"type": etype, "data": {"n": 1}}, key=key)
        self.assertStatus(r, 202)
        return r.json["id"]

    def test_environment_proxies_are_not_used(self):
        proxy = self.spy()
        tls_destination = self.spy(answer_http=False)  # https:// goes here: TLS, never answered
        with Receiver() as rcv:
            srv = self.start_server(
                args=["--allow-private-destinations", "--retry-schedule", "1h",
                      "--delivery-timeout", "2s"],
                env=self.proxy_env(proxy, "http_proxy", "https_proxy", "HTTPS_PROXY",
                                   "all_proxy", "ALL_PROXY"))
            key = make_key(srv, unique_tenant("proxy"), ["ingest", "read", "manage"])["key"]
            # http:// (http_proxy, then ALL_PROXY, would apply)
            evt = self.webhook(srv, key, rcv.url("/direct"), "proxy.http")
            got = rcv.wait_for("/direct", 1, 10)
            self.assertEqual(len(got), 1, "the webhook did not reach its destination")
            self.assertIn("webhook-signature", got[0].headers)
            self.assertEqual(json.loads(got[0].body)["id"], evt)
            # https:// (HTTPS_PROXY would apply): the connection goes to the destination
            self.webhook(srv, key, "https://127.0.0.1:%d/tls" % tls_destination.port,
                         "proxy.https")
            seen = tls_destination.wait_connections(1, 10)
            self.assertTrue(seen, "the https webhook never connected to its destination")
            self.assertEqual(seen[0][:1], b"\x16", "not a TLS ClientHello: %r" % seen[0][:20])
            d = srv.request("GET", "/v1/deliveries?event_id=" + evt, key=key).json["data"]
            self.assertEqual([x["status"] for x in d], ["succeeded"])
        time.sleep(0.2)
        self.assertEqual(proxy.connections(), [], "a webhook went to the proxy")

    def test_all_proxy_alone_is_not_used(self):
        proxy = self.spy()
        with Receiver() as rcv:
            srv = self.start_server(args=["--allow-private-destinations"],
                                    env=self.proxy_env(proxy, "ALL_PROXY"))
            key = make_key(srv, unique_tenant("proxy"), ["ingest", "manage"])["key"]
            self.webhook(srv, key, rcv.url("/all"), "proxy.all")
            self.assertEqual(len(rcv.wait_for("/all", 1, 10)), 1)
        time.sleep(0.2)
        self.assertEqual(proxy.connections(), [], "a webhook went to ALL_PROXY")


# =========================================================================
# 2. Two servers, one store
# =========================================================================
@skip_on_postgres("the data-dir lock guards the embedded store")
class LockTests(OperatorCase):
    def test_second_server_on_the_same_data_dir_exits(self):
        srv = self.start_server()
        lock = os.path.join(srv.data_dir, "triggers.lock")
        with open(lock) as f:
            self.assertEqual(f.read().strip(), str(srv.pid))
        self.assertEqual(mode(lock), 0o600)
        before = sorted(os.listdir(srv.data_dir))

        p = self.serve_once(srv.data_dir, env={"TRIGGERS_ADMIN_KEY": srv.admin_key})
        self.assertEqual(p.returncode, 1, p.stderr)
        errors = [o for o in json_lines(p.stderr) if o.get("level") == "error"]
        self.assertEqual(len(errors), 1, p.stderr)
        self.assertEqual(errors[0]["msg"], "data directory in use")
        self.assertIn("PID %d" % srv.pid, errors[0]["error"])
        self.assertIn("triggers.lock", errors[0]["error"])
        self.assertNotIn("listening", p.stderr)
        # the first one is untouched and still serving
        self.assertTrue(srv.running())
        self.assertEqual(srv.request("GET", "/health").status, 200)
        self.assertEqual(sorted(os.listdir(srv.data_dir)), before)
        with open(lock) as f:
            self.assertEqual(f.read().strip(), str(srv.pid))

    def test_offline_keys_work_beside_a_server_and_migrate_store_refuses(self):
        srv = self.start_server()
        tenant = unique_tenant("lock")
        p = run_cli("keys", "create", "--data-dir", srv.data_dir, "--tenant", tenant,
                    "--scopes", "ingest,read")
        self.assertEqual(p.returncode, 0, p.stderr)
        key = register_secret(p.stdout.strip())
        self.assertEqual(srv.request("GET", "/v1/events", key=key).status, 200)
        kid = [l.split()[0] for l in run_cli("keys", "list", "--data-dir", srv.data_dir,
                                             "--tenant", tenant).stdout.splitlines()[1:]]
        self.assertEqual(len(kid), 1)
        p = run_cli("keys", "revoke", "--data-dir", srv.data_dir, kid[0])
        self.assertEqual(p.returncode, 0, p.stderr)
        deadline = time.monotonic() + 6
        while srv.request("GET", "/v1/events", key=key).status != 401:
            self.assertLess(time.monotonic(), deadline, "the offline revocation was not seen")
            time.sleep(0.05)

        # migrate-store must be alone: refused (before any connection to the
        # target, which does not exist), naming the server's PID.
        p = run_cli("migrate-store", "--data-dir", srv.data_dir,
                    "--postgres-url", "postgresql://nobody@127.0.0.1:1/none")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("in use by PID %d" % srv.pid, p.stderr)
        self.assertIn("stop `triggers serve`", p.stderr)
        self.assertEqual(srv.request("GET", "/health").status, 200)

    def test_lock_is_released_by_any_exit(self):
        srv = self.start_server()
        first = srv.pid
        srv.kill9()  # the kernel drops the flock with the process
        srv.start()
        self.assertNotEqual(srv.pid, first)
        with open(os.path.join(srv.data_dir, "triggers.lock")) as f:
            self.assertEqual(f.read().strip(), str(srv.pid))
        self.assertEqual(srv.stop(), 0)
        srv.start()  # and after a clean stop
        self.assertEqual(srv.request("GET", "/health").status, 200)


# =========================================================================
# 3. Typos that create stores
# =========================================================================
@skip_on_postgres("the data directory is the store on SQLite only")
class MissingStoreTests(OperatorCase):
    def test_reading_commands_refuse_a_missing_data_dir(self):
        tmp = self.tmpdir()
        missing = os.path.join(tmp, "nonexistent", "x")
        for args in (["keys", "list"], ["keys", "revoke", "key_01ARZ3NDEKTSV4RRFFQ69G5FAV"],
                     ["keys", "create", "--tenant", "t", "--scopes", "read"],
                     ["migrate-store", "--postgres-url", "postgresql://nobody@127.0.0.1:1/x"]):
            with self.subTest(args=args):
                p = run_cli(*(args + ["--data-dir", missing]))
                self.assertNotEqual(p.returncode, 0, p.stderr)
                self.assertIn(missing, p.stderr)
                self.assertEqual(os.listdir(tmp), [], "something was created")

    def test_reading_commands_refuse_a_data_dir_without_a_store(self):
        empty = os.path.join(self.tmpdir(), "empty")
        os.makedirs(empty)
        os.chmod(empty, 0o755)
        for args in (["keys", "list"], ["keys", "revoke", "key_01ARZ3NDEKTSV4RRFFQ69G5FAV"]):
            with self.subTest(args=args):
                p = run_cli(*(args + ["--data-dir", empty]))
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn("no Triggers store at %s/triggers.db" % empty, p.stderr)
                self.assertEqual(os.listdir(empty), [])
                self.assertEqual(mode(empty), 0o755, "a refused command changed the directory")

    def test_keys_create_makes_a_store_only_in_an_existing_dir(self):
        d = os.path.join(self.tmpdir(), "d")
        os.makedirs(d)
        p = run_cli("keys", "create", "--data-dir", d, "--tenant", "early", "--scopes", "read")
        self.assertEqual(p.returncode, 0, p.stderr)
        register_secret(p.stdout.strip())
        self.assertIn("created a new, empty store at %s/triggers.db" % d, p.stderr)
        p = run_cli("keys", "list", "--data-dir", d)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(p.stdout.splitlines()), 2)  # the header and one key
        p = run_cli("keys", "create", "--data-dir", d, "--tenant", "early", "--scopes", "read")
        self.assertEqual(p.returncode, 0, p.stderr)
        register_secret(p.stdout.strip())
        self.assertNotIn("created a new", p.stderr)

    def test_serve_on_a_busy_port_creates_nothing(self):
        tmp = self.tmpdir()
        busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        listen = "127.0.0.1:%d" % busy.getsockname()[1]
        fresh = os.path.join(tmp, "new", "data")
        p = self.serve_once(fresh, listen=listen)
        self.assertEqual(p.returncode, 1, p.stderr)
        errors = [o for o in json_lines(p.stderr) if o.get("level") == "error"]
        self.assertEqual([o["msg"] for o in errors], ["cannot listen"], p.stderr)
        self.assertEqual(os.listdir(tmp), [], "serve created files before it had its port")
        # an existing, empty data dir stays empty too (no admin.key, no triggers.db)
        existing = os.path.join(tmp, "existing")
        os.makedirs(existing)
        p = self.serve_once(existing, listen=listen)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(os.listdir(existing), [])

    def test_serve_creates_the_data_dir(self):
        srv = self.start_with_umask(0o022, admin_key=False)
        self.assertTrue(os.path.exists(os.path.join(srv.data_dir, "triggers.db")))
        self.assertTrue(srv.admin_key)
        self.assertEqual(srv.request("GET", "/v1/keys", key=srv.admin_key).status, 200)


# =========================================================================
# 4. File modes
# =========================================================================
@skip_on_postgres("the SQLite files are what is checked")
class ModeTests(OperatorCase):
    def check_umask(self, umask):
        srv = self.start_with_umask(umask, admin_key=False)
        key = make_key(srv, unique_tenant("modes"), ["ingest", "manage"])["key"]
        r = srv.request("POST", "/v1/subscriptions", {"url": "https://93.184.215.14/hook",
                                                      "event_types": ["never.ever"]}, key=key)
        self.assertStatus(r, 201)
        register_secret(r.json["secret"])
        names = set(os.listdir(srv.data_dir))
        self.assertTrue({"triggers.db", "admin.key", "triggers.lock"} <= names, names)
        self.assertNoLooseModes(srv.data_dir, "umask %04o, running" % umask)
        # an offline command under the same umask leaves no loose file either
        old = os.umask(umask)
        try:
            p = run_cli("keys", "create", "--data-dir", srv.data_dir, "--tenant", "m",
                        "--scopes", "read")
        finally:
            os.umask(old)
        self.assertEqual(p.returncode, 0, p.stderr)
        register_secret(p.stdout.strip())
        self.assertNoLooseModes(srv.data_dir, "umask %04o, after keys create" % umask)
        self.assertEqual(srv.stop(), 0)
        self.assertNoLooseModes(srv.data_dir, "umask %04o, stopped" % umask)
        self.assertIsNone(srv.wait_log(lambda o: o.get("msg") == "data directory permissions",
                                       timeout=0))

    def test_umask_022(self):
        self.check_umask(0o022)

    def test_umask_000(self):
        self.check_umask(0o000)

    def test_loose_modes_of_our_own_dir_are_tightened(self):
        srv = self.start_server(admin_key=False)
        srv.stop()
        os.chmod(srv.data_dir, 0o755)
        for name in ("triggers.db", "admin.key", "triggers.lock"):
            os.chmod(os.path.join(srv.data_dir, name), 0o644)
        srv.start()
        self.assertNoLooseModes(srv.data_dir, "after a start on loose modes")
        lines = [o for o in srv.log_json() if o.get("msg") == "data directory permissions"]
        self.assertEqual({o["level"] for o in lines}, {"warn"}, lines)
        warned = [o.get("detail", "") for o in lines]
        self.assertTrue(any("had mode 0755" in w and "0700" in w for w in warned), warned)
        for name in ("triggers.db", "admin.key", "triggers.lock"):
            self.assertTrue(any(name in w and "had mode 0644" in w for w in warned),
                            (name, warned))

    def test_a_shared_dir_is_left_alone_with_a_warning(self):
        srv = self.start_server(start=False)
        os.chmod(srv.data_dir, 0o755)
        with open(os.path.join(srv.data_dir, "notes.txt"), "w") as f:
            f.write("not Triggers'\n")
        srv.start()
        self.assertEqual(mode(srv.data_dir), 0o755)
        warned = [o.get("detail", "") for o in srv.log_json()
                  if o.get("msg") == "data directory permissions"]
        self.assertEqual(len(warned), 1, warned)
        self.assertIn("has mode 0755", warned[0])
        self.assertIn("make it 0700", warned[0])
        for name in ("triggers.db", "triggers.lock"):
            self.assertEqual(mode(os.path.join(srv.data_dir, name)), 0o600, name)


# =========================================================================
# 5. Trailing-dot hosts
# =========================================================================
class TrailingDotTests(OperatorCase):
    def test_trailing_dot_hosts_are_refused_without_the_flag(self):
        srv = self.start_server()
        key = make_key(srv, unique_tenant("dot"), ["read", "manage"])["key"]
        urls = ["http://localhost./hook", "http://LOCALHOST.:9/hook", "http://127.0.0.1./h",
                "http://127.0.0.1.:9/h", "http://169.254.169.254./latest/meta-data",
                "http://10.1.2.3./h", "http://localhost../h", "http://127.0.0.1../h"]
        for url in urls:
            with self.subTest(url=url):
                r = srv.request("POST", "/v1/subscriptions", {"url": url}, key=key)
                self.assertError(r, 400, "validation_error", mentions="url")
        self.assertEqual(srv.request("GET", "/v1/subscriptions", key=key).json["data"], [])
        r = srv.request("POST", "/v1/subscriptions",
                        {"url": "https://93.184.215.14/hook", "event_types": ["never.ever"]},
                        key=key)
        self.assertStatus(r, 201)
        register_secret(r.json["secret"])
        r = srv.request("PATCH", "/v1/subscriptions/" + r.json["id"],
                        {"url": "http://localhost.:9/x"}, key=key)
        self.assertError(r, 400, "validation_error", mentions="url", msg="PATCH")

    def test_trailing_dot_is_accepted_with_the_flag(self):
        srv = self.start_server(args=["--allow-private-destinations"])
        key = make_key(srv, unique_tenant("dot"), ["manage"])["key"]
        r = srv.request("POST", "/v1/subscriptions", {"url": "http://localhost.:9/hook"}, key=key)
        self.assertStatus(r, 201)
        register_secret(r.json["secret"])
        self.assertEqual(r.json["url"], "http://localhost.:9/hook")


if __name__ == "__main__":
    unittest.main()
