// `npm run build:browser [-- --check]`: type-checks browser/, bundles browser/tap2.ts into
// public/sdk/v1/tap2.js (one minified ES module) and fails when it is 4 KB or more gzipped.
// Each build is also kept as an immutable release, public/sdk/pinned/tap2.<hash>.js, with its
// Subresource Integrity hash in public/sdk/integrity.json (pages that pin it: PCI DSS 4.0 §6.4.3).
// Releases are never removed, since pages that pin one keep loading it.
// --check builds in memory and fails when the committed bundle or its release differs from the
// source, or a release listed in integrity.json is missing or changed (CI).
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const ENTRY = "browser/tap2.ts";
export const BUNDLE = "public/sdk/v1/tap2.js";
export const MANIFEST = "public/sdk/integrity.json";
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

const integrityOf = (text) => `sha384-${createHash("sha384").update(text).digest("base64")}`;
const release = `/sdk/pinned/tap2.${createHash("sha256").update(code).digest("hex").slice(0, 16)}.js`;
const fileOf = (path) => `public${path}`;
const manifest = existsSync(MANIFEST) ? JSON.parse(readFileSync(MANIFEST, "utf8")) : { latest: null, releases: {} };
const wanted = { latest: release, releases: { ...manifest.releases, [release]: integrityOf(code) } };

if (check) {
  const problems = [];
  if ((existsSync(BUNDLE) ? readFileSync(BUNDLE, "utf8") : null) !== code) problems.push(`${BUNDLE} is not the build of ${ENTRY}`);
  if (JSON.stringify(manifest) !== JSON.stringify(wanted)) problems.push(`${MANIFEST} does not name ${release} as the latest release with its integrity`);
  for (const [path, integrity] of Object.entries(manifest.releases)) {
    const file = fileOf(path);
    if (!existsSync(file)) problems.push(`${file}, a release pages may pin, is missing`);
    else if (integrityOf(readFileSync(file, "utf8")) !== integrity) problems.push(`${file} no longer has the integrity ${MANIFEST} promises`);
  }
  if (problems.length > 0) {
    console.error(`${problems.join("\n")}\nRun \`npm run build:browser\` and commit the result (never edit or delete a release).`);
    process.exit(1);
  }
  console.log(`${BUNDLE} and ${fileOf(release)} match ${ENTRY}.`);
} else {
  mkdirSync(dirname(BUNDLE), { recursive: true });
  writeFileSync(BUNDLE, code);
  mkdirSync(dirname(fileOf(release)), { recursive: true });
  writeFileSync(fileOf(release), code);
  writeFileSync(MANIFEST, `${JSON.stringify(wanted, null, 2)}\n`);
  console.log(`Release ${release} (${wanted.releases[release]}); ${MANIFEST} updated.`);
}
