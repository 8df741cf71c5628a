// Checks docs/openapi.yaml with real validators from npm. Run by
// tests/integration/test_openapi.py:
//
//   node validate.mjs document <openapi.json>
//       the document against the OpenAPI 3.1 schema
//       (@seriousme/openapi-schema-validator);
//   node validate.mjs traffic <openapi.json> <traffic.jsonl>
//       every recorded exchange (tests/integration/harness.py writes them
//       with TRIGGERS_IT_RECORD) against the document, with ajv (JSON Schema
//       2020-12, the dialect of OpenAPI 3.1):
//       - the path and method are documented (else the answer must be the
//         router's 404 / 405 error);
//       - the status is documented for the operation (or is one of the
//         HTTP layer's errors that info.description lists for any path);
//       - the response's media type, body and required headers match;
//       - a request that got a 2xx matches the document (path, query and
//         header parameters, body): the document must not refuse what the
//         server accepts. (A 4xx request may break the document: that is
//         what the tests send it for.)
//
// Environment: OPENAPI_NPM_PREFIX, the npm prefix holding the packages.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const PREFIX = process.env.OPENAPI_NPM_PREFIX || '/tmp/triggers-openapi-npm';
const requireFromPrefix = createRequire(path.join(PREFIX, 'package.json'));
const load = async (name) => import(pathToFileURL(requireFromPrefix.resolve(name)).href);

async function validateDocument(file) {
  const { Validator } = await load('@seriousme/openapi-schema-validator');
  const doc = JSON.parse(readFileSync(file, 'utf8'));
  const res = await new Validator().validate(doc);
  if (!res.valid) {
    console.error('the document is not valid OpenAPI:', JSON.stringify(res.errors, null, 2));
    process.exit(1);
  }
  console.log(`document: valid OpenAPI ${doc.openapi}, ${Object.keys(doc.paths).length} paths`);
}

// Errors the HTTP layer may answer on any path (info.description).
const HTTP_LAYER = {
  400: 'invalid_request', 413: 'payload_too_large', 431: 'request_header_too_large',
  501: 'not_implemented', 503: 'unavailable',
};

// Percent-decoding that keeps what does not decode (tests send malformed ids).
function decode(s) {
  try { return decodeURIComponent(s); } catch { return s; }
}

// A JSON pointer (as a URI fragment): base, already a pointer, then raw keys.
function pointer(base, ...keys) {
  return base + keys.map((k) => '/' + encodeURIComponent(String(k).replace(/~/g, '~0').replace(/\//g, '~1'))).join('');
}

class TrafficChecker {
  constructor(doc, ajv) {
    this.doc = doc;
    this.ajv = ajv;
    this.cache = new Map();
    // Literal paths first: /v1/events/batch is never an {id}.
    this.paths = Object.keys(doc.paths).sort((a, b) => a.includes('{') - b.includes('{'));
    this.covered = new Set();
  }

  validator(ptr) {
    if (!this.cache.has(ptr)) this.cache.set(ptr, this.ajv.compile({ $ref: 'openapi.json#' + ptr }));
    return this.cache.get(ptr);
  }

  check(ptr, value, what, problems) {
    const v = this.validator(ptr);
    if (!v(value)) problems.push(`${what}: ${this.ajv.errorsText(v.errors, { dataVar: what })}`);
  }

  match(pathname) {
    for (const p of this.paths) {
      const names = [];
      const re = new RegExp('^' + p.replace(/[.*+?^$()|[\]\\]/g, '\\$&')
        .replace(/\{([^}]+)\}/g, (_, n) => { names.push(n); return '([^/]+)'; }) + '$');
      const m = re.exec(pathname);
      if (m) return { template: p, params: Object.fromEntries(names.map((n, i) => [n, decode(m[i + 1])])) };
    }
    return null;
  }

  errorBody(x, problems, code) {
    let body;
    try { body = JSON.parse(x.response_body); } catch { problems.push('error body is not JSON'); return; }
    this.check(pointer('', 'components', 'schemas', 'Error'), body, 'error body', problems);
    if (code && body?.error?.code !== code) problems.push(`error code ${body?.error?.code}, expected ${code}`);
  }

  exchange(x) {
    const problems = [];
    const url = new URL(x.path, 'http://triggers.invalid');
    const method = x.method.toLowerCase();
    if (method === 'options') {
      if (x.status !== 204) problems.push(`OPTIONS (CORS preflight) answered ${x.status}, not 204`);
      return problems;
    }
    const found = this.match(url.pathname);
    if (!found) {
      if (x.status !== 404) problems.push(`undocumented path answered ${x.status}, not 404`);
      else this.errorBody(x, problems, 'not_found');
      return problems;
    }
    const item = this.doc.paths[found.template];
    const op = item[method];
    if (!op) {
      if (x.status !== 405) problems.push(`undocumented method answered ${x.status}, not 405`);
      else {
        this.errorBody(x, problems, 'method_not_allowed');
        if (!x.response_headers.allow) problems.push('405 without Allow');
      }
      return problems;
    }
    const opPtr = pointer('', 'paths', found.template, method);
    this.covered.add(`${x.method} ${found.template} ${x.status}`);
    this.response(x, op, opPtr, problems);
    if (x.status >= 200 && x.status < 300) this.request(x, op, opPtr, found.params, url, problems);
    return problems;
  }

  response(x, op, opPtr, problems) {
    const key = String(x.status);
    const spec = op.responses[key] ? this.deref(op.responses[key]) : null;
    if (!spec) {
      if (HTTP_LAYER[x.status]) this.errorBody(x, problems, HTTP_LAYER[x.status]);
      else problems.push(`status ${x.status} is not documented`);
      return;
    }
    const respPtr = op.responses[key].$ref ? op.responses[key].$ref.slice(1) : pointer(opPtr, 'responses', key);
    for (const [name, h] of Object.entries(spec.headers || {})) {
      const hd = this.deref(h);
      const value = x.response_headers[name.toLowerCase()];
      if (value === undefined) {
        if (hd.required) problems.push(`response header ${name} is missing`);
        continue;
      }
      const hptr = h.$ref ? h.$ref.slice(1) : pointer(respPtr, 'headers', name);
      this.check(hptr + '/schema', value, `header ${name}`, problems);
    }
    const content = spec.content || {};
    const body = x.response_body || '';
    if (Object.keys(content).length === 0) {
      if (body.length) problems.push(`status ${x.status} should have no body`);
      return;
    }
    const type = (x.response_headers['content-type'] || '').split(';')[0].trim();
    if (!content[type]) {
      problems.push(`response content type ${type || '(none)'} is not one of ${Object.keys(content)}`);
      return;
    }
    if (type !== 'application/json') return;
    let parsed;
    try { parsed = JSON.parse(body); } catch { problems.push('response body is not JSON'); return; }
    this.check(pointer(respPtr, 'content', type, 'schema'), parsed, 'response body', problems);
  }

  request(x, op, opPtr, pathParams, url, problems) {
    const before = problems.length;
    (op.parameters || []).forEach((p0, i) => {
      const p = this.deref(p0);
      const ptr = (p0.$ref ? p0.$ref.slice(1) : pointer(opPtr, 'parameters', i)) + '/schema';
      let value;
      if (p.in === 'path') value = pathParams[p.name];
      else if (p.in === 'query') value = url.searchParams.has(p.name) ? url.searchParams.get(p.name) : undefined;
      else if (p.in === 'header') value = x.request_headers[p.name.toLowerCase()];
      if (value === undefined) {
        if (p.required) problems.push(`request: ${p.in} parameter ${p.name} is missing`);
        return;
      }
      const schema = this.deref(p.schema);
      if (schema.type === 'integer' && /^-?\d+$/.test(value)) value = Number(value);
      this.check(ptr, value, `request ${p.in} parameter ${p.name}`, problems);
    });
    const rb = op.requestBody ? this.deref(op.requestBody) : null;
    const body = x.request_body;
    if (rb && (body === null || body === '')) {
      if (rb.required) problems.push('request: the body is required');
    } else if (rb && body) {
      const type = (x.request_headers['content-type'] || '').split(';')[0].trim().toLowerCase();
      if (!rb.content[type]) problems.push(`request content type ${type} is not documented`);
      else {
        let parsed;
        try { parsed = JSON.parse(body); } catch { problems.push('request body is not JSON'); }
        if (parsed !== undefined) {
          this.check(pointer(opPtr, 'requestBody', 'content', type, 'schema'), parsed, 'request body', problems);
        }
      }
    }
    // A batch answers 200 with per-entry errors for entries that break the rules.
    if (problems.length > before && x.status === 200) {
      let res;
      try { res = JSON.parse(x.response_body); } catch { /* reported above */ }
      if (res && res.failed_count > 0) problems.length = before;
    }
  }

  deref(obj) {
    let o = obj;
    while (o && o.$ref) {
      o = o.$ref.slice(2).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
        .reduce((acc, k) => acc[k], this.doc);
    }
    return o;
  }
}

async function validateTraffic(docFile, trafficFile) {
  const { default: Ajv2020 } = await load('ajv/dist/2020.js');
  const { default: addFormats } = await load('ajv-formats');
  const doc = JSON.parse(readFileSync(docFile, 'utf8'));
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  addFormats(ajv);
  ajv.addSchema(doc, 'openapi.json');
  const checker = new TrafficChecker(doc, ajv);
  const lines = readFileSync(trafficFile, 'utf8').split('\n').filter(Boolean);
  let failures = 0;
  for (const line of lines) {
    const x = JSON.parse(line);
    const problems = checker.exchange(x);
    if (problems.length) {
      failures++;
      if (failures <= 40) {
        console.error(`FAIL ${x.method} ${x.path} -> ${x.status}\n  ${problems.join('\n  ')}`);
        console.error(`  request body: ${String(x.request_body).slice(0, 300)}`);
        console.error(`  response body: ${String(x.response_body).slice(0, 300)}`);
      }
    }
  }
  const ops = new Set([...checker.covered].map((c) => c.split(' ').slice(0, 2).join(' ')));
  console.log(`traffic: ${lines.length} exchanges, ${failures} not matching the document; ` +
              `${ops.size} operations and ${checker.covered.size} (operation, status) pairs seen`);
  if (process.env.OPENAPI_PRINT_COVERAGE) console.log([...checker.covered].sort().join('\n'));
  if (failures) process.exit(1);
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'document' && args.length === 1) await validateDocument(args[0]);
else if (cmd === 'traffic' && args.length === 2) await validateTraffic(args[0], args[1]);
else {
  console.error('usage: validate.mjs document <openapi.json> | traffic <openapi.json> <traffic.jsonl>');
  process.exit(2);
}
