"""Black-box test harness for the Triggers server.

Standard library only. The binary comes from $TRIGGERS_BIN, else
<repo>/build/triggers. Every server runs in its own temporary directory:

    <tmp>/data            --data-dir (unless one is given)
    <tmp>/stderr.N.log    stderr of the N-th start (one file per start)
    <tmp>/stdout.N.log    stdout of the N-th start

The store is the embedded SQLite one, or PostgreSQL when
TRIGGERS_TEST_STORE=postgres (the ctest registrations integration_pg_*): each
Server then gets a fresh database of the private server in
$TRIGGERS_TEST_PG_DIR (see pg.py), kept across its restarts and dropped when
it is closed; Server(share_with=other) is a second node on other's database.
--data-dir is passed on both stores (admin.key is written there), and
run_cli() points `triggers keys ... --data-dir D` at the store of the Server
whose data dir is D.

Processes are always stopped by PID (never by name). Set TRIGGERS_IT_KEEP=1 to
keep the temporary directories (and databases) for debugging.
"""

import atexit
import collections
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import tempfile
import time
import unittest

import pg

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID = "[0-9A-HJKMNP-TV-Z]{26}"

# Patterns of the public formats (ULIDs compared case-insensitively).
KEY_SECRET_RE = re.compile(r"^trg_[0-9A-Za-z]{43}$")
KEY_IN_TEXT_RE = re.compile(r"trg_[0-9A-Za-z]{43}")
KEY_ID_RE = re.compile(r"^key_" + _ULID + "$", re.I)
EVT_ID_RE = re.compile(r"^evt_" + _ULID + "$", re.I)
REQ_ID_RE = re.compile(r"^req_" + _ULID + "$", re.I)
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

START_DEADLINE_S = 10.0
POLL_S = 0.01

# Every plain key the tests have seen (admin keys, API-created keys, CLI keys).
# The log scan checks that none of them ever shows up on stderr.
KNOWN_SECRETS = set()

_LIVE = {}  # pid -> Popen, for the atexit safety net

# "sqlite" or "postgres": the store of every Server that is not told otherwise.
STORE = os.environ.get("TRIGGERS_TEST_STORE") or "sqlite"
if STORE not in ("sqlite", "postgres"):
    raise RuntimeError("TRIGGERS_TEST_STORE must be sqlite or postgres, not %r" % STORE)
POSTGRES = STORE == "postgres"

_DATABASES = {}    # name -> _Database not dropped yet
_STORE_ENV = {}    # abspath of a --data-dir -> env that points the CLI at its store


@atexit.register
def _drop_leftover_databases():
    # Registered before _kill_leftovers, so it runs after it (atexit is LIFO).
    if os.environ.get("TRIGGERS_IT_KEEP"):
        return
    for name in list(_DATABASES):
        pg.drop_database(name)
    _DATABASES.clear()


@atexit.register
def _kill_leftovers():
    for pid, proc in list(_LIVE.items()):
        if proc.poll() is None:
            try:
                os.kill(pid, signal.SIGKILL)
                proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
    _LIVE.clear()


def binary_path():
    return os.environ.get("TRIGGERS_BIN") or os.path.join(REPO, "build", "triggers")


def gen_key():
    """A random, well-formed key ("trg_" + 43 base62 chars)."""
    return "trg_" + "".join(secrets.choice(BASE62) for _ in range(43))


def fake_ulid(ts_ms=None):
    """A syntactically valid ULID (uppercase Crockford base32)."""
    if ts_ms is None:
        ts_ms = int(time.time() * 1000)
    value = (ts_ms << 80) | secrets.randbits(80)
    out = []
    for _ in range(26):
        out.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(out))


def unique_tenant(prefix="t"):
    return "%s-%s" % (prefix, secrets.token_hex(6))


def clean_env(extra=None):
    """The test process environment without any TRIGGERS_* variable, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGERS_")}
    if extra:
        env.update({k: str(v) for k, v in extra.items()})
    return env


def skip_on_postgres(reason):
    """Decorator: skip a test that only means something on the embedded store."""
    return unittest.skipIf(POSTGRES, "SQLite only: " + reason)



def ensure_npm_package(prefix, spec, purpose):
    """Installs the npm package `spec` (e.g. "standardwebhooks@1") under
    `prefix` once, and returns the node binary. Raises unittest.SkipTest only
    when node or npm are missing (`purpose` says what is skipped then); a
    failed install fails the test."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        raise unittest.SkipTest("node/npm not installed: %s is skipped" % purpose)
    name = spec.rsplit("@", 1)[0] if spec.rfind("@") > 0 else spec
    marker = os.path.join(prefix, "node_modules", name, "package.json")
    if not os.path.exists(marker):
        os.makedirs(prefix, exist_ok=True)
        p = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", prefix, spec],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=300, cwd=prefix)
        if p.returncode != 0 or not os.path.exists(marker):
            raise AssertionError("npm install %s failed (%d): %s"
                                 % (spec, p.returncode, (p.stdout + p.stderr)[-2000:]))
    return node

def record_exchange(method, path, headers, body, resp):
    """With TRIGGERS_IT_RECORD=<file> set, appends one JSON line per request
    made through Server.request: method, path (with the query), request
    headers and body, status, response headers and body (text; bytes that
    are not UTF-8 are escaped). tests/openapi/validate_traffic.mjs checks
    such a file against docs/openapi.yaml (test_openapi.py)."""
    target = os.environ.get("TRIGGERS_IT_RECORD")
    if not target:
        return

    def text(b):
        return None if b is None else b.decode("utf-8", "backslashreplace")

    line = json.dumps({
        "method": method, "path": path,
        "request_headers": {str(k).lower(): v.decode("latin-1") if isinstance(v, bytes) else str(v)
                            for k, v in headers.items()},
        "request_body": text(body),
        "status": resp.status, "response_headers": resp.headers,
        "response_body": text(resp.raw),
    })
    with open(target, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def register_secret(secret):
    if secret:
        KNOWN_SECRETS.add(secret)
    return secret


class ServerError(RuntimeError):
    pass


Response = collections.namedtuple("Response", "status headers json raw")


def _lower_headers(pairs):
    out = {}
    for k, v in pairs:
        k = k.lower()
        out[k] = v if k not in out else out[k] + ", " + v
    return out


def encode_body(body):
    if body is None:
        return None
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


class _Database:
    """A database of the private PostgreSQL server, shared by the Servers that
    use it (a node and the second nodes sharing it); dropped when the last of
    them is closed."""

    def __init__(self):
        self.name = pg.create_database()
        self.url = pg.database_url(self.name)
        self.users = 0
        _DATABASES[self.name] = self

    def acquire(self):
        self.users += 1
        return self

    def release(self):
        self.users -= 1
        if self.users > 0 or _DATABASES.pop(self.name, None) is None:
            return
        if os.environ.get("TRIGGERS_IT_KEEP"):
            print("kept database", self.url)
        else:
            pg.drop_database(self.name)


class Server:
    """One `triggers serve` process (restartable on the same data dir and,
    on PostgreSQL, the same database)."""

    def __init__(self, args=(), env=None, admin_key=True, data_dir=None, start=True,
                 listen="127.0.0.1:0", store=None, share_with=None):
        """admin_key: True = generate one and pass it in TRIGGERS_ADMIN_KEY,
        a string = use that, False/None = do not set it (the server then creates
        <data-dir>/admin.key, which is read into self.admin_key after start).
        store: "sqlite" or "postgres" (default: $TRIGGERS_TEST_STORE, else sqlite).
        On postgres a fresh database is made now (so the CLI can use it before
        start) and the server gets --store postgres --postgres-url <it>. When
        args hold --store themselves, the test chose: no store flag is added.
        share_with: a postgres Server whose database this one uses too (another
        node: its own data dir and port); admin_key=True then means the other
        node's admin key."""
        self.bin = binary_path()
        self.args = list(args)
        self.env = dict(env or {})
        self.listen = listen
        self.store = store or (share_with.store if share_with else STORE)
        if _flag_value(self.args, "--store") is not None:
            self.store = "explicit"  # e.g. migrate-store tests: args name the store
        if self.store not in ("sqlite", "postgres", "explicit"):
            raise ServerError("store must be sqlite or postgres, not %r" % self.store)
        if share_with is not None and (self.store != "postgres" or share_with.store != "postgres"):
            raise ServerError("share_with needs two postgres servers")
        self.database = None
        self.tmpdir = tempfile.mkdtemp(prefix="triggers-it-")
        self.data_dir = data_dir or os.path.join(self.tmpdir, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        if share_with is not None and admin_key is True:
            admin_key = share_with.admin_key if share_with.set_admin_env else None
            self.set_admin_env = share_with.set_admin_env
            self.admin_key = share_with.admin_key
        else:
            if admin_key is True:
                admin_key = gen_key()
            self.set_admin_env = bool(admin_key)
            self.admin_key = register_secret(admin_key) if admin_key else None
        self.proc = None
        self.host = None
        self.port = None
        self.addr = None
        self.starts = 0
        self.stderr_paths = []
        self.last_exit_code = None
        self.last_stop_forced = False
        self._log_offsets = {}
        self._closed = False
        try:
            if self.store == "postgres":
                try:
                    self.database = (share_with.database if share_with else _Database()).acquire()
                except pg.PgError as e:
                    raise ServerError("no database for the server: %s" % e)
                _STORE_ENV[os.path.abspath(self.data_dir)] = {
                    "TRIGGERS_STORE": "postgres", "TRIGGERS_POSTGRES_URL": self.database.url}
            if start:
                self.start()
        except BaseException:
            self.close()
            raise

    # ----------------------------------------------------------- lifecycle
    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def postgres_url(self):
        return self.database.url if self.database else None

    def store_args(self):
        """The store flags of this server, for `triggers serve` and `triggers keys`."""
        args = ["--data-dir", self.data_dir]
        if self.database is not None:
            args += ["--store", "postgres", "--postgres-url", self.database.url]
        return args

    def command(self):
        return [self.bin, "serve", "--listen", self.listen] + self.store_args() + self.args

    def start(self):
        if self.running():
            raise ServerError("already running (pid %d)" % self.proc.pid)
        if not os.path.exists(self.bin):
            raise ServerError("binary not found: %s (set TRIGGERS_BIN)" % self.bin)
        self.starts += 1
        err_path = os.path.join(self.tmpdir, "stderr.%d.log" % self.starts)
        out_path = os.path.join(self.tmpdir, "stdout.%d.log" % self.starts)
        self.stderr_paths.append(err_path)
        env = clean_env(self.env)
        if self.set_admin_env:
            env["TRIGGERS_ADMIN_KEY"] = self.admin_key
        with open(err_path, "wb") as err, open(out_path, "wb") as out:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=err, env=env, cwd=self.tmpdir,
                                         start_new_session=True)
        _LIVE[self.proc.pid] = self.proc
        self.host = self.port = self.addr = None
        try:
            self._wait_listening(err_path)
        except BaseException:
            self.kill9()
            raise
        if not self.set_admin_env:
            path = os.path.join(self.data_dir, "admin.key")
            if os.path.exists(path):
                with open(path) as f:
                    self.admin_key = register_secret(f.read().strip())
        return self

    def _wait_listening(self, err_path):
        deadline = time.monotonic() + START_DEADLINE_S
        offset = 0
        pending = b""
        while True:
            with open(err_path, "rb") as f:
                f.seek(offset)
                chunk = f.read()
            offset += len(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict) and obj.get("msg") == "listening" and obj.get("addr"):
                    host, _, port = str(obj["addr"]).rpartition(":")
                    self.host = host.strip("[]") or "127.0.0.1"
                    self.port = int(port)
                    self.addr = obj["addr"]
                    return
            rc = self.proc.poll()
            if rc is not None:
                raise ServerError("server exited with %s before listening; stderr:\n%s"
                                  % (rc, self._tail(err_path)))
            if time.monotonic() > deadline:
                raise ServerError("no 'listening' log line within %.0f s; stderr:\n%s"
                                  % (START_DEADLINE_S, self._tail(err_path)))
            time.sleep(POLL_S)

    @staticmethod
    def _tail(path, n=4000):
        try:
            with open(path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return "<no stderr>"

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Send sig (SIGTERM), wait up to timeout, then SIGKILL. Returns the exit
        code (negative = killed by that signal)."""
        if self.proc is None:
            return self.last_exit_code
        self.last_stop_forced = False
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.last_stop_forced = True
                try:
                    os.kill(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        return self._reap()

    def kill9(self):
        if self.proc is None:
            return self.last_exit_code
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        return self._reap()

    def _reap(self):
        _LIVE.pop(self.proc.pid, None)
        self.last_exit_code = self.proc.returncode
        return self.last_exit_code

    def restart(self, args=None, env=None):
        """Stop (SIGTERM) if running, then start again on the same data dir."""
        if self.running():
            self.stop()
        if args is not None:
            self.args = list(args)
        if env is not None:
            self.env = dict(env)
        return self.start()

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
        if not self._closed:
            self._closed = True
            if self.database is not None:
                _STORE_ENV.pop(os.path.abspath(self.data_dir), None)
                self.database.release()
            if os.environ.get("TRIGGERS_IT_KEEP"):
                print("kept", self.tmpdir)
            else:
                shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ------------------------------------------------------------- requests
    def request(self, method, path, body=None, headers=None, key=None, timeout=10.0):
        """One request on a fresh connection. body: dict/list -> JSON, str/bytes raw.
        headers: a value of None removes a default header (e.g. Content-Type).
        key: sent as Authorization: Bearer <key>.
        Returns Response(status, headers lowercased, parsed JSON or None, raw bytes)."""
        data = encode_body(body)
        hdrs = {}
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        if key is not None:
            hdrs["Authorization"] = "Bearer " + key
        for k, v in (headers or {}).items():
            for existing in [h for h in hdrs if h.lower() == k.lower()]:
                del hdrs[existing]
            if v is not None:
                hdrs[k] = v
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
            out = Response(resp.status, _lower_headers(resp.getheaders()), parse_json(raw), raw)
        finally:
            conn.close()
        record_exchange(method, path, hdrs, data, out)
        return out

    def connection(self, timeout=10.0):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    # ----------------------------------------------------------------- logs
    def _read_complete_lines(self, path, offset):
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except OSError:
            return [], offset
        end = data.rfind(b"\n")
        if end < 0:
            return [], offset
        return data[:end].split(b"\n"), offset + end + 1

    def log_raw_lines(self):
        """All complete stderr lines (bytes) of every start, oldest first."""
        out = []
        for path in self.stderr_paths:
            lines, _ = self._read_complete_lines(path, 0)
            out.extend(lines)
        return out

    def log_lines(self):
        return [l.decode("utf-8", "replace") for l in self.log_raw_lines()]

    def log_json(self):
        out = []
        for line in self.log_raw_lines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
        return out

    def wait_log(self, pred, timeout=5.0):
        """Poll until a log object satisfies pred; returns it or None."""
        deadline = time.monotonic() + timeout
        while True:
            for obj in self.log_json():
                if pred(obj):
                    return obj
            if time.monotonic() > deadline:
                return None
            time.sleep(POLL_S)

    def log_problems(self, new_only=True):
        """Problems in the complete stderr lines (only those not checked before
        when new_only): not UTF-8, not a JSON object, no time/level/msg, or a
        known plain key in the text."""
        problems = []
        for path in self.stderr_paths:
            start = self._log_offsets.get(path, 0) if new_only else 0
            lines, end = self._read_complete_lines(path, start)
            self._log_offsets[path] = end
            name = os.path.basename(path)
            for i, raw in enumerate(lines):
                where = "%s: %r" % (name, raw[:200])
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    problems.append("log line is not valid UTF-8: " + where)
                    continue
                try:
                    obj = json.loads(text)
                except ValueError:
                    problems.append("log line is not JSON: " + where)
                    obj = None
                if obj is not None:
                    if not isinstance(obj, dict):
                        problems.append("log line is not a JSON object: " + where)
                    else:
                        missing = [f for f in ("time", "level", "msg") if f not in obj]
                        if missing:
                            problems.append("log line lacks %s: %s" % (missing, where))
                if "whsec_" in text:
                    problems.append("a webhook secret appears in the log: " + name)
                leaked = {m for m in KEY_IN_TEXT_RE.findall(text) if m in KNOWN_SECRETS}
                leaked |= {s for s in KNOWN_SECRETS if s in text}
                if leaked:
                    problems.append("a plain API key appears in the log (%s...): %s"
                                    % (sorted(leaked)[0][:8], name))
        return problems


def _flag_value(args, flag):
    """The value of --flag in args ("--flag v" or "--flag=v"), or None."""
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a[len(flag) + 1:]
    return None


def fresh_pg_database(test):
    """A new, empty database on the private PostgreSQL server, dropped in the
    cleanup of test (a unittest.TestCase); returns its URL."""
    db = _Database().acquire()
    test.addCleanup(db.release)
    return db.url


def parse_json(raw):
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


# ---------------------------------------------------------------- key helpers
def make_key(server, tenant, scopes, name=None, key=None):
    """POST /v1/keys (with the admin key unless key is given). Returns the 201
    body (dict with "id", "key", ...); the plain key is registered as a secret."""
    body = {"tenant": tenant, "scopes": list(scopes)}
    if name is not None:
        body["name"] = name
    r = server.request("POST", "/v1/keys", body, key=key or server.admin_key)
    if r.status != 201 or not isinstance(r.json, dict) or "key" not in r.json:
        raise AssertionError("POST /v1/keys failed: %s %r" % (r.status, r.raw[:500]))
    register_secret(r.json["key"])
    return r.json


def store_env(data_dir):
    """TRIGGERS_STORE/TRIGGERS_POSTGRES_URL of the postgres Server whose
    --data-dir is data_dir ({} for any other directory)."""
    return dict(_STORE_ENV.get(os.path.abspath(str(data_dir)), {}))


def run_cli(*args, env=None, timeout=30):
    """Run `triggers <args...>` (e.g. run_cli("keys", "list", "--data-dir", d)).
    With "--data-dir D" where D is a postgres Server's data dir, the CLI gets
    that server's database too (TRIGGERS_STORE, TRIGGERS_POSTGRES_URL)."""
    args = [str(a) for a in args]
    extra = {}
    if "--data-dir" in args[:-1]:
        extra = store_env(args[args.index("--data-dir") + 1])
    extra.update(env or {})
    return subprocess.run([binary_path()] + args, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, env=clean_env(extra), timeout=timeout)


def cli_create_key(data_dir, tenant, scopes, name=None):
    """`triggers keys create`; returns the plain key (line 1 of stdout)."""
    args = ["keys", "create", "--data-dir", data_dir, "--tenant", tenant,
            "--scopes", ",".join(scopes)]
    if name is not None:
        args += ["--name", name]
    p = run_cli(*args)
    if p.returncode != 0:
        raise AssertionError("keys create exited %d: %s" % (p.returncode, p.stderr[-2000:]))
    lines = p.stdout.splitlines()
    key = lines[0].strip() if lines else ""
    register_secret(key)
    return key


def cli_list_keys(data_dir, tenant=None):
    """`triggers keys list`; returns the stdout lines split on whitespace,
    without the header line (ID TENANT ...)."""
    args = ["keys", "list", "--data-dir", data_dir]
    if tenant:
        args += ["--tenant", tenant]
    p = run_cli(*args)
    if p.returncode != 0:
        raise AssertionError("keys list exited %d: %s" % (p.returncode, p.stderr[-2000:]))
    rows = [l.split() for l in p.stdout.splitlines() if l.strip()]
    if not rows or rows[0][0] != "ID":
        raise AssertionError("keys list printed no header: %r" % p.stdout[:200])
    return rows[1:]


# ------------------------------------------------------------------ raw socket
RawResponse = collections.namedtuple("RawResponse", "status reason headers body")


class RawConn:
    """A plain TCP connection for requests http.client refuses to send."""

    def __init__(self, server, timeout=5.0):
        self.sock = socket.create_connection((server.host, server.port), timeout=timeout)
        self.buf = b""
        self.eof = False

    def send(self, data):
        """sendall; returns False if the server already closed/reset."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            return False

    def _fill(self):
        if self.eof:
            return False
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError("connection closed in body")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _read_line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise EOFError("connection closed in chunked body")
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def read_response(self):
        """The next response, or None when the server closed (or reset) the
        connection before a complete status line and header block. Raises
        socket.timeout if it neither answers nor closes in time."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                return None
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise AssertionError("not an HTTP status line: %r" % lines[0])
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        pairs = [l.split(":", 1) if ":" in l else (l, "") for l in lines[1:]]
        headers = _lower_headers((k.strip(), v.strip()) for k, v in pairs)
        if status < 200 or status in (204, 304):
            body = b""
        elif "content-length" in headers:
            body = self._read_exact(int(headers["content-length"]))
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = b""
            while True:
                size = int(self._read_line().split(b";")[0].strip(), 16)
                if size == 0:
                    while self._read_line():
                        pass
                    break
                body += self._read_exact(size)
                self._read_exact(2)
        else:
            while self._fill():
                pass
            body, self.buf = self.buf, b""
        return RawResponse(status, reason, headers, body)

    def wait_closed(self, timeout=5.0):
        """True when the server closes the connection within timeout."""
        self.sock.settimeout(timeout)
        try:
            while self._fill():
                pass
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# ------------------------------------------------------------- base test case
class ServerTestCase(unittest.TestCase):
    """Gives each class one shared server (self.srv) started with
    server_args/server_env, and lets tests start their own with
    self.start_server(). In tearDown every server used by the test is checked:
    each new stderr line must be a JSON object with time/level/msg, and no
    known plain key may appear."""

    server_args = ()
    server_env = None
    shared_server = True

    @classmethod
    def setUpClass(cls):
        cls.srv = None
        if cls.shared_server:
            cls.srv = Server(args=cls.server_args, env=cls.server_env)
            cls.addClassCleanup(cls._final_log_check, cls.srv)

    @staticmethod
    def _final_log_check(srv):
        """Stop the shared server and scan the log lines no tearDown saw yet."""
        try:
            srv.stop()
            problems = srv.log_problems()
        finally:
            srv.close()
        if problems:
            raise AssertionError("log problems:\n  " + "\n  ".join(problems[:20]))

    def setUp(self):
        self._own_servers = []

    def start_server(self, **kw):
        """A server of this test (Server keywords: args, env, admin_key,
        data_dir, start, listen, store, share_with), stopped in tearDown."""
        s = Server(**kw)
        self._own_servers.append(s)
        self.addCleanup(s.close)  # safety net; tearDown stops it first
        return s

    def tearDown(self):
        problems = []
        for s in self._own_servers:
            if s.running():
                s.stop()
            problems += s.log_problems()
        if self.srv is not None:
            problems += self.srv.log_problems()
        if problems:
            self.fail("log problems:\n  " + "\n  ".join(problems[:20]))

    # -------------------------------------------------------------- helpers
    def assertError(self, resp, status, code, mentions=None, msg=None):
        """resp is a Response: status, the error body shape and request_id ==
        X-Request-Id; mentions: substring(s) one of which the message must contain."""
        ctx = "%s %r" % (msg or "", resp.raw[:300])
        self.assertEqual(resp.status, status, ctx)
        self.assertIn("application/json", resp.headers.get("content-type", ""), ctx)
        self.assertIsInstance(resp.json, dict, ctx)
        self.assertIn("error", resp.json, ctx)
        err = resp.json["error"]
        self.assertIsInstance(err, dict, ctx)
        self.assertEqual(err.get("code"), code, ctx)
        self.assertIsInstance(err.get("message"), str, ctx)
        self.assertTrue(err["message"], ctx)
        self.assertIsInstance(err.get("request_id"), str, ctx)
        self.assertTrue(err["request_id"], ctx)
        self.assertEqual(err["request_id"], resp.headers.get("x-request-id"), ctx)
        if mentions is not None:
            options = [mentions] if isinstance(mentions, str) else list(mentions)
            self.assertTrue(any(o.lower() in err["message"].lower() for o in options),
                            "message %r should mention %s %s" % (err["message"], options, msg or ""))
        return err

    def assertStatus(self, resp, status, msg=None):
        self.assertEqual(resp.status, status, "%s %r" % (msg or "", resp.raw[:300]))
        return resp.json
