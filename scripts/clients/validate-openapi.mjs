// `node scripts/clients/validate-openapi.mjs [FILE]`: validates the OpenAPI document (default
// clients/openapi.json, which `npm run generate -- --check` keeps equal to what the worker serves)
// with Redocly's OpenAPI 3.1 validator: its `spec` rules (structure, $refs, schemas, examples) plus
// the `recommended` ruleset. Exits 1 on any error or warning, so the document stays clean.
import { createConfig, formatProblems, lintFromString } from "@redocly/openapi-core";
import { readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { ROOT } from "../lib/localWorker.mjs";

const file = process.argv[2] ?? join(ROOT, "clients", "openapi.json");

const config = await createConfig({
  extends: ["recommended"],
  rules: {
    // The committed document names the local dev server (in development the worker names a loopback request's origin).
    "no-server-example.com": "off",
    // A private API: there is no licence to state.
    "info-license": "off",
    // /v1/openapi.json and /docs take no input, so they have no 4xx answer; the workerd contract test
    // (test/api/openapiContract.test.ts) checks that every other operation declares its 4xx answers.
    "operation-4xx-response": "off",
    // Stricter than `recommended`: every example must validate against its schema.
    "no-invalid-media-type-examples": "error",
    "no-invalid-schema-examples": "error",
    "no-invalid-parameter-examples": "error",
    "operation-operationId": "error",
    "operation-operationId-unique": "error",
    "security-defined": "error",
  },
});
const source = readFileSync(file, "utf8");
const doc = JSON.parse(source);
if (doc.openapi !== "3.1.0") {
  console.error(`${relative(ROOT, file)}: openapi is ${doc.openapi}, expected 3.1.0`);
  process.exit(1);
}
const problems = await lintFromString({ source, absoluteRef: file, config });
if (problems.length > 0) {
  formatProblems(problems, { format: "stylish", totals: { errors: 0, warnings: 0, ignored: 0 }, version: "", maxProblems: 100 });
  console.error(`${relative(ROOT, file)}: ${problems.length} problem(s) from the OpenAPI 3.1 validator.`);
  process.exit(1);
}
const operations = Object.values(doc.paths).reduce((n, item) => n + Object.keys(item).length, 0);
console.log(`${relative(ROOT, file)}: valid OpenAPI ${doc.openapi} (${operations} operations, Redocly recommended + spec rules).`);
