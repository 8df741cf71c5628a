"""When the store cannot write, ingest answers 503 (never a 2xx), nothing
acknowledged is lost, and the server recovers by itself once space is back.
/health answers 503 while the store cannot answer.

The disk-full case mounts a small tmpfs as the data dir, a real filesystem
that runs out of space; it needs root (CI runs as root) and skips otherwise.

Run from the repo root: /usr/bin/python3 -m unittest tests/integration/test_store_failure.py
"""

import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import ServerTestCase, make_key, unique_tenant  # noqa: E402

EVENT = b'{"type":"disk.fill","data":{"pad":"' + b"x" * 2000 + b'"}}'


def try_mount_tmpfs(path, size):
    if os.geteuid() != 0:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", path],
                       capture_output=True)
    return r.returncode == 0


class StoreFailureTests(ServerTestCase):
    shared_server = False

    def test_disk_full_is_503_and_recovers(self):
        mnt = tempfile.mkdtemp(prefix="triggers-full-")
        if not try_mount_tmpfs(mnt, "3m"):
            os.rmdir(mnt)
            self.skipTest("needs root to mount a tmpfs")
        self.addCleanup(os.rmdir, mnt)
        self.addCleanup(subprocess.run, ["umount", "-l", mnt])
        data = os.path.join(mnt, "data")
        os.makedirs(data)
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (512 * 1024))
        srv = self.start_server(data_dir=data)
        key = make_key(srv, unique_tenant("full"), ["ingest", "read"])["key"]
        acked = []
        failure = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(acked) < 5000:
            r = srv.request("POST", "/v1/events", body=EVENT, key=key,
                            headers={"Content-Type": "application/json"})
            if r.status == 202:
                acked.append(r.json["id"])
                continue
            failure = r
            break
        self.assertIsNotNone(failure, "the 3 MiB disk never filled after %d events" % len(acked))
        self.assertGreater(len(acked), 10)
        self.assertError(failure, 503, "unavailable")
        self.assertIn("retry-after", failure.headers)
        # Still serving, and every acknowledged event is there.
        self.assertEqual(srv.request("GET", "/health").status, 200)
        for eid in acked[-20:] + acked[:5]:
            self.assertEqual(srv.request("GET", "/v1/events/" + eid, key=key).status, 200, eid)
        # Space comes back: ingest works again without a restart.
        os.unlink(filler)
        deadline = time.monotonic() + 10
        while True:
            r = srv.request("POST", "/v1/events", body=EVENT, key=key,
                            headers={"Content-Type": "application/json"})
            if r.status == 202 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(r.status, 202, r.raw[:200])
        self.assertEqual(srv.stop(), 0)

    def test_health_is_503_while_the_store_is_gone(self):
        srv = self.start_server()
        self.assertEqual(srv.request("GET", "/health").status, 200)
        moved = srv.data_dir + ".moved"
        os.rename(srv.data_dir, moved)
        try:
            r = srv.request("GET", "/health")
            self.assertEqual(r.status, 503, r.raw[:200])
            self.assertEqual(r.json["status"], "unavailable")
            self.assertEqual(r.json["checks"]["store"], "unavailable")
        finally:
            os.rename(moved, srv.data_dir)
        self.assertEqual(srv.request("GET", "/health").status, 200)


if __name__ == "__main__":
    unittest.main()
