// The README's quick start through a client generated from the OpenAPI
// document: openapi-typescript turns the document into `paths` types
// (schema.d.ts, generated next to this file by tests/integration/
// test_openapi.py), openapi-fetch makes the calls, and tsc type-checks this
// file against those types before it runs: a path, parameter or field that
// the document lacks fails the compile. Prints one JSON line on success.
//
// Environment: TRIGGERS_URL (base URL), TRIGGERS_ADMIN_KEY.
import createClient from 'openapi-fetch';
import type { paths } from './schema.js';

declare const process: { env: Record<string, string | undefined>; exit(code: number): never };

const baseUrl = process.env.TRIGGERS_URL ?? 'http://127.0.0.1:8080';
const admin = process.env.TRIGGERS_ADMIN_KEY ?? '';

// A failed step prints the server's error (never a stack trace) and exits 1.
function need<T>(step: string, r: { data?: T; error?: unknown; response: Response }): T {
  if (r.data === undefined) {
    console.error(`${step}: HTTP ${r.response.status}: ${JSON.stringify(r.error)}`);
    process.exit(1);
  }
  return r.data;
}

// 1. A key for tenant "quickstart" (with the admin key).
const adminClient = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${admin}` } });
const key = need('create a key', await adminClient.POST('/v1/keys', {
  body: { tenant: 'quickstart', scopes: ['ingest', 'read', 'manage', 'consume'], name: 'quickstart' },
}));
const client = createClient<paths>({ baseUrl, headers: { 'X-API-Key': key.key } });

// 2. A pull subscription for order events (it gets events ingested after it).
const sub = need('create a pull subscription', await client.POST('/v1/subscriptions', {
  body: { kind: 'pull', event_types: ['order.*'], description: 'quick start' },
}));

// 3. Ingest an event (202 once it is on disk).
const accepted = need('ingest an event', await client.POST('/v1/events', {
  params: { header: { 'Idempotency-Key': 'order-42-created' } },
  body: { type: 'order.created', data: { order_id: 42, total: 1.5 }, subject: 'order/42' },
}));

// 4. Receive it (long poll up to 5 s).
const received = need('receive', await client.POST('/v1/subscriptions/{id}/receive', {
  params: { path: { id: sub.id } },
  body: { max: 10, wait_s: 5, visibility_timeout_s: 30 },
}));
const message = received.data[0];
if (!message || message.event.id !== accepted.id) {
  console.error(`receive: expected ${accepted.id}, got ${JSON.stringify(received)}`);
  process.exit(1);
}

// 5. Ack it with its receipt.
const acked = need('ack', await client.POST('/v1/subscriptions/{id}/ack', {
  params: { path: { id: sub.id } },
  body: { receipts: [message.receipt] },
}));

// The delivery is now succeeded.
const delivery = need('read the delivery', await client.GET('/v1/deliveries/{id}', {
  params: { path: { id: message.delivery_id } },
}));

console.log(JSON.stringify({
  key_id: key.id, subscription_id: sub.id, event_id: accepted.id,
  received: received.data.length, ack: acked.results[0]?.status, delivery_status: delivery.status,
}));
