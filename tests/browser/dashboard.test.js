// The dashboard (GET /ui) in a real browser: Debian's chromium driven by the
// npm package playwright-core. Run by tests/integration/test_dashboard.py,
// which starts the server and a webhook receiver and passes:
//
//   BASE_URL     http://127.0.0.1:<port> of the server
//   KEY          a tenant key with the ingest, read and manage scopes
//   FAIL_PATH    the receiver path that answers 500 (a subscription posts there)
//   SCREENSHOT   where to save the final screenshot (PNG)
//   PW_PREFIX    npm prefix holding playwright-core (default /tmp/triggers-ui-npm)
//   CHROMIUM     the browser binary (default /usr/bin/chromium)
//
// Protocol with the wrapper: when the dead letter is on screen this script
// prints "@@ switch <FAIL_PATH>" on stdout and waits for a line "ok" on stdin
// (the wrapper then makes that path answer 200). Every wait has a deadline
// (no fixed sleeps); any failure exits non-zero with a message saying what
// was expected, and saves a screenshot next to SCREENSHOT.
'use strict';

const path = require('path');
const fs = require('fs');
const readline = require('readline');
const { createRequire } = require('module');

const BASE_URL = need('BASE_URL').replace(/\/$/, '');
const KEY = need('KEY');
const FAIL_PATH = need('FAIL_PATH');
const SCREENSHOT = need('SCREENSHOT');
const PW_PREFIX = process.env.PW_PREFIX || '/tmp/triggers-ui-npm';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
  '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-default-apps',
  '--metrics-recording-only',
];
const CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; " +
  "script-src 'self'; frame-ancestors 'none'";

function need(name) {
  const v = process.env[name];
  if (!v) fail('environment variable ' + name + ' is required');
  return v;
}

function log(...args) {
  process.stdout.write('[dashboard] ' + args.join(' ') + '\n');
}

function fail(message) {
  process.stderr.write('FAIL: ' + message + '\n');
  process.exit(1);
}

class TestFailure extends Error {}

function check(cond, message) {
  if (!cond) throw new TestFailure(message);
}

// Waits for `selector` to be attached and visible, failing with `what`.
async function waitVisible(page, selector, timeout, what) {
  try {
    await page.waitForSelector(selector, { state: 'visible', timeout });
  } catch (e) {
    throw new TestFailure(what + ' (waited ' + timeout / 1000 + ' s for ' + selector + ')');
  }
}

async function waitGone(page, selector, timeout, what) {
  try {
    await page.waitForSelector(selector, { state: 'detached', timeout });
  } catch (e) {
    throw new TestFailure(what + ' (waited ' + timeout / 1000 + ' s for ' + selector + ' to go away)');
  }
}

// Polls fn() in the page until it returns a truthy value.
async function waitFor(page, fn, arg, timeout, what) {
  try {
    const h = await page.waitForFunction(fn, arg, { timeout, polling: 100 });
    return await h.jsonValue();
  } catch (e) {
    throw new TestFailure(what + ' (waited ' + timeout / 1000 + ' s)');
  }
}

async function api(method, p, body) {
  const headers = { Authorization: 'Bearer ' + KEY };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(BASE_URL + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch (e) { /* not JSON */ }
  return { status: res.status, json, text };
}

async function ingest(event) {
  const r = await api('POST', '/v1/events', event);
  check(r.status === 202 && r.json && r.json.id, 'POST /v1/events answered ' + r.status + ': ' + r.text.slice(0, 300));
  return r.json.id;
}

// Asks the wrapper to switch the failing receiver path to 200 and waits for its "ok".
const stdinLines = readline.createInterface({ input: process.stdin });
const lineWaiters = [];
stdinLines.on('line', (l) => {
  const w = lineWaiters.shift();
  if (w) w(l.trim());
});
function askWrapper(command, timeoutMs) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new TestFailure('the wrapper did not answer "' + command + '"')), timeoutMs);
    lineWaiters.push((l) => {
      clearTimeout(t);
      if (l === 'ok') resolve();
      else reject(new TestFailure('the wrapper answered ' + JSON.stringify(l) + ' to "' + command + '"'));
    });
    process.stdout.write('@@ ' + command + '\n');
  });
}

async function launch(chromium) {
  const opts = { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60000 };
  try {
    return await chromium.launch(opts);
  } catch (e) {
    log('browser launch failed, retrying once:', String(e && e.message ? e.message : e).split('\n')[0]);
    return chromium.launch(opts);
  }
}

async function main() {
  const req = createRequire(path.join(path.resolve(PW_PREFIX), 'node_modules', 'noop.js'));
  const { chromium } = req('playwright-core');
  log('playwright-core', req('playwright-core/package.json').version, '· chromium', CHROMIUM);
  fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });

  const browser = await launch(chromium);
  log('browser', browser.version());
  const problems = []; // script errors and CSP violations in the page
  let page;
  try {
    const context = await browser.newContext({ viewport: { width: 1440, height: 1000 }, deviceScaleFactor: 1 });
    page = await context.newPage();
    page.on('pageerror', (e) => problems.push('page error: ' + e.message));
    page.on('console', (m) => {
      const text = m.text();
      if (/Content.Security.Policy|Refused to/i.test(text)) problems.push('CSP: ' + text);
      else if (m.type() === 'error') log('console error:', text);
    });
    // The page must not talk to anything but this node.
    const base = new URL(BASE_URL);
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (u.protocol !== 'data:' && u.host !== base.host) problems.push('request to another origin: ' + r.url());
    });

    // 1. The page and its headers.
    const resp = await page.goto(BASE_URL + '/ui', { waitUntil: 'load' });
    check(resp && resp.status() === 200, 'GET /ui answered ' + (resp && resp.status()));
    const h = resp.headers();
    check(h['content-security-policy'] === CSP, 'GET /ui Content-Security-Policy is ' + h['content-security-policy']);
    check(h['x-content-type-options'] === 'nosniff', 'GET /ui lacks X-Content-Type-Options: nosniff');
    check(/^text\/html/.test(h['content-type'] || ''), 'GET /ui Content-Type is ' + h['content-type']);
    check(!!h.etag, 'GET /ui has no ETag');
    await waitVisible(page, '#node-status[data-state="ok"]', 15000, 'the node status pill never said the node is healthy');
    check(await page.isVisible('#key-input'), 'the key form is not shown before connecting');

    // 2. A refused key is said so inline, and nothing is stored.
    await page.fill('#key-input', 'trg_' + 'x'.repeat(43));
    await page.click('#connect');
    await waitVisible(page, '#key-error', 10000, 'a refused key showed no error');
    const refused = await page.textContent('#key-error');
    check(/refused/i.test(refused), 'the error for a refused key says ' + JSON.stringify(refused));
    check(await page.evaluate(() => sessionStorage.getItem('triggers.key')) === null,
      'a refused key was kept in sessionStorage');

    // 3. Connect with the real key.
    await page.fill('#key-input', KEY);
    await page.click('#connect');
    await waitVisible(page, '#dashboard', 15000, 'the dashboard did not open after Connect');
    check(await page.evaluate(() => sessionStorage.getItem('triggers.key')) === KEY,
      'the key is not in sessionStorage under "triggers.key"');
    check(!(await page.isVisible('#connect-panel')), 'the key form is still shown after connecting');
    await waitVisible(page, '#stream-status[data-state="live"]', 20000, 'the live event stream did not connect');
    await waitFor(page, () => document.querySelectorAll('[data-testid="subscription"]').length >= 2, null, 15000,
      'the subscriptions table does not list the two subscriptions');

    // 4. An ingested event appears live. Markup in its fields is shown as
    // text, never run (checked here in the row, and in the drawer below).
    const xss = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>';
    const eventId = await ingest({
      type: 'order.created', subject: 'order/42 <i>vip</i>', source: xss, data: { order_id: 42, total: 19.5, note: xss },
    });
    log('ingested', eventId);
    const row = '[data-testid="event-row"][data-event-id="' + eventId + '"]';
    await waitVisible(page, row, 15000, 'the ingested event ' + eventId + ' did not appear in Live events');
    const cell = await page.textContent(row);
    check(cell.includes('order/42 <i>vip</i>'), 'the event subject is not shown as plain text: ' + JSON.stringify(cell));
    check(await page.locator(row + ' i').count() === 0, 'markup in the event subject became an element');

    // More traffic, so that the chart and the table have something to show.
    const types = ['order.paid', 'order.shipped', 'invoice.created', 'user.signed_up', 'order.created'];
    for (let i = 0; i < 12; i++) {
      await ingest({ type: types[i % types.length], subject: 'order/' + (1000 + i), data: { n: i } });
    }
    await waitFor(page, () => document.querySelectorAll('[data-testid="event-row"]').length >= 13, null, 15000,
      'Live events does not show all 13 ingested events');
    const firstRow = await page.getAttribute('#live-body tr:first-child', 'data-event-id');
    check(firstRow !== eventId, 'Live events is not newest first');

    // 5. The delivery to the failing endpoint becomes a dead letter.
    const dead = '[data-testid="dead-letter"][data-event-id="' + eventId + '"]';
    await waitVisible(page, dead, 30000, 'the failed delivery of ' + eventId + ' did not show up in Dead letters');
    const deliveryId = await page.getAttribute(dead, 'data-delivery-id');
    log('dead letter', deliveryId);
    await waitFor(page, () => {
      const t = document.querySelector('[data-testid="total-ingested"]');
      return t && Number(t.textContent.replace(/[^0-9]/g, '')) >= 13;
    }, null, 20000, 'the Throughput legend does not count the 13 ingested events');
    await waitFor(page, () => {
      const d = document.querySelector('[data-testid="q-dead"]');
      return d && Number(d.textContent.replace(/[^0-9]/g, '')) >= 1;
    }, null, 20000, 'the queue card does not count the dead delivery');
    check(await page.locator('#rates-chart path.line').count() === 3, 'the rates chart does not draw three lines');

    // 6. The event's drawer shows both deliveries and the failed attempts.
    await page.click(row);
    await waitVisible(page, '#drawer', 5000, 'clicking the event did not open its details');
    const dlv = '#drawer [data-testid="delivery"][data-delivery-id="' + deliveryId + '"]';
    await waitVisible(page, dlv + '[data-status="dead"]', 15000, 'the drawer does not show the dead delivery');
    const failedAttempts = await page.locator(dlv + ' [data-testid="attempt"][data-status-code="500"]').count();
    check(failedAttempts >= 1, 'the drawer shows no failed attempt (HTTP 500) of the dead delivery');
    await waitVisible(page, '#drawer [data-testid="delivery"][data-status="succeeded"]', 15000,
      'the drawer does not show the succeeded delivery to the healthy endpoint');
    const json = await page.textContent('#drawer-json');
    check(json.includes('"order_id": 42'), 'the drawer does not show the event payload');
    const facts = await page.textContent('#drawer-facts');
    check(facts.includes('<img src=x onerror='), 'the event source is not shown as plain text: ' + JSON.stringify(facts));
    check(await page.locator('#drawer img, #drawer script').count() === 0, 'markup in the event became elements');
    check(await page.evaluate(() => window.__xss === undefined), 'markup from event data was executed');
    await page.click('#drawer-close');
    await waitGone(page, '#drawer:not([hidden])', 5000, 'the drawer did not close');

    // 7. Fix the endpoint, click Retry: the dead letter goes away and the
    // delivery succeeds.
    await askWrapper('switch ' + FAIL_PATH, 15000);
    await page.click(dead + ' [data-testid="retry"]');
    await waitGone(page, dead, 20000, 'the retried delivery is still listed as a dead letter');
    await page.click(row);
    await waitVisible(page, dlv + '[data-status="succeeded"]', 20000, 'the retried delivery did not become succeeded');
    const okAttempts = await page.locator(dlv + ' [data-testid="attempt"][data-outcome="success"]').count();
    check(okAttempts === 1, 'the retried delivery shows ' + okAttempts + ' successful attempts, not 1');
    log('retried delivery', deliveryId, 'succeeded');
    await page.click('#drawer-close');
    await waitGone(page, '#drawer:not([hidden])', 5000, 'the drawer did not close');

    // 8. The screenshot: the dashboard after the retry (dead letters empty
    // again), and one with the event's details open.
    await waitFor(page, () => {
      const d = document.querySelector('[data-testid="q-dead"]');
      return d && d.textContent.trim() === '0';
    }, null, 20000, 'the queue card still counts a dead delivery after the retry');
    await waitGone(page, '.toast-show', 10000, 'the notice of the retry did not go away');
    await page.mouse.move(0, 0);
    // The whole page in one viewport (a fullPage shot would repeat the sticky header).
    await page.evaluate(() => window.scrollTo(0, 0));
    const height = await page.evaluate(() => document.documentElement.scrollHeight);
    await page.setViewportSize({ width: 1440, height: Math.max(900, Math.ceil(height)) });
    await page.screenshot({ path: SCREENSHOT, animations: 'disabled' });
    await page.setViewportSize({ width: 1440, height: 1000 });
    log('screenshot', SCREENSHOT);
    await page.click(row);
    await waitVisible(page, dlv + '[data-status="succeeded"]', 10000, 'the drawer did not reopen');
    await page.evaluate(() => window.scrollTo(0, 0));
    const drawerShot = SCREENSHOT.replace(/\.png$/, '') + '-event.png';
    await page.screenshot({ path: drawerShot, animations: 'disabled' });
    log('screenshot', drawerShot);

    // 9. Disconnect forgets the key.
    await page.click('#drawer-close');
    await page.click('#disconnect');
    await waitVisible(page, '#key-input', 5000, 'Disconnect did not bring back the key form');
    check(await page.evaluate(() => sessionStorage.getItem('triggers.key')) === null,
      'Disconnect left the key in sessionStorage');

    check(problems.length === 0, 'problems in the page:\n  ' + problems.join('\n  '));
  } catch (e) {
    if (page) {
      const shot = SCREENSHOT.replace(/\.png$/, '') + '-failure.png';
      await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
      process.stderr.write('screenshot of the failure: ' + shot + '\n');
    }
    if (problems.length) process.stderr.write('problems in the page:\n  ' + problems.join('\n  ') + '\n');
    throw e;
  } finally {
    await browser.close().catch(() => {});
  }
}

main().then(() => {
  log('PASS');
  process.exit(0);
}, (e) => {
  fail(e instanceof TestFailure ? e.message : (e && e.stack) || String(e));
});
