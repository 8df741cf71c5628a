// Unchanged AWS SDK for JavaScript v3 code against Triggers: only the
// endpoint and the credentials are set (from the environment, as an
// application would). Usage: node aws_sdk.js <mode> [args...], where mode is
//   produce <n_calls>      PutEvents, 10 entries a call; prints {"events","seconds"}
//   consume <queue> <n>    long-poll (receive 10, process, delete batch) until n
//                          messages; prints {"received","seconds","bodies"}
//   send <queue> <body>    SendMessage; prints the result
//   expect-error <op> ...  runs one call that must fail; prints {"name","code"}
// NODE_PATH points at the npm prefix where the SDK packages are installed.
const { EventBridgeClient, PutEventsCommand } = require("@aws-sdk/client-eventbridge");
const {
  SQSClient, GetQueueUrlCommand, ReceiveMessageCommand, DeleteMessageBatchCommand,
  DeleteMessageCommand, SendMessageCommand, ChangeMessageVisibilityCommand,
} = require("@aws-sdk/client-sqs");

const endpoint = process.env.AWS_ENDPOINT_URL_TEST;
const config = { endpoint, region: process.env.AWS_REGION || "us-east-1" };
const events = new EventBridgeClient(config);
const sqs = new SQSClient(config);

async function queueUrl(name) {
  return (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl;
}

async function produce(calls) {
  const t0 = process.hrtime.bigint();
  let n = 0;
  for (let c = 0; c < calls; c++) {
    const Entries = [];
    for (let i = 0; i < 10; i++) {
      Entries.push({ Source: "shop", DetailType: "Order Created",
                     Detail: JSON.stringify({ order: c * 10 + i }) });
    }
    const r = await events.send(new PutEventsCommand({ Entries }));
    if (r.FailedEntryCount !== 0) throw new Error("failed entries: " + JSON.stringify(r));
    n += r.Entries.length;
  }
  return { events: n, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

async function consume(name, want) {
  const QueueUrl = await queueUrl(name);
  const t0 = process.hrtime.bigint();
  const bodies = [];
  while (bodies.length < want) {
    const r = await sqs.send(new ReceiveMessageCommand({
      QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 5,
      MessageSystemAttributeNames: ["All"], MessageAttributeNames: ["All"] }));
    const msgs = r.Messages || [];
    if (msgs.length === 0) throw new Error("no message within the wait, got " + bodies.length);
    for (const m of msgs) bodies.push(m.Body);  // "process"
    const d = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl,
      Entries: msgs.map((m, i) => ({ Id: "m" + i, ReceiptHandle: m.ReceiptHandle })) }));
    if ((d.Failed || []).length) throw new Error("delete failed: " + JSON.stringify(d.Failed));
  }
  return { received: bodies.length, seconds: Number(process.hrtime.bigint() - t0) / 1e9,
           bodies: bodies.slice(0, 50) };
}

async function send(name, body) {
  const QueueUrl = await queueUrl(name);
  const r = await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: body,
    MessageAttributes: { k: { DataType: "String", StringValue: "v" } } }));
  return { MessageId: r.MessageId, MD5OfMessageBody: r.MD5OfMessageBody };
}

async function expectError(op, args) {
  try {
    if (op === "put-events") {
      await events.send(new PutEventsCommand({ Entries: [{ Source: "a", DetailType: "b", Detail: "{}" }] }));
    } else if (op === "get-queue-url") {
      await queueUrl(args[0]);
    } else if (op === "receive") {
      await sqs.send(new ReceiveMessageCommand({ QueueUrl: args[0],
        MaxNumberOfMessages: Number(args[1] || 1) }));
    } else if (op === "delete") {
      await sqs.send(new DeleteMessageCommand({ QueueUrl: args[0], ReceiptHandle: args[1] }));
    } else if (op === "change-visibility") {
      await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: args[0],
        ReceiptHandle: args[1], VisibilityTimeout: 10 }));
    } else if (op === "send") {
      await sqs.send(new SendMessageCommand({ QueueUrl: args[0],
        MessageBody: "x".repeat(Number(args[1])) }));
    }
  } catch (e) {
    return { name: e.name, code: e.Code || (e.$metadata && e.$metadata.httpStatusCode) || null,
             status: e.$metadata ? e.$metadata.httpStatusCode : null };
  }
  throw new Error("the call succeeded");
}

(async () => {
  const [mode, ...args] = process.argv.slice(2);
  let out;
  if (mode === "produce") out = await produce(Number(args[0]));
  else if (mode === "consume") out = await consume(args[0], Number(args[1]));
  else if (mode === "send") out = await send(args[0], args[1]);
  else if (mode === "expect-error") out = await expectError(args[0], args.slice(1));
  else throw new Error("unknown mode " + mode);
  process.stdout.write(JSON.stringify(out) + "\n");
})().catch((e) => { process.stderr.write(String(e && e.stack || e) + "\n"); process.exit(1); });
