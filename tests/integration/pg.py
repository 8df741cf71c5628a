"""The private PostgreSQL server of the tests (standard library only).

scripts/test-pg starts it (the ctest fixture "pg") and writes its URL to
$TRIGGERS_TEST_PG_DIR/url. This module makes and drops one database per test
server, and stops and restarts the whole server in place (same port, same
data) for the outage tests:

    name = create_database()           # t_<pid>_<n>_<hex>, empty
    url = database_url(name)           # postgresql://triggers@127.0.0.1:PORT/<name>
    drop_database(name)                # best effort, WITH (FORCE)
    pg_stop_server(); pg_start_server()

By hand: scripts/test-pg start build/pg, then
TRIGGERS_TEST_STORE=postgres TRIGGERS_TEST_PG_DIR=build/pg /usr/bin/python3 -m unittest ...
"""

import itertools
import os
import secrets
import subprocess
import time
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEST_PG = os.path.join(REPO, "scripts", "test-pg")
PG_BIN = os.environ.get("TRIGGERS_PG_BIN", "/usr/lib/postgresql/15/bin")
PSQL_TIMEOUT_S = 30

_counter = itertools.count(1)


class PgError(RuntimeError):
    pass


def pg_dir():
    """$TRIGGERS_TEST_PG_DIR, or None when the tests run without PostgreSQL."""
    d = os.environ.get("TRIGGERS_TEST_PG_DIR")
    return os.path.abspath(d) if d else None


def available():
    d = pg_dir()
    return bool(d) and os.path.exists(os.path.join(d, "url"))


def _require_dir():
    d = pg_dir()
    if not d:
        raise PgError("TRIGGERS_TEST_PG_DIR is not set (ctest sets it; by hand: "
                      "scripts/test-pg start build/pg; export TRIGGERS_TEST_PG_DIR=build/pg)")
    if not os.path.exists(os.path.join(d, "url")):
        raise PgError("no PostgreSQL server in %s (run: scripts/test-pg start %s)" % (d, d))
    return d


def base_url():
    """The URL of the maintenance database ("postgres") of the private server."""
    with open(os.path.join(_require_dir(), "url")) as f:
        return f.read().strip()


def database_url(name):
    """base_url() with the database name replaced by name."""
    parts = urllib.parse.urlsplit(base_url())
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def _psql_path():
    path = os.path.join(PG_BIN, "psql")
    return path if os.access(path, os.X_OK) else "psql"


def psql(sql, dbname="postgres", timeout=PSQL_TIMEOUT_S, check=True):
    """Run one SQL string with psql over TCP as user "triggers"; returns stdout
    (unaligned, tuples only). Raises PgError when check and it fails."""
    parts = urllib.parse.urlsplit(base_url())
    env = dict(os.environ, PGCONNECT_TIMEOUT="5")
    for k in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGSERVICE", "PGOPTIONS"):
        env.pop(k, None)
    cmd = [_psql_path(), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
           "-h", parts.hostname, "-p", str(parts.port), "-U", parts.username or "triggers",
           "-d", dbname, "-c", sql]
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        if check:
            raise PgError("psql timed out after %d s: %s" % (timeout, sql))
        return ""
    if p.returncode != 0 and check:
        raise PgError("psql exited %d on %r: %s" % (p.returncode, sql, p.stderr.strip()))
    return p.stdout


def create_database(prefix="t"):
    """Create an empty database with a unique name and return the name."""
    name = "%s_%d_%d_%s" % (prefix, os.getpid(), next(_counter), secrets.token_hex(3))
    psql('CREATE DATABASE "%s"' % name)
    return name


def drop_database(name):
    """Drop a database made by create_database, even with open connections.
    Best effort: returns False (and never raises) when it could not."""
    try:
        psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
        return True
    except (PgError, OSError):
        return False


def _script(cmd):
    p = subprocess.run(["bash", TEST_PG, cmd, _require_dir()], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise PgError("scripts/test-pg %s exited %d: %s"
                      % (cmd, p.returncode, (p.stdout + p.stderr)[-3000:]))
    return p.stdout


def pg_stop_server():
    """Stop the shared private server (fast shutdown), keeping its data and port.
    Every database of every test goes away with it until pg_start_server()."""
    _script("down")


def pg_start_server():
    """Start the server stopped by pg_stop_server() again: same port, same data.
    Returns once it accepts connections. Does nothing when it is running."""
    _script("up")


def pg_server_running():
    p = subprocess.run(["bash", TEST_PG, "status", _require_dir()], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60)
    return p.returncode == 0


class Session:
    """One interactive psql session, to hold a transaction open while the
    test drives the nodes (a late commit, a held row lock):

        with pg.Session(dbname) as s:
            s.run("BEGIN; SELECT ... FOR UPDATE")   # returns once it ran
            ...                                     # the nodes block on it
            s.run("COMMIT")
    """

    def __init__(self, dbname, timeout=PSQL_TIMEOUT_S):
        parts = urllib.parse.urlsplit(base_url())
        env = dict(os.environ, PGCONNECT_TIMEOUT="5")
        for k in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGSERVICE",
                  "PGOPTIONS"):
            env.pop(k, None)
        self.timeout = timeout
        self._n = itertools.count(1)
        self.proc = subprocess.Popen(
            [_psql_path(), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
             "-h", parts.hostname, "-p", str(parts.port), "-U", parts.username or "triggers",
             "-d", dbname],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, env=env)

    def run(self, sql):
        """Runs sql (one or more statements) and returns its output lines,
        once psql has run it all (an end marker is echoed after it)."""
        marker = "--done-%d--" % next(self._n)
        self.proc.stdin.write(sql.rstrip().rstrip(";") + ";\n\\echo " + marker + "\n")
        self.proc.stdin.flush()
        out = []
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise PgError("psql ended: %s" % "".join(out))
            if line.strip() == marker:
                return out
            out.append(line.rstrip("\n"))
        raise PgError("psql did not finish %r within %d s" % (sql, self.timeout))

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def waiting_on_locks(dbname):
    """How many sessions of dbname wait for a lock now."""
    out = psql("SELECT count(*) FROM pg_stat_activity WHERE datname='%s' AND "
               "wait_event_type='Lock'" % dbname)
    return int(out.strip() or 0)
