// `npm run build:browser [-- --check]`: type-checks browser/, bundles browser/tap2.ts into
// public/sdk/v1/tap2.js (one minified ES module) and fails when it is 4 KB or more gzipped.
// --check builds in memory and fails when the committed bundle differs from the source (CI).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const ENTRY = "browser/tap2.ts";
export const BUNDLE = "public/sdk/v1/tap2.js";
const MAX_GZIP_BYTES = 4096;
const check = process.argv.includes("--check");

const tsc = spawnSync("tsc", ["--noEmit", "-p", "browser/tsconfig.json"], { stdio: "inherit", shell: process.platform === "win32" });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

const result = await build({
  entryPoints: [ENTRY],
  bundle: true,
  format: "esm",
  minify: true,
  target: "es2020",
  legalComments: "none",
  write: false,
  logLevel: "warning",
});
const code = result.outputFiles[0].text;
const gzipped = gzipSync(code, { level: 9 }).length;
console.log(`${BUNDLE}: ${code.length} bytes, ${gzipped} bytes gzipped (limit ${MAX_GZIP_BYTES})`);
if (gzipped >= MAX_GZIP_BYTES) {
  console.error(`The drop-in script is ${gzipped} bytes gzipped, over the ${MAX_GZIP_BYTES}-byte budget.`);
  process.exit(1);
}

if (check) {
  const committed = existsSync(BUNDLE) ? readFileSync(BUNDLE, "utf8") : null;
  if (committed !== code) {
    console.error(`${BUNDLE} is not the build of ${ENTRY}: run \`npm run build:browser\` and commit the result.`);
    process.exit(1);
  }
  console.log(`${BUNDLE} matches ${ENTRY}.`);
} else {
  mkdirSync(dirname(BUNDLE), { recursive: true });
  writeFileSync(BUNDLE, code);
}
