#!/usr/bin/env node
// Self-test of validate-responses.mjs and validate-events.mjs: samples the
// documents describe must pass, and each kind of mismatch must be caught on
// its own.  Writes its samples to a temporary directory and removes it
// afterwards.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';

const here = dirname(fileURLToPath(import.meta.url));
const ID = '019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f60';
const order = {
  id: ID,
  customerId: 'customer-123',
  items: ['item-1', 'item-2'],
  status: 'pending',
  createdAt: '2026-11-25T12:34:56.789Z',
  updatedAt: '2026-11-25T12:34:56.789Z',
};
const json = 'application/json';
const problemJson = 'application/problem+json';
const problem = (type, title, status, detail, instance = '/orders') => ({ type, title, status, detail, instance });
const r = (operationId, status, contentType, body, headers = {}) => ({ operationId, status, contentType, headers, body });

const good = [
  r('getServiceInfo', 200, json, {
    name: 'orders',
    version: '0.1.0',
    description: 'Orders Service',
    links: { openapi: '/openapi.json', health: '/healthz', ready: '/readyz', orders: '/orders', docs: '/docs' },
  }),
  r('getOpenApi', 200, json, { openapi: '3.1.0', info: {}, paths: {} }),
  r('getHealth', 200, 'application/json; charset=utf-8', { status: 'ok' }),
  r('getReadiness', 200, json, { status: 'ready' }),
  r('getReadiness', 503, problemJson, problem('service_unavailable', 'Service Unavailable', 503, 'not ready', '/readyz')),
  r('createOrder', 201, json, order, { Location: `/orders/${ID}`, ETag: '"v1"' }),
  r('createOrder', 201, json, order, { Location: `/orders/${ID}`, ETag: '"v1"', 'Idempotent-Replayed': 'true' }),
  r('createOrder', 422, problemJson, problem('idempotency_key_reused', 'Idempotency Key Reused', 422, 'other body')),
  r('createOrder', 409, problemJson, problem('idempotency_key_in_progress', 'Idempotency Key In Progress', 409, 'wait')),
  r('createOrder', 400, problemJson, problem('validation_error', 'Validation Error', 400,
    'customerId should not be empty, items must contain at least 1 elements')),
  r('createOrder', 401, problemJson, problem('unauthorized', 'Unauthorized', 401, 'missing bearer token'),
    { 'www-authenticate': 'Bearer realm="orders"' }),
  r('createOrder', 403, problemJson, problem('forbidden', 'Forbidden', 403, 'token lacks scope orders.write'),
    { 'WWW-Authenticate': 'Bearer error="insufficient_scope", scope="orders.write"' }),
  r('createOrder', 413, problemJson, problem('payload_too_large', 'Payload Too Large', 413, 'too large')),
  r('createOrder', 415, problemJson, problem('unsupported_media_type', 'Unsupported Media Type', 415, 'not json')),
  r('createOrder', 503, problemJson, problem('service_unavailable', 'Service Unavailable', 503, 'busy'), { 'Retry-After': '1' }),
  r('listOrders', 200, json, { items: [order], total: 1, limit: 20, offset: 0, next: null }),
  r('listOrders', 200, json, { items: [order], total: 9, limit: 1,
    next: '/orders?limit=1&cursor=AQAAAAAAAAAp8e4Hk2QvT7a1c9Xz3yL0Qw&status=paid&customerId=c%2B1' }),
  r('listOrders', 400, problemJson, problem('validation_error', 'Validation Error', 400, 'limit must be between 1 and 100')),
  r('getOrder', 200, json, order, { ETag: '"v1"' }),
  r('getOrder', 304, null, null, { ETag: '"v1"' }),
  r('getOrder', 404, problemJson, problem('not_found', 'Not Found', 404, 'no such order', '/orders/nope')),
  r('getOrder', 405, problemJson, problem('method_not_allowed', 'Method Not Allowed', 405, 'no'), { Allow: 'GET, PATCH' }),
  r('updateOrderStatus', 200, json, { ...order, status: 'paid', updatedAt: '2026-11-25T12:35:10.123Z' }, { ETag: '"v2"' }),
  r('updateOrderStatus', 412, problemJson, problem('precondition_failed', 'Precondition Failed', 412, 'stale', `/orders/${ID}`)),
  r('updateOrderStatus', 409, problemJson, problem('conflict', 'Conflict', 409, 'cannot change status from pending to shipped')),
  r('updateOrderStatus', 500, problemJson, { type: 'internal_error', title: 'Internal Server Error', status: 500, detail: 'x' }),
  r('listOrders', 504, problemJson, problem('gateway_timeout', 'Gateway Timeout', 504, 'slow')),
];

const { items: _dropped, ...orderWithoutItems } = order;
const bad = {
  'missing field': r('getOrder', 200, json, orderWithoutItems, { ETag: '"v1"' }),
  'extra field': r('getOrder', 200, json, { ...order, secret: 1 }, { ETag: '"v1"' }),
  'bad status value': r('getOrder', 200, json, { ...order, status: 'lost' }, { ETag: '"v1"' }),
  'timestamp without ms': r('getOrder', 200, json, { ...order, createdAt: '2026-11-25T12:34:56Z' }, { ETag: '"v1"' }),
  'uppercase id': r('getOrder', 200, json, { ...order, id: ID.toUpperCase() }, { ETag: '"v1"' }),
  'missing ETag': r('getOrder', 200, json, order),
  'weak ETag': r('getOrder', 200, json, order, { ETag: 'W/"v1"' }),
  'page without next': r('listOrders', 200, json, { items: [], total: 0, limit: 20, offset: 0 }),
  'next not a cursor link': r('listOrders', 200, json, { items: [], total: 0, limit: 20, offset: 0, next: '/orders?offset=20' }),
  '304 with a body': r('getOrder', 304, json, order, { ETag: '"v1"' }),
  'undocumented status': r('getServiceInfo', 418, problemJson, problem('bad_request', 'x', 418, 'x')),
  'unknown operation': r('deleteOrder', 204, '', null),
  'wrong content type': r('getOrder', 200, 'text/plain', order, { ETag: '"v1"' }),
  'problem as json': r('getOrder', 404, json, problem('not_found', 'Not Found', 404, 'x')),
  'wrong problem type': r('getOrder', 404, problemJson, problem('conflict', 'Conflict', 404, 'x')),
  'status field disagrees': r('getOrder', 404, problemJson, problem('not_found', 'Not Found', 400, 'x')),
  'missing Location': r('createOrder', 201, json, order, { ETag: '"v1"' }),
  'missing WWW-Authenticate': r('getOrder', 401, problemJson, problem('unauthorized', 'Unauthorized', 401, 'x')),
  'missing Allow': r('getOrder', 405, problemJson, problem('method_not_allowed', 'Method Not Allowed', 405, 'x')),
  'bad Retry-After': r('getOrder', 503, problemJson, problem('service_unavailable', 'Service Unavailable', 503, 'x'),
    { 'Retry-After': 'soon' }),
  'page limit too big': r('listOrders', 200, json, { items: [], total: 0, limit: 1000, offset: 0, next: null }),
  'no body': r('getOrder', 200, json, null, { ETag: '"v1"' }),
};

// Events: the document's own examples, a redelivery, and broken copies.
const asyncapi = JSON.parse(readFileSync(join(here, '../../asyncapi.json'), 'utf8'));
const created = asyncapi.components.messages.orderCreated.examples[0].payload;
const updated = asyncapi.components.messages.orderUpdated.examples[0].payload;
const goodEvents = [created, updated, created];
const edit = (event, f) => {
  const copy = structuredClone(event);
  f(copy);
  return copy;
};
const badEvents = {
  'event without previousStatus': edit(updated, (e) => delete e.data.previousStatus),
  'event skipping a status': edit(updated, (e) => (e.data.status = 'shipped')),
  'created event not pending': edit(created, (e) => (e.data.status = 'paid')),
  'event with bad traceparent': edit(created, (e) => (e.traceparent = '01-xyz')),
  'event with unknown type': edit(created, (e) => (e.type = 'order.deleted')),
  'event without ms in time': edit(created, (e) => (e.time = '2026-11-25T12:34:56Z')),
  'redelivery with other content': edit(created, (e) => (e.time = '2026-11-25T12:34:57.000Z')),
};

const dir = mkdtempSync(join(tmpdir(), 'spec-self-test-'));
let failures = 0;
let total = 0;
// wantOk: exit 0 with wantText in the output; otherwise exit 1 with wantText
// (by default: exactly one mismatch, the record under test).
function run(script, name, records, wantOk, wantText = wantOk ? undefined : /\b1 mismatches/) {
  total++;
  const file = join(dir, 'input.jsonl');
  writeFileSync(file, records.map((x) => JSON.stringify(x) + '\n').join(''));
  const p = spawnSync(process.execPath, [join(here, script), file], { encoding: 'utf8' });
  const textOk = wantText === undefined || (wantText instanceof RegExp ? wantText.test(p.stdout) : p.stdout.includes(wantText));
  const pass = p.status === (wantOk ? 0 : 1) && textOk;
  if (process.env.SELFTEST_VERBOSE) console.log(name, p.stdout);
  if (!pass) {
    failures++;
    console.log(`FAIL ${script}: ${name}: exit ${p.status}\n${p.stdout}${p.stderr}`);
  }
}

try {
  const R = 'validate-responses.mjs';
  run(R, 'documented responses pass', good, true, `${good.length} responses checked, 0 mismatches`);
  for (const [name, rec] of Object.entries(bad)) run(R, `catches ${name}`, [good[0], rec], false);
  run(R, 'empty input fails', [], false, 'no responses to check');
  const E = 'validate-events.mjs';
  run(E, 'documented events pass', goodEvents, true, '3 events checked (2 distinct ids), 0 mismatches');
  for (const [name, ev] of Object.entries(badEvents)) run(E, `catches ${name}`, [created, ev], false);
  run(E, 'empty input fails', [], false, 'no events to check');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(`self-test: ${total - failures} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
