import { createExecutionContext, createMessageBatch, createScheduledController, env, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { expect, vi } from "vitest";
import { conversionStatements } from "../../src/analytics/store";
import { customerRef } from "../../src/crypto/pseudonym";
import worker from "../../src/index";
import { toUsageRow } from "../../src/jobs/feedbackConsumer";
import { runAnalyticsRollups } from "../../src/jobs/rollups";
import { rawEventsCutoff } from "../../src/jobs/retention";
import { ANALYTICS_ROLLUP_CRON } from "../../src/jobs/scheduled";
import { type Arm, signDecision } from "../../src/personalization/decision";
import type { FallbackReason } from "../../src/personalization/ranking";
import type { DecisionMessage, OffersShownMessage } from "../../src/schemas/analytics";
import type { FeedbackMessage } from "../../src/schemas/feedback";
import { storeUsageEvents } from "../../src/storage/events";
import { api, type TestMerchant } from "./fixtures";

export const ANALYTICS_QUEUE = "analytics-events-dev";

export interface DecisionSpec {
  customer: string | null;
  at: number;
  arm: Arm | null;
  fallback: FallbackReason | null;
  ranked: string[];
  cache?: "hit" | "miss" | null;
  device?: "mobile" | "desktop" | "tablet" | null;
  country?: string | null;
  /** The holdout_percent in force; left out, the message has none (as messages queued before it existed). */
  holdoutPercent?: number;
}

/** A genuinely signed decision id and the analytics message /methods would record for it. */
export async function makeDecision(merchantId: string, d: DecisionSpec): Promise<{ id: string; message: DecisionMessage }> {
  const id = await signDecision(env.SIGNING_KEY, { m: merchantId, a: d.arm, f: d.fallback, r: d.ranked, t: d.at });
  return {
    id,
    message: {
      v: 1,
      kind: "decision",
      decision_id: id,
      merchant_id: merchantId,
      customer_ref: d.customer === null ? null : await customerRef(env.PII_KEY, d.customer),
      issued_at: new Date(d.at).toISOString(),
      arm: d.arm,
      personalized: d.fallback === null,
      fallback_reason: d.fallback,
      ranked: d.ranked,
      device_type: d.device ?? "mobile",
      country: d.country ?? "US",
      currency: null,
      cache: d.cache === undefined ? "miss" : d.cache,
      ...(d.holdoutPercent === undefined ? {} : { holdout_percent: d.holdoutPercent }),
    },
  };
}

export function offersShown(merchantId: string, impressionId: string, offerIds: string[], at: number, customer: string | null = null): OffersShownMessage {
  return { v: 1, kind: "offers_shown", impression_id: impressionId, merchant_id: merchantId, customer_ref: customer, shown_at: new Date(at).toISOString(), offer_ids: offerIds };
}

let delivery = 0;

/** Delivers bodies to the worker's real queue handler (analytics queue) and returns the ack/retry result. */
export async function deliverAnalytics(bodies: unknown[], attempts = 1) {
  delivery += 1;
  const batch = createMessageBatch(
    ANALYTICS_QUEUE,
    bodies.map((body, i) => ({ id: `a_${delivery}_${i}`, timestamp: new Date(), attempts, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, env, ctx);
  return getQueueResult(batch, ctx);
}

/** POST /v1/personalize/feedback through the real route; returns the message it put on the feedback queue. */
export async function postFeedback(m: TestMerchant, body: Record<string, unknown>): Promise<FeedbackMessage> {
  const send = vi.spyOn(env.FEEDBACK_QUEUE, "send").mockResolvedValue(undefined as never);
  try {
    const res = await api(m.secretKey, "/v1/personalize/feedback", { method: "POST", body: JSON.stringify(body) });
    expect(res.status, await res.clone().text()).toBe(204);
    return send.mock.calls[0]![0] as FeedbackMessage;
  } finally {
    send.mockRestore();
  }
}

/**
 * Stores feedback messages exactly as the feedback consumer does once the conversion hook is wired:
 * the usage-event inserts and the conversion statements in ONE D1 batch.
 */
export async function storeFeedback(messages: FeedbackMessage[]) {
  const cutoff = rawEventsCutoff(new Date());
  return storeUsageEvents(env.DB, messages.map(toUsageRow), cutoff, conversionStatements(env.DB, messages, cutoff));
}

/**
 * The worker's scheduled handler with the analytics cron, as the trigger runs it. The rollup job run
 * once more afterwards must find nothing left to do: the cron itself rolled every closed dirty hour up.
 */
export async function rollupCron(at = Date.now()): Promise<void> {
  await rollupRun(at);
  expect(await runAnalyticsRollups(env, new Date(at)), "work the analytics cron left undone").toMatchObject({ hours: 0, days: 0, unfinished: false });
}

/** One run of the analytics cron (the worker's scheduled handler), which may leave work for the next (a backlog). */
export async function rollupRun(at = Date.now()): Promise<void> {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ scheduledTime: at, cron: ANALYTICS_ROLLUP_CRON }), env, ctx);
  await waitOnExecutionContext(ctx);
}

export async function getJson<T>(key: string, path: string): Promise<T> {
  const res = await api(key, path);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

/** Every rollup row of a merchant, for comparisons. */
export async function dumpRollups(merchantId: string): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const t of ["analytics_decision_rollups", "analytics_conversion_rollups", "analytics_ttp_rollups", "analytics_payment_rollups", "analytics_offer_rollups"]) {
    out[t] = (await env.DB.prepare(`SELECT * FROM ${t} WHERE merchant_id = ? ORDER BY 1, 2, 3, 4, 5, 6`).bind(merchantId).all()).results;
  }
  return out;
}
