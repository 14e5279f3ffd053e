import { z } from "@hono/zod-openapi";
import { MerchantId, pageLimit, Timestamp } from "./common";

/** Admin view of the dead letters (migration 0007, src/routes/deadLetters.ts). */

export const MAX_PAGE = 100;
export const DEFAULT_PAGE = 50;

export const DeadLetterQueueName = z.enum(["feedback", "analytics"]).openapi({ description: "The original queue of the message", example: "feedback" });

const PageLimit = pageLimit("Letters", MAX_PAGE, DEFAULT_PAGE);

const Cursor = z
  .string()
  .regex(/^\d{1,15}$/, "must be the next_cursor of a previous page")
  .transform(Number)
  .openapi({ type: "string", description: "next_cursor of the previous page", example: "42" });

export const DeadLetterListQuery = z.strictObject({
  queue: DeadLetterQueueName.optional(),
  merchant_id: MerchantId.optional(),
  limit: PageLimit.optional(),
  cursor: Cursor.optional(),
});

const LETTER_EXAMPLE = {
  id: 42,
  queue: "feedback" as const,
  message_id: "4c1f7c0e6b9a4d2f8e3a1b5c7d9e0f12",
  merchant_id: "m_demo",
  attempts: 1,
  received_at: "2026-02-03T15:30:00.000Z",
  body: '{"v":1,"merchant_id":"m_demo","customer_ref":"c_Xk3…","event_id":"order_1001","method_id":"apple_pay","…":"…"}',
  truncated: false,
};

export const DeadLetterView = z
  .object({
    id: z.number().int().min(1),
    queue: DeadLetterQueueName,
    message_id: z.string().openapi({ description: "The dead-letter queue's message id (a redelivered dead letter is stored once)" }),
    merchant_id: z.string().nullable().openapi({ description: "From the body; null when the body names none" }),
    attempts: z.number().int().min(0).openapi({ description: "Deliveries of the dead letter when it was stored" }),
    received_at: Timestamp,
    body: z.string().openapi({ description: "The message body as JSON text (pseudonyms only, never a customer id)" }),
    truncated: z.boolean().openapi({ description: "The body was cut at 64 KB or was not JSON: shown, never re-driven" }),
  })
  .openapi("DeadLetter", { example: LETTER_EXAMPLE });

export const DeadLetterList = z
  .object({
    dead_letters: z.array(DeadLetterView),
    counts: z.object({ feedback: z.number().int().min(0), analytics: z.number().int().min(0) }).openapi({ description: "Letters stored per queue (all, whatever the filter)" }),
    next_cursor: z.string().nullable().openapi({ description: "Pass as cursor for the next page; null on the last page" }),
  })
  .openapi("DeadLetterList", { example: { dead_letters: [LETTER_EXAMPLE], counts: { feedback: 1, analytics: 0 }, next_cursor: null } });

export const RedriveRequest = z
  .strictObject({
    queue: DeadLetterQueueName,
    ids: z.array(z.number().int().min(1)).min(1).max(MAX_PAGE).optional().openapi({ description: "These letters of the queue (at most 100)" }),
    limit: z.number().int().min(1).max(MAX_PAGE).optional().openapi({ description: `Else the oldest letters of the queue, 1–${MAX_PAGE} (default ${DEFAULT_PAGE})` }),
  })
  .refine((r) => r.ids === undefined || r.limit === undefined, { message: "give ids or limit, not both", path: ["limit"] })
  .openapi("DeadLetterRedrive", { example: { queue: "feedback", ids: [42, 43] } });

export const RedriveResult = z
  .object({
    redriven: z.number().int().min(0).openapi({ description: "Letters re-sent to their original queue and removed" }),
    remaining: z.number().int().min(0).openapi({ description: "Letters of that queue still stored" }),
  })
  .openapi("DeadLetterRedriveResult", { example: { redriven: 2, remaining: 0 } });

export const DeadLetterPath = z.strictObject({
  id: z
    .string()
    .regex(/^\d{1,15}$/, "is not a dead letter id")
    .transform(Number)
    .openapi({ param: { name: "id", in: "path" }, type: "integer", example: 42 }),
});
