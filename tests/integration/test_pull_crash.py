"""Crash test of pull inboxes (issue 4): messages leased (received, not acked)
when the server is SIGKILLed are received again after a restart on the same
data dir once their visibility timeout has passed; none is lost, acked ones
stay acked, and the receipts from before the crash are spent.

What is tested is /work/notes/pull-decisions.md ("Crash"). Waits are polls
with deadlines.

Run from the repo root:
  /usr/bin/python3 -m unittest -v tests/integration/test_pull_crash.py
"""

import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import ServerTestCase, make_key, unique_tenant  # noqa: E402
from test_pull import ALL_SCOPES, PullClient  # noqa: E402

VISIBILITY_S = 2
N_LEASED = 30


class PullCrashTest(ServerTestCase):
    shared_server = False

    def test_leased_messages_survive_sigkill(self):
        srv = self.start_server()
        tenant = unique_tenant("pullcrash")
        key = make_key(srv, tenant, ALL_SCOPES)["key"]
        c = PullClient(self, srv, key)
        sub = c.create_sub()
        leased_ids = c.ingest_batch([{"type": "crash.test", "data": {"i": i}}
                                     for i in range(N_LEASED)])
        # Received (leased) before the crash: N_LEASED messages, one of them acked.
        got = []
        while len(got) < N_LEASED:
            batch = c.receive(sub["id"], max=100, visibility_timeout_s=VISIBILITY_S)
            self.assertTrue(batch, "only %d of %d received" % (len(got), N_LEASED))
            got += batch
        t_leased = time.monotonic()
        self.assertEqual(sorted(m["event"]["id"] for m in got), sorted(leased_ids))
        acked = got[0]
        self.assertEqual(c.ack(sub["id"], [acked["receipt"]]), ["acked"])
        leased = {m["event"]["id"]: m for m in got[1:]}
        # Ingested but never received before the crash.
        fresh_id = c.ingest(data={"fresh": True})

        self.assertEqual(srv.kill9(), -signal.SIGKILL)
        srv.start()
        c = PullClient(self, srv, key)

        # Before the visibility timeout only the never-received message is handed out.
        early = c.receive(sub["id"], max=100, visibility_timeout_s=60)
        if time.monotonic() - t_leased < VISIBILITY_S - 0.3:
            self.assertEqual([m["event"]["id"] for m in early], [fresh_id],
                             "leased messages handed out before their visibility timeout")
        seen = {m["event"]["id"]: m for m in early}

        deadline = time.monotonic() + VISIBILITY_S + 10
        while time.monotonic() < deadline and not (set(leased) | {fresh_id}) <= set(seen):
            for m in c.receive(sub["id"], max=100, visibility_timeout_s=60):
                self.assertNotIn(m["event"]["id"], seen, "received twice after restart")
                seen[m["event"]["id"]] = m
            time.sleep(0.1)
        missing = (set(leased) | {fresh_id}) - set(seen)
        self.assertFalse(missing, "%d leased message(s) not received again after restart: %s"
                         % (len(missing), sorted(missing)[:5]))
        self.assertNotIn(acked["event"]["id"], seen, "a message acked before the crash came back")
        self.assertGreaterEqual(time.monotonic() - t_leased, VISIBILITY_S - 0.2)
        for eid, old in leased.items():
            self.assertEqual(seen[eid]["attempt"], 2, seen[eid])
            self.assertEqual(seen[eid]["delivery_id"], old["delivery_id"])
            self.assertEqual(seen[eid]["event"], old["event"])
        self.assertEqual(seen[fresh_id]["attempt"], 1)

        # Old receipts are spent; the new ones ack.
        old_receipts = [m["receipt"] for m in leased.values()]
        self.assertEqual(c.ack(sub["id"], old_receipts), ["expired"] * len(old_receipts))
        new_receipts = [m["receipt"] for m in seen.values()]
        self.assertEqual(c.ack(sub["id"], new_receipts), ["acked"] * len(new_receipts))
        self.assertEqual(c.receive(sub["id"], max=100), [])
        statuses = {d["status"] for d in c.deliveries(sub["id"])}
        self.assertEqual(statuses, {"succeeded"})
        self.assertEqual(len(c.deliveries(sub["id"])), N_LEASED + 1)


if __name__ == "__main__":
    unittest.main()
