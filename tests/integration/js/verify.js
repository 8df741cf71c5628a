// Verifies webhook deliveries with the official `standardwebhooks` npm package.
//
// Usage: node verify.js <npm prefix dir>   (the package is in <prefix>/node_modules)
// stdin:  {"cases":[{"secret":"whsec_...","headers":{...},"body_b64":"..."}]}
// stdout: {"version":"<package version>","results":[{"ok":true}|{"ok":false,"error":"..."}]}
"use strict";
const path = require("path");
const { createRequire } = require("module");

const prefix = process.argv[2];
if (!prefix) {
  console.error("usage: node verify.js <npm prefix dir>");
  process.exit(2);
}
const req = createRequire(path.join(path.resolve(prefix), "node_modules", "noop.js"));
const { Webhook } = req("standardwebhooks");
const version = req("standardwebhooks/package.json").version;

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (c) => { input += c; });
process.stdin.on("end", () => {
  const { cases } = JSON.parse(input);
  const results = cases.map((c) => {
    try {
      const wh = new Webhook(c.secret);
      // The raw bytes as a Buffer: the library signs payload.toString().
      wh.verify(Buffer.from(c.body_b64, "base64"), c.headers);
      return { ok: true };
    } catch (e) {
      return { ok: false, error: String((e && e.message) || e) };
    }
  });
  process.stdout.write(JSON.stringify({ version, results }));
});
