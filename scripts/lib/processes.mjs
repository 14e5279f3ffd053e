// Children and temporary directories of the local tools: every child runs in its own process group
// and is killed, and every temporary directory removed, on exit, Ctrl-C or SIGTERM.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const children = new Set();
const tempDirs = new Set();
let cleanupInstalled = false;

/** Installed with the first child or temp dir, so merely importing this module (scripts/dev.mjs) changes no signal handling. */
function installCleanup() {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on("exit", cleanupAll);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(sig, () => {
      cleanupAll();
      process.exit(130);
    });
  }
}

function cleanupAll() {
  for (const child of children) killGroup(child, "SIGKILL");
  children.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

export function tempDir(prefix) {
  installCleanup();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir) {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

export function killGroup(child, signal) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // its own process group: wrangler and the workerd it started
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Whether something listens on `port` of `host` ("localhost": 127.0.0.1 or ::1, either of which wrangler dev may bind). */
export async function portTaken(port, host) {
  for (const address of host === "localhost" ? ["127.0.0.1", "::1"] : [host]) {
    if (await cannotListen(port, address)) return true;
  }
  return false;
}

function cannotListen(port, host) {
  return new Promise((resolve) => {
    const srv = createServer();
    // EADDRNOTAVAIL / EAFNOSUPPORT: no such address here (IPv6 off), so nothing can hold it.
    srv.once("error", (err) => resolve(err.code === "EADDRINUSE" || err.code === "EACCES"));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(false)));
  });
}

/** The pids of every live descendant of `pid` (ps works on Linux and macOS). */
export function descendantPids(pid) {
  const ps = spawnSync("ps", ["-A", "-o", "pid=", "-o", "ppid="], { encoding: "utf8" });
  const childrenOf = new Map();
  for (const line of (ps.stdout ?? "").split("\n")) {
    const [child, parent] = line.trim().split(/\s+/).map(Number);
    if (child && parent) childrenOf.set(parent, [...(childrenOf.get(parent) ?? []), child]);
  }
  const found = [];
  for (let queue = [pid]; queue.length > 0; ) {
    const next = childrenOf.get(queue.shift()) ?? [];
    found.push(...next);
    queue.push(...next);
  }
  return found;
}

/** Kills `child`'s process group on exit unless it exited first. */
export function trackChild(child) {
  installCleanup();
  children.add(child);
  child.on("exit", () => children.delete(child));
}
