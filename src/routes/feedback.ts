import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import { hmacSha256, randomToken } from "../crypto/hash";
import { toHex } from "../crypto/encoding";
import { customerRef } from "../crypto/pseudonym";
import type { App, AppEnv } from "../env";
import { ApiError, type ErrorDetail, validationError } from "../errors";
import { errorText } from "../log";
import { contentFingerprint } from "../fingerprint";
import { logField } from "../middleware/logger";
import { RAW_ANALYTICS_DAYS } from "../analytics/retention";
import { customerTag, verifyDecision } from "../personalization/decision";
import { errorResponses, MERCHANT_ERRORS, MerchantQuery } from "../schemas/common";
import { FeedbackAccepted, FeedbackBatch, FeedbackEvent, type FeedbackMessage, IdempotencyHeaders } from "../schemas/feedback";
import { merchantSecurity } from "../schemas/security";


const single = createRoute({
  method: "post",
  path: "/v1/personalize/feedback",
  operationId: "sendFeedback",
  tags: ["Personalization"],
  summary: "Report the method a customer paid with (queued; stored once per event_id)",
  security: merchantSecurity,
  request: {
    query: MerchantQuery,
    headers: IdempotencyHeaders,
    body: { content: { "application/json": { schema: FeedbackEvent } }, required: true },
  },
  responses: { 204: { description: "Accepted onto the feedback queue" }, ...errorResponses(...MERCHANT_ERRORS) },
});

const batch = createRoute({
  method: "post",
  path: "/v1/personalize/feedback/batch",
  operationId: "sendFeedbackBatch",
  tags: ["Personalization"],
  summary: "Report up to 100 payments at once (all validated first; one invalid event rejects the batch)",
  security: merchantSecurity,
  request: {
    query: MerchantQuery,
    headers: IdempotencyHeaders,
    body: { content: { "application/json": { schema: FeedbackBatch } }, required: true },
  },
  responses: {
    202: { description: "Accepted onto the feedback queue", content: { "application/json": { schema: FeedbackAccepted } } },
    ...errorResponses(...MERCHANT_ERRORS),
  },
});

type Ctx = Context<AppEnv>;

/**
 * Checks that need the merchant (enabled methods, decision ids issued to it) and builds the queue
 * message. Problems are appended to `details` with `prefix` (e.g. "events.3.") so a batch names
 * the index; nothing is queued unless every event passed.
 */
async function toMessage(c: Ctx, event: FeedbackEvent, eventId: string, receivedAt: string, prefix: string, details: ErrorDetail[]): Promise<FeedbackMessage | null> {
  const merchant = c.get("merchant");
  // This event's own problems: the events of a batch are checked concurrently, so the shared
  // `details` may already hold another event's by the time this one is judged.
  const problems: ErrorDetail[] = [];
  if (!merchant.methods.includes(event.method_id)) {
    problems.push({ path: `${prefix}method_id`, message: `${event.method_id} is not enabled for merchant ${merchant.merchant_id}` });
  }
  const ref = await customerRef(c.env.PII_KEY, event.customer_id);
  let decision: FeedbackMessage["decision"] = null;
  if (event.decision_id !== undefined) {
    const claims = await verifyDecision(c.env.SIGNING_KEY, event.decision_id, merchant.merchant_id);
    if (!claims) problems.push({ path: `${prefix}decision_id`, message: "is not a decision id issued to this merchant" });
    // A guest's decision (no tag) may convert for the customer the backend knows at payment.
    else if (claims.c !== undefined && claims.c !== (await customerTag(c.env.SIGNING_KEY, merchant.merchant_id, ref))) {
      problems.push({ path: `${prefix}decision_id`, message: "was issued for another customer" });
    } else if (claims.t < Date.parse(receivedAt) - RAW_ANALYTICS_DAYS * 24 * 3600 * 1000) {
      // Its decision is past the analytics retention (rolled up for good): it can no longer convert.
      problems.push({ path: `${prefix}decision_id`, message: `is older than ${RAW_ANALYTICS_DAYS} days, past the analytics retention; send the payment without it` });
    } else {
      const index = claims.r.indexOf(event.method_id);
      decision = {
        decision_id: event.decision_id,
        arm: claims.a,
        fallback_reason: claims.f,
        rank: index === -1 ? null : index + 1,
        issued_at: new Date(claims.t).toISOString(),
      };
    }
  }
  if (problems.length > 0) {
    details.push(...problems);
    return null;
  }
  return {
    v: 1,
    merchant_id: merchant.merchant_id,
    customer_ref: ref,
    event_id: eventId,
    method_id: event.method_id,
    amount: event.amount ?? null,
    currency: event.currency ?? null,
    device_type: event.device_type ?? null,
    location_country: event.location_country ?? null,
    offer_id: event.offer_id ?? null,
    // One text form for every stored timestamp, so text comparisons (retention windows) are exact.
    occurred_at: event.occurred_at ? new Date(event.occurred_at).toISOString() : receivedAt,
    received_at: receivedAt,
    decision,
  };
}

/** A random id when the client gave none: such an event is not deduplicated across client retries. */
const assignedEventId = () => "evt_" + randomToken(16);

/** What a client sent for one event, in one text form (occurred_at as an instant). */
function eventFingerprint(event: FeedbackEvent): string {
  return contentFingerprint({ ...event, occurred_at: event.occurred_at === undefined ? undefined : new Date(event.occurred_at).toISOString() });
}

/**
 * Batch + Idempotency-Key: an event without event_id gets an id derived from the key, the event as
 * sent, and which repeat of identical events in the batch it is. Retrying the identical batch
 * (in any order) gives every event its id again, so nothing is stored twice; a batch that reuses
 * the key with other events gives those new ids, so none is taken for an event stored before and
 * dropped (an id derived from the key and the index would be: [A, B], then [C, A, B] under the same
 * key, lost C and stored B twice).
 */
async function derivedEventIds(piiKey: string, key: string, events: FeedbackEvent[]): Promise<(string | undefined)[]> {
  const repeats = new Map<string, number>();
  return Promise.all(
    events.map(async (event) => {
      if (event.event_id !== undefined) return undefined;
      const fingerprint = eventFingerprint(event);
      const n = repeats.get(fingerprint) ?? 0;
      repeats.set(fingerprint, n + 1);
      // Keyed (HMAC under PII_KEY): the content holds the raw customer id, and a plain hash of it,
      // stored as the event id, could be recomputed from guessed ids (docs/data-rights.md).
      return "idk_" + toHex(await hmacSha256(piiKey, `feedback-batch-event:${key}\n${n}\n${fingerprint}`)).slice(0, 32);
    }),
  );
}

/**
 * A batch's events, one per event_id (`accepted` counts what is stored, API.md §2). The same event_id
 * twice with the same content (the normalised message: same customer, method, amount, instant, …) is
 * one event, queued once. The same event_id with different content is a client bug that would store
 * one of them silently, so it is a `400` naming the later index (as a payments API treats an
 * idempotency key reused with other parameters). Events that failed validation (null) are skipped:
 * the batch is rejected for them anyway.
 */
function distinctEvents(messages: (FeedbackMessage | null)[], details: ErrorDetail[]): FeedbackMessage[] {
  const seen = new Map<string, { index: number; content: string }>();
  const out: FeedbackMessage[] = [];
  messages.forEach((m, i) => {
    if (!m) return;
    const content = JSON.stringify(m);
    const first = seen.get(m.event_id);
    if (!first) {
      seen.set(m.event_id, { index: i, content });
      out.push(m);
    } else if (first.content !== content) {
      details.push({ path: `events.${i}.event_id`, message: `repeats the event_id of events.${first.index} with different content` });
    }
  });
  return out;
}

/** The queue is the only write on this path: if it refuses, the client must hear it (and retry). */
async function enqueue(c: Ctx, messages: FeedbackMessage[]): Promise<void> {
  try {
    if (messages.length === 1) await c.env.FEEDBACK_QUEUE.send(messages[0], { contentType: "json" });
    else await c.env.FEEDBACK_QUEUE.sendBatch(messages.map((body) => ({ body, contentType: "json" as const })));
  } catch (err) {
    logField(c, "queue_error", errorText(err));
    throw new ApiError("UNAVAILABLE", "The feedback queue cannot take events right now; retry with the same event_id");
  }
}

export function registerFeedbackRoutes(app: App): void {
  app.openapi(single, async (c) => {
    const event = c.req.valid("json");
    const headerKey = c.req.valid("header")["idempotency-key"];
    if (event.event_id !== undefined && headerKey !== undefined && event.event_id !== headerKey) {
      throw validationError([{ path: "event_id", message: "differs from the Idempotency-Key header" }]);
    }
    const details: ErrorDetail[] = [];
    const eventId = event.event_id ?? headerKey ?? assignedEventId();
    const message = await toMessage(c, event, eventId, new Date().toISOString(), "", details);
    if (!message) throw validationError(details);
    logField(c, "customer_ref", message.customer_ref);
    logField(c, "event_id", eventId);
    await enqueue(c, [message]);
    return c.body(null, 204);
  });

  app.openapi(batch, async (c) => {
    const { events } = c.req.valid("json");
    const headerKey = c.req.valid("header")["idempotency-key"];
    const receivedAt = new Date().toISOString();
    const details: ErrorDetail[] = [];
    const derived = headerKey !== undefined ? await derivedEventIds(c.env.PII_KEY, headerKey, events) : [];
    const messages = await Promise.all(
      events.map(async (event, i) => {
        const eventId = event.event_id ?? derived[i] ?? assignedEventId();
        return toMessage(c, event, eventId, receivedAt, `events.${i}.`, details);
      }),
    );
    const distinct = distinctEvents(messages, details);
    if (details.length > 0) {
      details.sort((a, b) => Number(a.path.split(".")[1]) - Number(b.path.split(".")[1]));
      throw validationError(details);
    }
    logField(c, "events", distinct.length);
    await enqueue(c, distinct);
    return c.json({ accepted: distinct.length }, 202);
  });
}
