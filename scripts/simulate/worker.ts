/**
 * The real worker for the simulation: `wrangler dev --test-scheduled` (scripts/lib/localWorker.mjs)
 * from a snapshot of the worker's sources, over a fresh migrated `--persist-to` state, with
 * local-only secrets. The snapshot keeps edits to src/ during a run from reloading the worker (which
 * would drop in-flight queue messages) and pins the code the numbers belong to. Its JSON log lines
 * are counted so the simulation knows when the queues have drained.
 */
import { localSecrets, startLocalWorker } from "../lib/localWorker.mjs";

export const SIM_SECRETS: Record<"ADMIN_TOKEN" | "PII_KEY" | "SIGNING_KEY", string> = localSecrets("simulate");

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

export async function startWorker(log: (line: string) => void = () => {}): Promise<Worker> {
  const drain: Drain = { feedbackHandled: 0, feedbackStored: 0, analyticsStored: 0, errors: [] };
  const waiters = new Set<() => void>();
  const onLine = (line: string) => {
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
      drain.analyticsStored += n("messages_stored");
    } else if (e.level === "error" && drain.errors.length < 20) {
      drain.errors.push(line.slice(0, 400));
    }
    waiters.forEach((w) => w());
  };

  log("Starting wrangler dev from a snapshot of src/ over a fresh, migrated local D1…");
  const worker = await startLocalWorker({ vars: SIM_SECRETS, snapshot: true, testScheduled: true, onLine });

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

  return { url: worker.baseUrl, drain, waitFor, stop: worker.stop, tail: worker.logs };
}
