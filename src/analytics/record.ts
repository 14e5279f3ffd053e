import { randomToken } from "../crypto/hash";
import { errorText, logEvent } from "../log";
import type { DecisionMessage, OffersShownMessage } from "../schemas/analytics";

/**
 * Off-the-hot-path recording of /methods and /offers answers (API.md §6): the message goes to the
 * analytics queue inside `waitUntil`, after the response. A failing queue never fails a checkout:
 * the failure is logged as a JSON line with metric "analytics_queue_failed" and counted.
 */

interface RecordEnv {
  ANALYTICS_QUEUE: Queue<unknown>;
  /** "false" switches recording off (benchmarks compare /methods with and without it). */
  ANALYTICS_ENABLED?: string;
}

interface WaitUntil {
  waitUntil(promise: Promise<unknown>): void;
}

/** What the /methods route knows about its answer (see src/routes/methods.ts, "Decision record"). */
export interface DecisionRecord {
  decision_id: string;
  merchant_id: string;
  /** Pseudonym; null for guests. Kept for the purge only. */
  customer_ref: string | null;
  issued_at: string;
  arm: "treatment" | "holdout" | null;
  personalized: boolean;
  fallback_reason: string | null;
  ranked: string[];
  context: { device_type: string | null; country: string | null; currency?: string | null };
  cache: "hit" | "miss" | null;
  /** The merchant's holdout_percent the arm was assigned with (the config this answer used). */
  holdout_percent: number;
}

export interface OffersShownRecord {
  merchant_id: string;
  customer_ref: string | null;
  shown_at: string;
  offer_ids: string[];
}

/** Failures of this isolate since it started (a counter for tests and the log line). */
let queueFailures = 0;
export const analyticsQueueFailures = () => queueFailures;

export function decisionMessage(d: DecisionRecord): DecisionMessage {
  return {
    v: 1,
    kind: "decision",
    decision_id: d.decision_id,
    merchant_id: d.merchant_id,
    customer_ref: d.customer_ref,
    issued_at: d.issued_at,
    arm: d.arm,
    personalized: d.personalized,
    fallback_reason: d.fallback_reason,
    ranked: d.ranked,
    device_type: (d.context.device_type as DecisionMessage["device_type"]) ?? null,
    country: d.context.country ?? null,
    currency: d.context.currency ?? null,
    cache: d.cache,
    holdout_percent: d.holdout_percent,
  };
}

export function offersShownMessage(o: OffersShownRecord, impressionId = "imp_" + randomToken(12)): OffersShownMessage {
  return { v: 1, kind: "offers_shown", impression_id: impressionId, merchant_id: o.merchant_id, customer_ref: o.customer_ref, shown_at: o.shown_at, offer_ids: o.offer_ids };
}

function send(env: RecordEnv, ctx: WaitUntil, requestId: string, body: DecisionMessage | OffersShownMessage): void {
  if (env.ANALYTICS_ENABLED === "false") return;
  const fail = (err: unknown) => {
    queueFailures += 1;
    // Tied to the answer whose record it dropped (the request line, the decision_id a conversion would name).
    logEvent("analytics record dropped: the analytics queue refused it", {
      metric: "analytics_queue_failed",
      request_id: requestId,
      kind: body.kind,
      ...(body.kind === "decision" ? { decision_id: body.decision_id } : { impression_id: body.impression_id }),
      merchant_id: body.merchant_id,
      failures: queueFailures,
      error: errorText(err),
    });
  };
  try {
    ctx.waitUntil(env.ANALYTICS_QUEUE.send(body, { contentType: "json" }).catch(fail));
  } catch (err) {
    fail(err); // a binding that throws synchronously
  }
}

/** Records a /methods answer of request `requestId`. Never throws. */
export function recordDecision(env: RecordEnv, ctx: WaitUntil, requestId: string, decision: DecisionRecord): void {
  send(env, ctx, requestId, decisionMessage(decision));
}

/** Records the offers an /offers answer showed (nothing when it showed none). Never throws. */
export function recordOffersShown(env: RecordEnv, ctx: WaitUntil, requestId: string, shown: OffersShownRecord): void {
  if (shown.offer_ids.length === 0) return;
  send(env, ctx, requestId, offersShownMessage(shown));
}
