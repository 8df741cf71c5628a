"""A smoke run of an installed `triggers` binary (standard library only).

    python3 tests/packaging/smoke.py BIN [-- EXTRA SERVE ARGS]

In a fresh temporary data directory: `triggers keys create` makes a key
offline, `triggers serve --listen 127.0.0.1:0` starts, GET /health answers
200, POST /v1/events with the key gets 202 and GET /v1/events returns the
event, SIGTERM stops the server with exit 0. Used by tests/packaging (the
installed prefix, the extracted .deb) and by scripts/check-portable (the
build on Debian 13). Prints one line per step; exits 1 on the first failure.
"""

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 30


class SmokeError(AssertionError):
    pass


def _request(port, method, path, key=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = "Bearer " + key
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def _wait_listening(proc, err_path):
    """The port from the server's `listening` log line (JSON on stderr)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        with open(err_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict) and obj.get("msg") == "listening" and obj.get("addr"):
                    return int(str(obj["addr"]).rpartition(":")[2])
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    with open(err_path, encoding="utf-8", errors="replace") as f:
        raise SmokeError("no 'listening' line (exit status %s); stderr:\n%s" % (proc.poll(), f.read()))


def run(binary, extra_args=(), log=print, env=None):
    """Runs the smoke sequence against `binary`; raises SmokeError on a failure."""
    work = tempfile.mkdtemp(prefix="triggers-smoke-")
    data = os.path.join(work, "data")
    os.mkdir(data, 0o700)
    env = dict(env if env is not None else os.environ)
    for k in list(env):
        if k.startswith("TRIGGERS_"):
            del env[k]
    proc = None
    try:
        v = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=10, env=env)
        if v.returncode != 0:
            raise SmokeError("triggers version exited %d: %s" % (v.returncode, v.stderr))
        log("version: " + v.stdout.strip())

        k = subprocess.run([binary, "keys", "create", "--data-dir", data, "--tenant", "smoke",
                            "--scopes", "ingest,read"], capture_output=True, text=True,
                           timeout=30, env=env)
        if k.returncode != 0 or not k.stdout.strip():
            raise SmokeError("keys create exited %d: %s" % (k.returncode, k.stderr))
        key = k.stdout.strip()
        log("keys create: a key for tenant smoke")

        err_path = os.path.join(work, "serve.err")
        with open(err_path, "w") as err:
            proc = subprocess.Popen([binary, "serve", "--data-dir", data, "--listen", "127.0.0.1:0",
                                     *extra_args], stdout=subprocess.DEVNULL, stderr=err, env=env)
        port = _wait_listening(proc, err_path)
        log("serve: listening on 127.0.0.1:%d" % port)

        status, body = _request(port, "GET", "/health")
        if status != 200:
            raise SmokeError("GET /health: %d %s" % (status, body))
        log("GET /health: 200 " + body.strip())

        event = {"type": "smoke.checked", "data": {"n": 1}}
        status, body = _request(port, "POST", "/v1/events", key, event)
        if status != 202:
            raise SmokeError("POST /v1/events: %d %s" % (status, body))
        event_id = json.loads(body).get("id")
        log("POST /v1/events: 202 id %s" % event_id)

        status, body = _request(port, "GET", "/v1/events?limit=10", key)
        listed = json.loads(body).get("data", []) if status == 200 else []
        if status != 200 or [e.get("id") for e in listed] != [event_id]:
            raise SmokeError("GET /v1/events: %d %s" % (status, body))
        log("GET /v1/events: 200, the event is there")

        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=STOP_TIMEOUT_S)
        if code != 0:
            raise SmokeError("serve exited %d after SIGTERM" % code)
        log("SIGTERM: exit 0")
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    extra = argv[3:] if len(argv) > 2 and argv[2] == "--" else argv[2:]
    try:
        run(argv[1], extra, log=lambda s: print("smoke: " + s, flush=True))
    except (SmokeError, OSError, subprocess.SubprocessError, ValueError) as e:
        print("smoke: FAILED: %s" % e, file=sys.stderr)
        return 1
    print("smoke: passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
