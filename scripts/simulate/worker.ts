/**
 * The real worker for the simulation: `wrangler dev --test-scheduled` on a free loopback port over a
 * fresh temporary `--persist-to` directory (migrated with scripts/local-setup.mjs), with local-only
 * secrets. Its JSON log lines are counted so the simulation knows when the queues have drained.
 * The child runs in its own process group and is killed on stop, on exit and on Ctrl-C.
 *
 * The worker runs from a snapshot: `wrangler deploy --dry-run` bundles src/ once into the temporary
 * directory, next to a copy of wrangler.toml whose `main` is that bundle (wrangler dev wraps it only
 * to add its `/__scheduled` test route). `wrangler dev` reloads on every source change, which would
 * drop in-flight queue messages while someone edits src/ during a run; the snapshot also pins the
 * code the numbers belong to.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { wrangler } from "../local-setup.mjs";

export const SIM_SECRETS = {
  ADMIN_TOKEN: "simulate-admin-token-local-only",
  PII_KEY: "simulate-pii-key-0123456789abcdef0123456789abcdef",
  SIGNING_KEY: "simulate-signing-key-0123456789abcdef0123456789abcdef",
};

export interface Drain {
  /** Feedback events the consumer handled (stored, duplicate, dropped or poison). */
  feedbackHandled: number;
  feedbackStored: number;
  /** Analytics rows stored (decisions; this simulation asks for no offers). */
  analyticsStored: number;
  errors: string[];
}

export interface Worker {
  url: string;
  drain: Drain;
  /** Resolves true once `done()` holds, false after `timeoutMs`. */
  waitFor: (done: (d: Drain) => boolean, timeoutMs: number) => Promise<boolean>;
  stop: () => Promise<void>;
  tail: () => string;
}

const children = new Set<ChildProcess>();
function kill(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal); // its own process group: wrangler and the workerd it started
  } catch {
    /* already gone */
  }
}
process.on("exit", () => children.forEach((c) => kill(c, "SIGKILL")));
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(sig, () => {
    children.forEach((c) => kill(c, "SIGKILL"));
    process.exit(130);
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** wrangler.toml with its paths made absolute and `main` set to the snapshot bundle. */
export function snapshotConfig(toml: string, repo: string, bundle: string): string {
  const swaps: [RegExp, string][] = [
    [/^main\s*=.*$/m, `main = ${JSON.stringify(bundle)}`],
    [/^migrations_dir\s*=.*$/m, `migrations_dir = ${JSON.stringify(resolve(repo, "migrations"))}`],
    [/^directory\s*=.*$/m, `directory = ${JSON.stringify(resolve(repo, "public"))}`],
  ];
  for (const [pattern, replacement] of swaps) {
    if (!pattern.test(toml)) throw new Error(`wrangler.toml: no line matching ${pattern} to rewrite for the snapshot`);
    toml = toml.replace(pattern, replacement);
  }
  return toml;
}

const tempDirs = new Set<string>();
process.on("exit", () => tempDirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

export async function startWorker(log: (line: string) => void = () => {}): Promise<Worker> {
  const root = mkdtempSync(join(tmpdir(), "tap2-simulate-"));
  tempDirs.add(root);
  const repo = process.cwd();
  const persistTo = join(root, "state");
  const config = join(root, "wrangler.toml");
  mkdirSync(persistTo);
  log(`Bundling the worker into ${root} (a snapshot of src/)…`);
  wrangler("deploy", "--dry-run", "--outdir", join(root, "bundle"));
  writeFileSync(config, snapshotConfig(readFileSync(join(repo, "wrangler.toml"), "utf8"), repo, join(root, "bundle", "index.js")));
  log("Migrating a fresh local D1…");
  wrangler("d1", "migrations", "apply", "DB", "--local", "--persist-to", persistTo, "-c", config);
  for (let attempt = 1; ; attempt++) {
    try {
      const worker = await startOnce(persistTo, config);
      return { ...worker, stop: async () => {
        await worker.stop();
        rmSync(root, { recursive: true, force: true });
        tempDirs.delete(root);
      } };
    } catch (err) {
      // Another process may bind the free port between our check and workerd's bind.
      if (attempt >= 3 || !/Address already in use/.test(String(err))) {
        rmSync(root, { recursive: true, force: true });
        throw err;
      }
    }
  }
}

async function startOnce(persistTo: string, config: string): Promise<Worker> {
  const port = await freePort();
  const inspectorPort = await freePort();
  const args = ["dev", "-c", config, "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspectorPort), "--persist-to", persistTo,
    "--test-scheduled", "--show-interactive-dev-session=false", "--log-level", "log"];
  for (const [name, value] of Object.entries(SIM_SECRETS)) args.push("--var", `${name}:${value}`);
  const child = spawn("wrangler", args, {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1", FORCE_COLOR: "0", NO_COLOR: "1" },
  });
  children.add(child);
  const drain: Drain = { feedbackHandled: 0, feedbackStored: 0, analyticsStored: 0, errors: [] };
  const waiters = new Set<() => void>();
  const lines: string[] = [];
  const onLine = (line: string) => {
    lines.push(line);
    if (lines.length > 80) lines.shift();
    if (!line.startsWith("{")) return;
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const n = (k: string) => (typeof e[k] === "number" ? (e[k] as number) : 0);
    if (e.message === "feedback batch stored") {
      drain.feedbackStored += n("stored");
      drain.feedbackHandled += n("stored") + n("duplicates") + n("dropped_opted_out") + n("dropped_pending_deletion") + n("poison");
    } else if (e.message === "analytics batch stored") {
      drain.analyticsStored += n("rows_stored");
    } else if (e.level === "error" && drain.errors.length < 20) {
      drain.errors.push(line.slice(0, 400));
    }
    waiters.forEach((w) => w());
  };
  for (const stream of [child.stdout, child.stderr]) {
    let buf = "";
    stream?.setEncoding("utf8");
    stream?.on("data", (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf("\n"); nl !== -1; nl = buf.indexOf("\n")) {
        onLine(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
  }
  let exited = false;
  const exit = new Promise<void>((resolve) => child.on("exit", () => {
    exited = true;
    children.delete(child);
    resolve();
  }));

  const stop = async () => {
    if (!exited) {
      kill(child, "SIGTERM");
      const timer = setTimeout(() => kill(child, "SIGKILL"), 5_000);
      await exit;
      clearTimeout(timer);
    }
  };

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (exited) throw new Error(`wrangler dev exited before it served:\n${lines.join("\n")}`);
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
      if (res.status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      kill(child, "SIGKILL");
      await exit;
      throw new Error(`wrangler dev did not answer ${url}/health within 90 s:\n${lines.join("\n")}`);
    }
    await sleep(250);
  }

  const waitFor = (done: (d: Drain) => boolean, timeoutMs: number) =>
    new Promise<boolean>((resolve) => {
      if (done(drain)) return resolve(true);
      const check = () => {
        if (!done(drain)) return;
        finish(true);
      };
      const finish = (ok: boolean) => {
        waiters.delete(check);
        clearTimeout(timer);
        resolve(ok);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      waiters.add(check);
    });

  return { url, drain, waitFor, stop, tail: () => lines.join("\n") };
}
