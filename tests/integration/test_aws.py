"""The AWS-compatible endpoints (issue 14, SPEC 12) with real clients: the
Debian awscli (SQS query protocol, EventBridge JSON 1.1) and the AWS SDK for
JavaScript v3 (SQS JSON 1.0), both unchanged but for the endpoint URL and the
credentials. Also measures PutEvents and an SDK consumer loop against /v1 in
the same run (printed).

Run from the repo root:
  /usr/bin/python3 -m unittest -v tests/integration/test_aws.py
"""

import datetime
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (ServerTestCase, ensure_npm_package, make_key, register_secret,  # noqa: E402
                     unique_tenant)

HERE = os.path.dirname(os.path.abspath(__file__))
SDK_JS = os.path.join(HERE, "js", "aws_sdk.js")
NPM_PREFIX = os.environ.get("TRIGGERS_IT_NPM_PREFIX") or os.path.join(
    tempfile.gettempdir(), "triggers-it-npm")
AWS_CLI = "/usr/bin/aws"  # Debian's awscli (not a pip one earlier on PATH)
ALL = ["ingest", "read", "consume", "manage"]


class AwsTenant:
    """A tenant with AWS credentials, a manage key and named pull queues."""

    def __init__(self, test, srv, queues=("orders",), scopes=ALL):
        self.srv = srv
        self.tenant = unique_tenant("aws")
        self.manage = make_key(srv, self.tenant, ["manage", "read", "consume"])["key"]
        r = srv.request("POST", "/v1/keys",
                        {"tenant": self.tenant, "scopes": list(scopes), "kind": "aws"},
                        key=srv.admin_key)
        test.assertEqual(r.status, 201, r.raw)
        self.key_id = r.json["id"]
        self.access_key_id = r.json["access_key_id"]
        self.secret = register_secret(r.json["secret_access_key"])
        test.assertNotIn("key", r.json)
        self.subs = {}
        for q in queues:
            r = srv.request("POST", "/v1/subscriptions",
                            {"kind": "pull", "name": q, "max_receives": 3,
                             "filter": {"detail-type": ["Order Created"]}}, key=self.manage)
            test.assertEqual(r.status, 201, r.raw)
            self.subs[q] = r.json["id"]

    def env(self, secret=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"AWS_ACCESS_KEY_ID": self.access_key_id,
                    "AWS_SECRET_ACCESS_KEY": secret or self.secret,
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                    "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1",
                    "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                    "AWS_ENDPOINT_URL_TEST": self.endpoint(), "NODE_PATH":
                    os.path.join(NPM_PREFIX, "node_modules")})
        return env

    def endpoint(self):
        return "http://%s:%d" % (self.srv.host, self.srv.port)


class AwsTestCase(ServerTestCase):
    # SQS's own 256 KiB message limit is what a 256 KiB + 1 body meets.
    server_args = ("--max-body", "1MiB")

    def cli(self, t, *args, secret=None, ok=True):
        p = subprocess.run([AWS_CLI, "--endpoint-url", t.endpoint(), "--output", "json"] +
                           list(args), env=t.env(secret), capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        if ok:
            self.assertEqual(p.returncode, 0, p.stderr)
            return json.loads(p.stdout) if p.stdout.strip() else {}
        self.assertNotEqual(p.returncode, 0, p.stdout)
        return p.stderr

    def node(self, t, *args, secret=None, timeout=120):
        node = ensure_npm_package(NPM_PREFIX, "@aws-sdk/client-sqs@3", "the AWS SDK tests")
        ensure_npm_package(NPM_PREFIX, "@aws-sdk/client-eventbridge@3", "the AWS SDK tests")
        p = subprocess.run([node, SDK_JS] + [str(a) for a in args], env=t.env(secret),
                           capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        return json.loads(p.stdout)

    def v1_receive(self, t, queue, max_=10):
        r = self.srv.request("POST", "/v1/subscriptions/%s/receive" % t.subs[queue],
                             {"max": max_}, key=t.manage)
        self.assertEqual(r.status, 200, r.raw)
        return r.json["data"]


@unittest.skipUnless(shutil.which(AWS_CLI), "awscli not installed (scripts/bootstrap)")
class CliTest(AwsTestCase):
    def put(self, t, entries):
        return self.cli(t, "events", "put-events", "--entries", json.dumps(entries))

    def test_producer_rule_and_consumer(self):
        t = AwsTenant(self, self.srv)
        out = self.put(t, [
            {"Source": "shop", "DetailType": "Order Created", "Detail": '{"id":1}',
             "Resources": ["arn:x"], "EventBusName": "default"},
            {"Source": "shop", "DetailType": "Other", "Detail": "{}"},
            {"Source": "shop", "DetailType": "Order Created", "Detail": "not json"}])
        self.assertEqual(out["FailedEntryCount"], 1)
        self.assertTrue(out["Entries"][0]["EventId"].startswith("evt_"))
        self.assertEqual(out["Entries"][2]["ErrorCode"], "MalformedDetail")
        # The event as /v1 lists it: type mapped, detail type kept in subject.
        r = self.srv.request("GET", "/v1/events/" + out["Entries"][0]["EventId"], key=t.manage)
        self.assertEqual((r.json["type"], r.json["subject"], r.json["data"]),
                         ("Order-Created", "Order Created", {"id": 1}))
        url = self.cli(t, "sqs", "get-queue-url", "--queue-name", "orders")["QueueUrl"]
        self.assertEqual(url, t.endpoint() + "/sqs/%s/orders" % t.tenant)
        got = self.cli(t, "sqs", "receive-message", "--queue-url", url,
                       "--max-number-of-messages", "10", "--wait-time-seconds", "1",
                       "--attribute-names", "All")
        self.assertEqual(len(got["Messages"]), 1)  # the rule's pattern matched one
        m = got["Messages"][0]
        body = json.loads(m["Body"])
        self.assertEqual({k: body[k] for k in ("version", "detail-type", "source", "account",
                                               "detail")},
                         {"version": "0", "detail-type": "Order Created", "source": "shop",
                          "account": t.tenant, "detail": {"id": 1}})
        self.assertEqual(body["resources"], ["arn:x"])
        self.assertEqual(m["Attributes"]["ApproximateReceiveCount"], "1")
        self.cli(t, "sqs", "change-message-visibility", "--queue-url", url, "--receipt-handle",
                 m["ReceiptHandle"], "--visibility-timeout", "0")
        again = self.cli(t, "sqs", "receive-message", "--queue-url", url, "--attribute-names",
                         "ApproximateReceiveCount")["Messages"][0]
        self.assertEqual(again["Attributes"]["ApproximateReceiveCount"], "2")
        self.cli(t, "sqs", "delete-message", "--queue-url", url, "--receipt-handle",
                 again["ReceiptHandle"])
        attrs = self.cli(t, "sqs", "get-queue-attributes", "--queue-url", url,
                         "--attribute-names", "All")["Attributes"]
        self.assertEqual((attrs["ApproximateNumberOfMessages"],
                          attrs["ApproximateNumberOfMessagesNotVisible"]), ("0", "0"))

    def test_resources_are_kept_and_matched(self):
        t = AwsTenant(self, self.srv, queues=())
        r = self.srv.request("POST", "/v1/subscriptions",
                             {"kind": "pull", "name": "by-resource",
                              "filter": {"resources": ["arn:aws:s3:::bucket-1"]}}, key=t.manage)
        self.assertEqual(r.status, 201, r.raw)
        sub = r.json["id"]
        out = self.put(t, [
            {"Source": "s3", "DetailType": "Object Created", "Detail": "{}",
             "Resources": ["arn:aws:s3:::bucket-1", "arn:aws:s3:::bucket-1/key"]},
            {"Source": "s3", "DetailType": "Object Created", "Detail": "{}",
             "Resources": ["arn:aws:s3:::bucket-2"]},
            {"Source": "s3", "DetailType": "Object Created", "Detail": "{}"}])
        self.assertEqual(out["FailedEntryCount"], 0)
        r = self.srv.request("POST", "/v1/subscriptions/%s/receive" % sub, {"max": 10},
                             key=t.manage)
        self.assertEqual([m["event"]["id"] for m in r.json["data"]], [out["Entries"][0]["EventId"]])
        self.assertEqual(r.json["data"][0]["event"]["resources"],
                         ["arn:aws:s3:::bucket-1", "arn:aws:s3:::bucket-1/key"])
        url = self.cli(t, "sqs", "get-queue-url", "--queue-name", "by-resource")["QueueUrl"]
        self.cli(t, "sqs", "change-message-visibility", "--queue-url", url, "--receipt-handle",
                 r.json["data"][0]["receipt"], "--visibility-timeout", "0")
        m = self.cli(t, "sqs", "receive-message", "--queue-url", url)["Messages"][0]
        self.assertEqual(json.loads(m["Body"])["resources"],
                         ["arn:aws:s3:::bucket-1", "arn:aws:s3:::bucket-1/key"])
        # Events without resources show none in /v1, and [] in the envelope.
        r = self.srv.request("GET", "/v1/events/" + out["Entries"][2]["EventId"], key=t.manage)
        self.assertNotIn("resources", r.json)

    def test_send_message_round_trip_and_v1_ack(self):
        t = AwsTenant(self, self.srv, queues=("jobs", "other"))
        url = self.cli(t, "sqs", "get-queue-url", "--queue-name", "jobs")["QueueUrl"]
        body = 'plain <text> & "quotes" \u00e9'
        sent = self.cli(t, "sqs", "send-message", "--queue-url", url, "--message-body", body,
                        "--message-attributes", '{"k":{"DataType":"String","StringValue":"v"}}')
        self.assertTrue(sent["MessageId"].startswith("evt_"))
        # For that queue alone.
        self.assertEqual(self.v1_receive(t, "other"), [])
        got = self.cli(t, "sqs", "receive-message", "--queue-url", url,
                       "--message-attribute-names", "All")["Messages"][0]
        self.assertEqual(got["Body"], body)
        self.assertEqual(got["MessageAttributes"]["k"]["StringValue"], "v")
        # Received through SQS, acked through /v1: one message.
        r = self.srv.request("POST", "/v1/subscriptions/%s/ack" % t.subs["jobs"],
                             {"receipts": [got["ReceiptHandle"]]}, key=t.manage)
        self.assertEqual(r.json["results"][0]["status"], "acked")
        self.assertNotIn("Messages", self.cli(t, "sqs", "receive-message", "--queue-url", url))

    def test_batches_answer_per_entry(self):
        t = AwsTenant(self, self.srv, queues=("jobs", "other"))
        url = self.cli(t, "sqs", "get-queue-url", "--queue-name", "jobs")["QueueUrl"]
        other = self.cli(t, "sqs", "get-queue-url", "--queue-name", "other")["QueueUrl"]
        sent = self.cli(t, "sqs", "send-message-batch", "--queue-url", url, "--entries",
                        json.dumps([{"Id": str(i), "MessageBody": "m%d" % i} for i in range(3)]))
        self.assertEqual(len(sent["Successful"]), 3)
        self.cli(t, "sqs", "send-message", "--queue-url", other, "--message-body", "x")
        foreign = self.cli(t, "sqs", "receive-message", "--queue-url", other)["Messages"][0]
        got = self.cli(t, "sqs", "receive-message", "--queue-url", url,
                       "--max-number-of-messages", "10")["Messages"]
        by_body = {m["Body"]: m["ReceiptHandle"] for m in got}
        self.assertEqual(sorted(by_body), ["m0", "m1", "m2"])
        changed = self.cli(t, "sqs", "change-message-visibility-batch", "--queue-url", url,
                           "--entries", json.dumps([
                               {"Id": "a", "ReceiptHandle": by_body["m0"], "VisibilityTimeout": 0},
                               {"Id": "b", "ReceiptHandle": by_body["m1"],
                                "VisibilityTimeout": 600},
                               {"Id": "c", "ReceiptHandle": "nope", "VisibilityTimeout": 0},
                               {"Id": "d", "ReceiptHandle": foreign["ReceiptHandle"],
                                "VisibilityTimeout": 0}]))
        self.assertEqual(sorted(e["Id"] for e in changed["Successful"]), ["a", "b"])
        self.assertEqual({e["Id"]: e["Code"] for e in changed["Failed"]},
                         {"c": "ReceiptHandleIsInvalid", "d": "ReceiptHandleIsInvalid"})
        again = self.cli(t, "sqs", "receive-message", "--queue-url", url,
                         "--max-number-of-messages", "10")["Messages"]
        self.assertEqual([m["Body"] for m in again], ["m0"])  # m1 stays hidden for 600 s
        deleted = self.cli(t, "sqs", "delete-message-batch", "--queue-url", url, "--entries",
                           json.dumps([{"Id": "x", "ReceiptHandle": again[0]["ReceiptHandle"]},
                                       {"Id": "y", "ReceiptHandle": by_body["m1"]},
                                       {"Id": "z", "ReceiptHandle": by_body["m2"]},
                                       {"Id": "w", "ReceiptHandle": "nope"}]))
        self.assertEqual(sorted(e["Id"] for e in deleted["Successful"]), ["x", "y", "z"])
        self.assertEqual([e["Id"] for e in deleted["Failed"]], ["w"])
        attrs = self.cli(t, "sqs", "get-queue-attributes", "--queue-url", url,
                         "--attribute-names", "All")["Attributes"]
        self.assertEqual((attrs["ApproximateNumberOfMessages"],
                          attrs["ApproximateNumberOfMessagesNotVisible"]), ("0", "0"))

    def test_negative_cases(self):
        t = AwsTenant(self, self.srv, queues=("a", "b"))
        other = AwsTenant(self, self.srv, queues=("theirs",))
        url = self.cli(t, "sqs", "get-queue-url", "--queue-name", "a")["QueueUrl"]
        err = self.cli(t, "sqs", "get-queue-url", "--queue-name", "a", secret="x" * 40, ok=False)
        self.assertIn("SignatureDoesNotMatch", err)
        err = self.cli(t, "events", "put-events", "--entries",
                       '[{"Source":"a","DetailType":"b","Detail":"{}"}]', secret="x" * 40,
                       ok=False)
        self.assertIn("InvalidSignatureException", err)
        theirs = other.endpoint() + "/sqs/%s/theirs" % other.tenant
        err = self.cli(t, "sqs", "receive-message", "--queue-url", theirs, ok=False)
        self.assertIn("NonExistentQueue", err)
        self.put(t, [{"Source": "s", "DetailType": "Order Created", "Detail": "{}"}])
        b_url = self.cli(t, "sqs", "get-queue-url", "--queue-name", "b")["QueueUrl"]
        m = self.cli(t, "sqs", "receive-message", "--queue-url", b_url)["Messages"][0]
        err = self.cli(t, "sqs", "delete-message", "--queue-url", url, "--receipt-handle",
                       m["ReceiptHandle"], ok=False)
        self.assertIn("ReceiptHandleIsInvalid", err)
        err = self.cli(t, "sqs", "receive-message", "--queue-url", url,
                       "--max-number-of-messages", "11", ok=False)
        self.assertIn("InvalidParameterValue", err)
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
            f.write("x" * (256 * 1024 + 1))
            f.flush()
            err = self.cli(t, "sqs", "send-message", "--queue-url", url, "--message-body",
                           "file://" + f.name, ok=False)
        self.assertIn("InvalidParameterValue", err)
        # Nothing was sent to "a": it holds the put event alone.
        self.assertEqual([m["event"]["type"] for m in self.v1_receive(t, "a")], ["Order-Created"])
        # A key without the consume scope; then a revoked key.
        ro = AwsTenant(self, self.srv, queues=("q",), scopes=["read"])
        q_url = self.cli(ro, "sqs", "get-queue-url", "--queue-name", "q")["QueueUrl"]
        self.assertIn("AccessDenied", self.cli(ro, "sqs", "receive-message", "--queue-url",
                                               q_url, ok=False))
        r = self.srv.request("DELETE", "/v1/keys/" + t.key_id, key=self.srv.admin_key)
        self.assertEqual(r.status, 204)
        err = self.cli(t, "sqs", "get-queue-url", "--queue-name", "a", ok=False)
        self.assertIn("InvalidClientTokenId", err)
        # Listed like any key, the secret never.
        r = self.srv.request("GET", "/v1/keys?tenant=" + t.tenant, key=self.srv.admin_key)
        row = [k for k in r.json["data"] if k["id"] == t.key_id][0]
        self.assertEqual((row["kind"], row["access_key_id"]), ("aws", t.access_key_id))
        self.assertNotIn(t.secret, r.raw.decode())


def _vendored_botocore():
    """Debian's awscli carries its own botocore; importing awscli first makes it
    importable as `botocore` (its alias finder). None without it."""
    try:
        import awscli  # noqa: F401
        from botocore import auth, awsrequest, credentials
    except ImportError:
        return None
    return auth, awsrequest, credentials


@unittest.skipUnless(_vendored_botocore(), "awscli not installed (scripts/bootstrap)")
class SignatureTest(AwsTestCase):
    """SigV4 edge cases signed by botocore itself: missing, expired (header and
    presigned forms), a presigned GET as an SDK builds one, a tampered one."""

    def signed(self, t, method, path, body=b"", headers=None, presign=None, at=None,
               service="sqs"):
        auth, awsrequest, credentials = _vendored_botocore()
        creds = credentials.Credentials(t.access_key_id, t.secret)
        url = t.endpoint() + path
        req = awsrequest.AWSRequest(method=method, url=url, data=body, headers=headers or {})
        if presign is None:
            signer = auth.SigV4Auth(creds, service, "us-east-1")
        else:
            signer = auth.SigV4QueryAuth(creds, service, "us-east-1", expires=presign)
        real = datetime.datetime

        class Clock(real):
            @classmethod
            def utcnow(cls):
                return at or real.utcnow()
        with mock.patch.object(auth.datetime, "datetime", Clock):
            signer.add_auth(req)
        prepared = req.prepare()
        target = prepared.url[len(t.endpoint()):]
        return self.srv.request(method, target, body=prepared.body or None,
                                headers=dict(prepared.headers))

    def test_missing_expired_presigned_and_tampered(self):
        t = AwsTenant(self, self.srv, queues=("q",))
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        r = self.srv.request("POST", "/", body="Action=ListQueues&Version=2012-11-05",
                             headers=form)
        self.assertEqual(r.status, 403, r.raw)
        self.assertIn(b"MissingAuthenticationToken", r.raw)
        old = datetime.datetime.utcnow() - datetime.timedelta(minutes=20)
        r = self.signed(t, "POST", "/", b"Action=ListQueues&Version=2012-11-05", form, at=old)
        self.assertEqual(r.status, 400, r.raw)
        self.assertIn(b"RequestExpired", r.raw)
        ahead = datetime.datetime.utcnow() + datetime.timedelta(minutes=20)
        r = self.signed(t, "POST", "/", b"Action=ListQueues&Version=2012-11-05", form, at=ahead)
        self.assertIn(b"RequestExpired", r.raw)
        r = self.signed(t, "POST", "/", b'{"Entries":[]}',
                        {"X-Amz-Target": "AWSEvents.PutEvents",
                         "Content-Type": "application/x-amz-json-1.1"}, at=old, service="events")
        self.assertEqual(r.status, 400, r.raw)
        self.assertIn(b"InvalidSignatureException", r.raw)
        # A presigned GET, as botocore's generate_presigned_url makes it.
        query = "/?Action=ListQueues&Version=2012-11-05"
        r = self.signed(t, "GET", query, presign=60)
        self.assertEqual(r.status, 200, r.raw)
        self.assertIn(("/sqs/%s/q" % t.tenant).encode(), r.raw)
        r = self.signed(t, "GET", query, presign=60, at=old)
        self.assertIn(b"RequestExpired", r.raw)
        auth, awsrequest, credentials = _vendored_botocore()
        req = awsrequest.AWSRequest(method="GET", url=t.endpoint() + query)
        auth.SigV4QueryAuth(credentials.Credentials(t.access_key_id, t.secret), "sqs",
                            "us-east-1", expires=60).add_auth(req)
        tampered = req.prepare().url[len(t.endpoint()):].replace("ListQueues", "ListQueuez")
        r = self.srv.request("GET", tampered)
        self.assertEqual(r.status, 403, r.raw)
        self.assertIn(b"SignatureDoesNotMatch", r.raw)

    def test_resources_must_be_strings(self):
        # (the CLI and the SDKs refuse these before sending; a raw client may not)
        t = AwsTenant(self, self.srv, queues=())
        entries = [{"Source": "s", "DetailType": "d", "Detail": "{}", "Resources": r}
                   for r in (["arn", 7], "arn", [""], ["x" * 2049], ["ok"])]
        r = self.signed(t, "POST", "/", json.dumps({"Entries": entries}).encode(),
                        {"X-Amz-Target": "AWSEvents.PutEvents",
                         "Content-Type": "application/x-amz-json-1.1"}, service="events")
        self.assertEqual(r.status, 200, r.raw)
        self.assertEqual(r.json["FailedEntryCount"], 4)
        self.assertEqual([e.get("ErrorCode") for e in r.json["Entries"]],
                         ["InvalidArgument"] * 4 + [None])

    def test_v1_paths_never_route_to_aws(self):
        t = AwsTenant(self, self.srv, queues=("q",))
        for path in ("/v1/events?Action=ListQueues",
                     "/v1/events?X-Amz-Signature=abc&Action=ListQueues"):
            r = self.srv.request("GET", path, key=t.manage)
            self.assertEqual(r.status, 200, r.raw)
            self.assertIn("data", r.json)
        r = self.srv.request("GET", "/v1/events", key=t.manage,
                             headers={"X-Amz-Target": "AmazonSQS.ListQueues"})
        self.assertEqual(r.status, 200, r.raw)
        self.assertIn("data", r.json)
        r = self.srv.request("GET", "/v1/events",
                             headers={"Authorization": "AWS4-HMAC-SHA256 Credential=x"})
        self.assertEqual(r.status, 401, r.raw)
        self.assertEqual(r.json["error"]["code"], "unauthorized")


class SdkTest(AwsTestCase):
    def test_negative_cases(self):
        t = AwsTenant(self, self.srv, queues=("a", "b"))
        other = AwsTenant(self, self.srv, queues=("theirs",))
        e = self.node(t, "expect-error", "get-queue-url", "a", secret="y" * 40)
        self.assertEqual(e["name"], "SignatureDoesNotMatch")
        e = self.node(t, "expect-error", "put-events", secret="y" * 40)
        self.assertEqual(e["name"], "InvalidSignatureException")
        theirs = other.endpoint() + "/sqs/%s/theirs" % other.tenant
        e = self.node(t, "expect-error", "receive", theirs)
        self.assertEqual(e["name"], "QueueDoesNotExist")
        url = t.endpoint() + "/sqs/%s/a" % t.tenant
        e = self.node(t, "expect-error", "receive", url, 11)
        self.assertEqual(e["name"], "InvalidParameterValue")
        e = self.node(t, "expect-error", "send", url, 256 * 1024 + 1)
        self.assertEqual(e["name"], "InvalidParameterValue")
        self.node(t, "send", "b", "hello")
        m = self.v1_receive(t, "b")[0]
        e = self.node(t, "expect-error", "delete", url, m["receipt"])
        self.assertEqual(e["name"], "ReceiptHandleIsInvalid")
        self.srv.request("DELETE", "/v1/keys/" + t.key_id, key=self.srv.admin_key)
        e = self.node(t, "expect-error", "get-queue-url", "a")
        self.assertEqual(e["name"], "InvalidClientTokenId")

    def test_producer_and_long_polling_consumer_with_throughput(self):
        t = AwsTenant(self, self.srv)
        calls = int(os.environ.get("TRIGGERS_AWS_BENCH_CALLS", "50"))
        n = calls * 10
        produced = self.node(t, "produce", calls)
        self.assertEqual(produced["events"], n)
        consumed = self.node(t, "consume", "orders", n)
        self.assertEqual(consumed["received"], n)
        self.assertEqual(json.loads(consumed["bodies"][0])["detail-type"], "Order Created")
        self.assertEqual(self.v1_receive(t, "orders"), [])
        v1 = self.v1_loop(t, calls)
        print("\nAWS throughput (%d events): PutEvents x10 %.0f ev/s, SDK consumer "
              "(receive 10 + delete batch) %.0f msg/s; /v1 batch x10 %.0f ev/s, /v1 receive 10 "
              "+ ack %.0f msg/s" % (n, n / produced["seconds"], n / consumed["seconds"],
                                    n / v1[0], n / v1[1]), file=sys.stderr)
        print("server time per call (mean, from /metrics): " + self.server_means(), file=sys.stderr)

    def server_means(self):
        """Mean of triggers_http_request_duration_seconds per route of this loop,
        to tell the server's share of a call from the client's."""
        text = self.srv.request("GET", "/metrics").raw.decode()
        sums, counts = {}, {}
        for line in text.splitlines():
            for suffix, into in (("_sum{", sums), ("_count{", counts)):
                head = "triggers_http_request_duration_seconds" + suffix
                if line.startswith(head):
                    route = line[len(head):].split('"')[1]
                    into[route] = float(line.rsplit(" ", 1)[1])
        wanted = [r for r in sorted(counts) if r.startswith("aws:") or "receive" in r or
                  r.endswith("/ack") or r.endswith("/batch")]
        return ", ".join("%s %.2f ms (%d)" % (r, 1000 * sums[r] / counts[r], counts[r])
                         for r in wanted if counts[r])

    def v1_loop(self, t, calls):
        """The same work through /v1 on one keep-alive connection: (ingest s, consume s)."""
        key = make_key(self.srv, t.tenant, ["ingest", "consume"])["key"]
        conn = http.client.HTTPConnection(self.srv.host, self.srv.port, timeout=30)
        hdr = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}

        def post(path, body):
            conn.request("POST", path, json.dumps(body), hdr)
            r = conn.getresponse()
            data = json.loads(r.read())
            self.assertEqual(r.status, 200, data)
            return data
        t0 = time.monotonic()
        for c in range(calls):
            post("/v1/events/batch", {"events": [
                {"type": "Order-Created", "source": "shop", "subject": "Order Created",
                 "data": {"order": c * 10 + i}} for i in range(10)]})
        t1 = time.monotonic()
        got = 0
        sub = t.subs["orders"]
        while got < calls * 10:
            msgs = post("/v1/subscriptions/%s/receive" % sub, {"max": 10, "wait_s": 5})["data"]
            self.assertTrue(msgs)
            got += len(msgs)
            post("/v1/subscriptions/%s/ack" % sub, {"receipts": [m["receipt"] for m in msgs]})
        t2 = time.monotonic()
        conn.close()
        return t1 - t0, t2 - t1


if __name__ == "__main__":
    unittest.main()
