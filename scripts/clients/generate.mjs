// `npm run generate`: fetches the OpenAPI document from the local worker (wrangler dev, fresh state,
// no network), writes clients/openapi.json and regenerates clients/typescript/src/schema.d.ts.
//   npm run generate                  write both files
//   npm run generate -- --check       exit 1 when the committed files differ from a fresh generation (CI)
//   npm run generate -- --from FILE   generate from a saved document (or an http(s) URL) instead
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import openapiTS, { astToString, COMMENT_HEADER } from "openapi-typescript";
import { localSecrets, ROOT, startLocalWorker } from "../lib/localWorker.mjs";

export const DOCUMENT_FILE = join(ROOT, "clients", "openapi.json");
export const SCHEMA_FILE = join(ROOT, "clients", "typescript", "src", "schema.d.ts");
/** The documented local address; the real port is random, so the committed document names this one. */
const LOCAL_SERVER = "http://localhost:8787";

const args = process.argv.slice(2);
const check = args.includes("--check");
const fromIndex = args.indexOf("--from");
const from = fromIndex === -1 ? null : args[fromIndex + 1];

async function documentFromWorker() {
  const worker = await startLocalWorker({ vars: localSecrets("clients-test") });
  try {
    const res = await fetch(`${worker.baseUrl}/v1/openapi.json`);
    const text = await res.text();
    if (res.status !== 200) throw new Error(`GET /v1/openapi.json answered ${res.status}: ${text}`);
    const doc = JSON.parse(text);
    doc.servers = (doc.servers ?? []).map((s) => (s.url === worker.baseUrl ? { ...s, url: LOCAL_SERVER } : s));
    return doc;
  } finally {
    await worker.stop();
  }
}

async function loadDocument() {
  if (!from) return documentFromWorker();
  if (/^https?:\/\//.test(from)) {
    const res = await fetch(from);
    if (!res.ok) throw new Error(`GET ${from} answered ${res.status}`);
    return res.json();
  }
  return JSON.parse(readFileSync(from, "utf8"));
}

export async function renderSchema(doc) {
  const ast = await openapiTS(structuredClone(doc), { silent: true });
  return `${COMMENT_HEADER.replace(" */", " * Regenerate with `npm run generate` (from clients/openapi.json).\n */")}${astToString(ast)}`;
}

const doc = await loadDocument();
const outputs = new Map([
  [DOCUMENT_FILE, `${JSON.stringify(doc, null, 2)}\n`],
  [SCHEMA_FILE, await renderSchema(doc)],
]);

if (check) {
  const stale = [...outputs].filter(([file, text]) => !existsSync(file) || readFileSync(file, "utf8") !== text);
  if (stale.length > 0) {
    for (const [file] of stale) console.error(`stale: ${relative(ROOT, file)}`);
    console.error("The committed client files do not match the worker's OpenAPI document. Run `npm run generate` and commit.");
    process.exit(1);
  }
  console.log("clients/openapi.json and clients/typescript/src/schema.d.ts are up to date.");
} else {
  for (const [file, text] of outputs) {
    writeFileSync(file, text);
    console.log(`wrote ${relative(ROOT, file)}`);
  }
}
