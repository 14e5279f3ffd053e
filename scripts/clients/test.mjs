// `npm run test:clients [-- --only typescript,python,php]`: starts the worker (wrangler dev, free port,
// fresh migrated state), creates merchants and keys through the admin API, runs each client's tests
// against it with TAP2_* environment variables, prints a summary, and always stops the worker.
// PHP is skipped, with a message, only when `php` is missing outside CI; in CI a missing php fails.
import { spawnSync } from "node:child_process";
import { localSecrets, ROOT, startLocalWorker, TOOL_ENV } from "../lib/localWorker.mjs";

const SECRETS = localSecrets("clients-test");

const METHODS = ["visa", "mastercard", "apple_pay", "google_pay", "paypal", "klarna", "ideal"];
const OFFERS = [
  { offer_id: "applepay_5off", method_id: "apple_pay", title: "5% back with Apple Pay", discount_type: "percent", discount_value: 5 },
  { offer_id: "paypal_2off", method_id: "paypal", title: "$2 off with PayPal", discount_type: "fixed", discount_value: 200, currency: "USD" },
];

const SUITES = {
  typescript: {
    label: "TypeScript",
    steps: [
      ["npx", ["tsc", "-p", "clients/typescript"]],
      ["npx", ["vitest", "run", "--config", "clients/typescript/vitest.config.ts"]],
    ],
  },
  python: {
    label: "Python",
    requires: "python3",
    env: { PYTHONDONTWRITEBYTECODE: "1" },
    steps: [["python3", ["-m", "unittest", "discover", "-s", "clients/python/tests", "-t", "clients/python", "-v"]]],
  },
  php: {
    label: "PHP",
    requires: "php",
    // Debian's php-cli has no curl: `apt-get install -y php-cli php-curl`.
    check: ["php", ["-r", "exit(extension_loaded('curl') && extension_loaded('json') ? 0 : 1);"], "the php curl or json extension is missing (apt-get install -y php-curl)"],
    steps: [["php", ["clients/php/tests/run.php"]]],
  },
};

const onlyIndex = process.argv.indexOf("--only");
const selected = onlyIndex === -1 ? Object.keys(SUITES) : process.argv[onlyIndex + 1].split(",");
for (const name of selected) {
  if (!SUITES[name]) {
    console.error(`unknown client "${name}" (known: ${Object.keys(SUITES).join(", ")})`);
    process.exit(2);
  }
}

function hasCommand(cmd) {
  return spawnSync(cmd, ["--version"], { stdio: "ignore", env: TOOL_ENV }).status === 0;
}

async function adminCall(baseUrl, path, body) {
  const send = () =>
    fetch(`${baseUrl}${path}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${SECRETS.ADMIN_TOKEN}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  let res;
  try {
    res = await send();
  } catch {
    // wrangler dev restarts the worker when a source file changes (local runs while editing): wait, once more.
    await worker.waitReady(60_000);
    res = await send();
  }
  const text = await res.text();
  if (res.status !== 201) throw new Error(`POST ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/** One merchant (secret + publishable key) and one tightly rate-limited merchant per client, so suites never share a bucket. */
async function provision(baseUrl, name) {
  const merchantId = `m_clients_${name}`;
  await adminCall(baseUrl, "/v1/admin/merchants", {
    merchant_id: merchantId,
    name: `Client tests (${name})`,
    tier: "scale",
    methods: METHODS,
    features: { targeted_offers: true, cross_merchant: false },
    offers: OFFERS,
  });
  const secret = await adminCall(baseUrl, `/v1/admin/merchants/${merchantId}/keys`, { type: "secret" });
  const publishable = await adminCall(baseUrl, `/v1/admin/merchants/${merchantId}/keys`, { type: "publishable" });
  const limitedId = `${merchantId}_limited`;
  await adminCall(baseUrl, "/v1/admin/merchants", {
    merchant_id: limitedId,
    name: `Client tests (${name}, rate limited)`,
    tier: "starter",
    methods: METHODS,
    rate_limit: { requests_per_hour: 3600, burst: 2 },
  });
  const limited = await adminCall(baseUrl, `/v1/admin/merchants/${limitedId}/keys`, { type: "secret" });
  return {
    TAP2_BASE_URL: baseUrl,
    TAP2_MERCHANT_ID: merchantId,
    TAP2_SECRET_KEY: secret.key,
    TAP2_PUBLISHABLE_KEY: publishable.key,
    TAP2_LIMITED_SECRET_KEY: limited.key,
    TAP2_METHODS: METHODS.join(","),
  };
}

const results = [];
let worker = null; // killed with its state on Ctrl-C too (scripts/lib/localWorker.mjs)

try {
  console.log("Starting the worker (wrangler dev, fresh migrated state)…");
  worker = await startLocalWorker({ vars: SECRETS });
  console.log(`Worker ready at ${worker.baseUrl}`);

  for (const name of selected) {
    const suite = SUITES[name];
    if (suite.requires && !hasCommand(suite.requires)) {
      if (process.env.CI) {
        results.push({ name: suite.label, status: "FAILED", note: `${suite.requires} is not installed (required in CI)` });
      } else {
        results.push({ name: suite.label, status: "SKIPPED", note: `${suite.requires} is not installed` });
      }
      continue;
    }
    if (suite.check && spawnSync(suite.check[0], suite.check[1], { stdio: "ignore", env: TOOL_ENV }).status !== 0) {
      results.push({ name: suite.label, status: process.env.CI ? "FAILED" : "SKIPPED", note: suite.check[2] });
      continue;
    }
    const env = { ...TOOL_ENV, ...suite.env, ...(await provision(worker.baseUrl, name)) };
    console.log(`\n── ${suite.label} client ──`);
    const started = Date.now();
    let failedStep = null;
    for (const [cmd, cmdArgs] of suite.steps) {
      const res = spawnSync(cmd, cmdArgs, { cwd: ROOT, env, stdio: "inherit" });
      if (res.status !== 0) {
        failedStep = `${cmd} ${cmdArgs.join(" ")} exited ${res.status ?? res.signal}`;
        break;
      }
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    results.push({ name: suite.label, status: failedStep ? "FAILED" : "passed", note: failedStep ?? `${seconds} s` });
  }
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  if (worker) console.error(`\nLast wrangler output:\n${worker.logs()}`);
  results.push({ name: "setup", status: "FAILED", note: "the worker or the test merchants could not be set up" });
} finally {
  await worker?.stop();
}

console.log("\nClient tests against the local worker:");
for (const r of results) console.log(`  ${r.name.padEnd(11)} ${r.status.padEnd(8)} ${r.note}`);
process.exit(results.some((r) => r.status === "FAILED") || results.length === 0 ? 1 : 0);
