"""A real webhook receiver for the delivery tests (standard library only).

A threaded HTTP/1.1 server on 127.0.0.1 (port 0) whose answer is chosen per
request path and can be changed at runtime:

    rcv = Receiver().start()           # or: with Receiver() as rcv: ...
    url = rcv.url("/a")                # http://127.0.0.1:<port>/a
    rcv.ok("/a")                       # 200 (the default for any path)
    rcv.error("/b", 500)               # always 500
    rcv.retry_after("/c", "1", 429, times=1)   # 429 + Retry-After once, then 200
    rcv.fail_first("/d", 2)            # 500, 500, then 200
    rcv.hang("/e", 5)                  # sleep 5 s (woken by stop()), close without answering
    rcv.reset("/f")                    # SO_LINGER 0 close without answering (RST)
    rcv.redirect("/g", rcv.url("/h"))  # 302 Location: ...
    rcv.ok("/i", delay=0.5)            # answer 200 after 0.5 s

Every request is recorded (method, path, lowercased headers, raw body bytes,
arrival time.monotonic() and time.time(), and what was answered) before the
behaviour runs; answer_started_at(req) / answered_at(req) tell when its answer
began to be written and when it was written. wait_for(path, count, timeout) waits on a condition variable
with a deadline; there are no fixed sleeps. stop() wakes every hanging handler,
shuts down every open connection and closes the listening socket.
"""

import collections
import http.server
import socket
import socketserver
import struct
import threading
import time

MAX_HANG_S = 60.0  # a hang never lasts longer than this, whatever was asked

Request = collections.namedtuple(
    "Request", "method path headers body t wall seq answer")


class _Behaviour:
    __slots__ = ("kind", "status", "headers", "body", "delay", "times", "then", "count")

    def __init__(self, kind, status=200, headers=None, body=b"", delay=0.0, times=None,
                 then=None):
        self.kind = kind          # "respond" | "hang" | "reset"
        self.status = status
        self.headers = dict(headers or {})
        self.body = body if isinstance(body, bytes) else str(body).encode()
        self.delay = float(delay)
        self.times = times        # None = always; N = only the first N requests
        self.then = then          # behaviour after `times` requests (None = plain 200)
        self.count = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive connection is closed after this

    def log_message(self, *args):  # keep the test output clean
        pass

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            body = b""
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline(3)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _handle(self):
        rcv = self.server.receiver
        body = self._read_body()
        headers = {}
        for k, v in self.headers.items():
            k = k.lower()
            headers[k] = v if k not in headers else headers[k] + ", " + v
        path = self.path
        beh = rcv._pick(path)
        seq = rcv._record(self.command, path, headers, body, beh)
        if beh.kind == "hang":
            rcv._stopping.wait(min(beh.delay, MAX_HANG_S))
            self.close_connection = True
            return
        if beh.kind == "reset":
            self._reset()
            return
        if beh.delay > 0:
            rcv._stopping.wait(min(beh.delay, MAX_HANG_S))
        rcv._mark_answered(seq, started=True)
        try:
            self.send_response(beh.status)
            for k, v in beh.headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(beh.body)))
            if "content-type" not in {k.lower() for k in beh.headers}:
                self.send_header("Content-Type", "text/plain")
            self.end_headers()
            if beh.body:
                self.wfile.write(beh.body)
            rcv._mark_answered(seq)
        except OSError:
            self.close_connection = True

    def _reset(self):
        """Close with SO_LINGER 0: the peer gets an RST, no response."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.rfile.close()  # drop the makefile reference so close() is real
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _handle

    def handle(self):
        self.server.receiver._track(self.connection, True)
        try:
            super().handle()
        except (OSError, ValueError):
            pass
        finally:
            self.server.receiver._track(self.connection, False)

    def finish(self):
        try:
            super().finish()
        except (OSError, ValueError):
            pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # listen() backlog: the default 5 drops SYNs when dozens of connections
    # open at once (the client retries after 1 s, 3 s, ...), which would
    # look like the sender holding them back.
    request_queue_size = 1024

    def handle_error(self, request, client_address):  # no tracebacks on stderr
        pass


class Receiver:
    handler_class = _Handler  # a subclass may answer with its own

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self.port = None
        self._httpd = None
        self._thread = None
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._behaviours = {}
        self._requests = []
        self._conns = set()
        self._stopping = threading.Event()
        self._seq = 0
        self._answered = {}
        self._answer_started = {}

    # ------------------------------------------------------------ lifecycle
    def start(self):
        self._httpd = _Server((self.host, 0), self.handler_class)
        self._httpd.receiver = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="receiver-%d" % self.port, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)
        self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def url(self, path):
        if not path.startswith("/"):
            path = "/" + path
        return "http://%s:%d%s" % (self.host, self.port, path)

    # ----------------------------------------------------------- behaviours
    def _set(self, path, beh):
        with self._lock:
            self._behaviours[path] = beh

    def ok(self, path, status=200, body=b'{"ok":true}', headers=None, delay=0.0):
        """Answer status (200) with body, after delay seconds."""
        self._set(path, _Behaviour("respond", status, headers or {"Content-Type": "application/json"},
                                   body, delay))

    def error(self, path, status=500, body=b"internal error", headers=None):
        """Always answer status (500)."""
        self._set(path, _Behaviour("respond", status, headers, body))

    def retry_after(self, path, value="1", status=429, times=None, body=b"slow down"):
        """Answer status (429/503) with Retry-After: value; after `times` of them, 200."""
        self._set(path, _Behaviour("respond", status, {"Retry-After": str(value)}, body,
                                   times=times))

    def fail_first(self, path, n, status=500, headers=None, body=b"failing"):
        """The first n requests get status (500), the rest 200."""
        self._set(path, _Behaviour("respond", status, headers, body, times=n))

    def hang(self, path, seconds):
        """Sleep (bounded by MAX_HANG_S, cut short by stop()), then close without answering."""
        self._set(path, _Behaviour("hang", delay=seconds))

    def reset(self, path):
        """Close the connection with an RST, without answering."""
        self._set(path, _Behaviour("reset"))

    def redirect(self, path, location, status=302):
        self._set(path, _Behaviour("respond", status, {"Location": location}, b""))

    def _pick(self, path):
        with self._lock:
            beh = self._behaviours.get(path)
            if beh is None:
                return _Behaviour("respond", 200, {"Content-Type": "application/json"},
                                  b'{"ok":true}')
            beh.count += 1
            if beh.times is not None and beh.count > beh.times:
                return beh.then or _Behaviour("respond", 200,
                                              {"Content-Type": "application/json"},
                                              b'{"ok":true}')
            return beh

    # ------------------------------------------------------------ recording
    def _record(self, method, path, headers, body, beh):
        answer = beh.kind if beh.kind != "respond" else beh.status
        with self._cond:
            self._seq += 1
            self._requests.append(Request(method, path, headers, body, time.monotonic(),
                                          time.time(), self._seq, answer))
            self._cond.notify_all()
            return self._seq

    def _mark_answered(self, seq, started=False):
        with self._lock:
            (self._answer_started if started else self._answered)[seq] = time.monotonic()

    def answer_started_at(self, req):
        """time.monotonic() just before the answer to req began to be written, or None."""
        with self._lock:
            return self._answer_started.get(req.seq)

    def answered_at(self, req):
        """time.monotonic() when the answer to req was written, or None (not
        answered yet, hung, reset, or the write failed)."""
        with self._lock:
            return self._answered.get(req.seq)

    def _track(self, conn, add):
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def requests(self, path=None):
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    def count(self, path=None):
        return len(self.requests(path))

    def wait_for(self, path, count, timeout, pred=None):
        """Wait until at least `count` requests to path (satisfying pred, when
        given) have arrived, or the deadline passes. Returns the matching
        requests seen (check len() yourself: it may be short on timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [r for r in self._requests
                       if (path is None or r.path == path) and (pred is None or pred(r))]
                left = deadline - time.monotonic()
                if len(got) >= count or left <= 0:
                    return got
                self._cond.wait(min(left, 0.25))

    def wait_for_ids(self, path, ids, timeout):
        """Wait until every webhook-id in ids has arrived at path at least once.
        Returns the set of ids still missing (empty on success)."""
        want = set(ids)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                seen = {r.headers.get("webhook-id") for r in self._requests if r.path == path}
                missing = want - seen
                left = deadline - time.monotonic()
                if not missing or left <= 0:
                    return missing
                self._cond.wait(min(left, 0.25))
