"""/metrics in the Prometheus text format, parsed by the reference parser
(Debian's python3-prometheus-client): counters rise after ingests and
deliveries, histograms are well-formed, the delivery gauges reflect the store,
and --metrics-require-admin protects the endpoint.

Run from the repo root: /usr/bin/python3 -m unittest tests/integration/test_metrics.py
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from harness import ServerTestCase, make_key, unique_tenant  # noqa: E402
from receiver import Receiver  # noqa: E402

JSON = {"Content-Type": "application/json"}


def scrape(srv, key=None):
    r = srv.request("GET", "/metrics", key=key)
    assert r.status == 200, r.raw[:300]
    assert r.headers["content-type"].startswith("text/plain"), r.headers
    return {f.name: f for f in text_string_to_metric_families(r.raw.decode())}


def value(families, name, sample_name=None, **labels):
    fam = families.get(name)
    if fam is None:
        return 0.0
    for s in fam.samples:
        if s.name == (sample_name or name) and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return 0.0


class MetricsTests(ServerTestCase):
    server_args = ("--allow-private-destinations", "--retry-schedule", "100ms")

    def test_counters_rise_and_histograms_are_well_formed(self):
        tenant = unique_tenant("met")
        key = make_key(self.srv, tenant, ["ingest", "read", "manage"])["key"]
        rcv = Receiver()
        rcv.start()
        self.addCleanup(rcv.stop)
        rcv.ok("/hook")
        r = self.srv.request("POST", "/v1/subscriptions", body={"url": rcv.url("/hook")}, key=key)
        self.assertEqual(r.status, 201, r.raw[:300])
        before = scrape(self.srv)
        for i in range(3):
            r = self.srv.request("POST", "/v1/events", body={"type": "m.t", "data": i}, key=key)
            self.assertEqual(r.status, 202)
        self.assertTrue(rcv.wait_for("/hook", 3, 10), "deliveries did not arrive")
        deadline = time.monotonic() + 10
        while True:
            after = scrape(self.srv)
            # The attempt counter rises when the response arrives; the
            # delivery's succeeded state when the store has committed the
            # outcome, a moment later: wait for both.
            if (value(after, "triggers_delivery_attempts", "triggers_delivery_attempts_total",
                      outcome="success") >= 3
                    and value(after, "triggers_deliveries", state="succeeded") >= 3) \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(value(after, "triggers_events_ingested", "triggers_events_ingested_total",
                               tenant=tenant), 3)
        d202 = (value(after, "triggers_http_requests", "triggers_http_requests_total",
                      route="/v1/events", status="202")
                - value(before, "triggers_http_requests", "triggers_http_requests_total",
                        route="/v1/events", status="202"))
        self.assertEqual(d202, 3)
        self.assertGreaterEqual(value(after, "triggers_delivery_attempts",
                                      "triggers_delivery_attempts_total", outcome="success"), 3)
        self.assertGreaterEqual(value(after, "triggers_ingest_to_delivery_seconds",
                                      "triggers_ingest_to_delivery_seconds_count"), 3)
        self.assertGreaterEqual(value(after, "triggers_deliveries", state="succeeded"), 3)
        self.assertIn("triggers_oldest_due_delivery_age_seconds", after)
        for name in ("triggers_http_request_duration_seconds",
                     "triggers_delivery_attempt_duration_seconds",
                     "triggers_ingest_to_delivery_seconds", "triggers_group_commit_events",
                     "triggers_store_operation_duration_seconds"):
            fam = after[name]
            self.assertEqual(fam.type, "histogram", name)
            series = {}
            for s in fam.samples:
                key_labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
                series.setdefault(key_labels, []).append(s)
            self.assertTrue(series, name)
            for labels, samples in series.items():
                buckets = [s for s in samples if s.name.endswith("_bucket")]
                counts = [s.value for s in buckets]
                self.assertEqual(counts, sorted(counts), "%s%s buckets not cumulative" % (name, labels))
                self.assertEqual(buckets[-1].labels["le"], "+Inf")
                count = [s.value for s in samples if s.name.endswith("_count")]
                self.assertEqual(count, [buckets[-1].value], name)

    def test_require_admin(self):
        srv = self.start_server(args=["--metrics-require-admin"])
        self.assertEqual(srv.request("GET", "/metrics").status, 401)
        key = make_key(srv, unique_tenant("met"), ["read", "manage"])["key"]
        r = srv.request("GET", "/metrics", key=key)
        self.assertEqual(r.status, 403, r.raw[:200])
        families = scrape(srv, key=srv.admin_key)
        self.assertIn("triggers_http_requests", families)


if __name__ == "__main__":
    unittest.main()
