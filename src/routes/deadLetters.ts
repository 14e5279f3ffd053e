import { createRoute } from "@hono/zod-openapi";
import type { App, Env } from "../env";
import { ApiError } from "../errors";
import { logField } from "../middleware/logger";
import { ADMIN_ERRORS, errorResponses, jsonResponse, NoQuery } from "../schemas/common";
import { adminSecurity } from "../schemas/security";
import { DEFAULT_PAGE, DeadLetterList, DeadLetterListQuery, DeadLetterPath, RedriveRequest, RedriveResult } from "../schemas/deadLetters";
import { countDeadLetters, type DeadLetter, type DeadLetterQueue, deleteDeadLetters, lettersToRedrive, listDeadLetters } from "../storage/deadLetters";
import { noBody } from "../validation";

/** Ops: the dead letters stored by src/jobs/deadLetterConsumer.ts — list, re-drive to the original queue, discard. */

const adminErrors = errorResponses(...ADMIN_ERRORS);

const listRoute = createRoute({
  method: "get", path: "/v1/admin/dead-letters", operationId: "listDeadLetters", tags: ["Admin"], security: adminSecurity,
  summary: "List the stored dead letters (oldest first) and the count per queue",
  request: { query: DeadLetterListQuery },
  responses: { 200: jsonResponse(DeadLetterList, "A page of dead letters"), ...adminErrors },
});
const redriveRoute = createRoute({
  method: "post", path: "/v1/admin/dead-letters/redrive", operationId: "redriveDeadLetters", tags: ["Admin"], security: adminSecurity,
  summary: "Re-send dead letters to their original queue, then remove them (consumers are idempotent: nothing counts twice)",
  request: { query: NoQuery, body: { content: { "application/json": { schema: RedriveRequest } }, required: true } },
  responses: { 200: jsonResponse(RedriveResult, "Re-sent"), ...adminErrors },
});
const deleteRoute = createRoute({
  method: "delete", path: "/v1/admin/dead-letters/{id}", operationId: "deleteDeadLetter", tags: ["Admin"], security: adminSecurity,
  summary: "Discard a dead letter after inspection",
  request: { params: DeadLetterPath, query: NoQuery },
  middleware: noBody(),
  responses: { 204: { description: "Discarded" }, ...adminErrors },
});

/** sendBatch takes at most 100 messages and 256 KB; ~100 bytes of metadata per message count too. */
export const SEND_BYTES = 250_000;
export const SEND_OVERHEAD = 100;

/** The letters in order, cut into sendBatch calls of at most 100 messages and SEND_BYTES. */
export function sendChunks(letters: DeadLetter[]): DeadLetter[][] {
  const chunks: DeadLetter[][] = [];
  let current: DeadLetter[] = [];
  let bytes = 0;
  for (const letter of letters) {
    const size = new TextEncoder().encode(letter.body).byteLength + SEND_OVERHEAD;
    if (current.length > 0 && (current.length === 100 || bytes + size > SEND_BYTES)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(letter);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * Re-sends chunk by chunk and deletes exactly the letters sent. If the queue refuses, what was sent
 * is removed and the rest stays; a letter sent twice (a delete that failed) is harmless, since both
 * consumers insert ON CONFLICT DO NOTHING.
 */
async function redrive(env: Env, queue: DeadLetterQueue, letters: DeadLetter[]): Promise<number> {
  const producer = queue === "feedback" ? env.FEEDBACK_QUEUE : env.ANALYTICS_QUEUE;
  let sent = 0;
  for (const chunk of sendChunks(letters)) {
    try {
      await producer.sendBatch(chunk.map((l) => ({ body: JSON.parse(l.body) as unknown, contentType: "json" as const })));
    } catch {
      await deleteDeadLetters(env.DB, letters.slice(0, sent).map((l) => l.id));
      throw new ApiError("UNAVAILABLE", `The ${queue} queue refused the messages after ${sent} were re-sent; the other letters stay stored, retry`);
    }
    sent += chunk.length;
  }
  await deleteDeadLetters(env.DB, letters.map((l) => l.id));
  return sent;
}

export function registerDeadLetterRoutes(app: App) {
  app.openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    const [{ letters, nextAfter }, counts] = await Promise.all([
      listDeadLetters(c.env.DB, { queue: q.queue, merchantId: q.merchant_id, limit: q.limit ?? DEFAULT_PAGE, after: q.cursor }),
      countDeadLetters(c.env.DB),
    ]);
    const deadLetters = letters.map((l) => ({
      id: l.id, queue: l.queue, message_id: l.message_id, merchant_id: l.merchant_id, attempts: l.attempts, received_at: l.received_at, body: l.body, truncated: l.truncated,
    }));
    return c.json({ dead_letters: deadLetters, counts, next_cursor: nextAfter === null ? null : String(nextAfter) }, 200);
  });

  app.openapi(redriveRoute, async (c) => {
    const { queue, ids, limit } = c.req.valid("json");
    const letters = await lettersToRedrive(c.env.DB, queue, ids ? { ids } : { limit: limit ?? DEFAULT_PAGE });
    logField(c, "dead_letter_queue", queue);
    const redriven = await redrive(c.env, queue, letters);
    logField(c, "redriven", redriven);
    const counts = await countDeadLetters(c.env.DB);
    return c.json({ redriven, remaining: counts[queue] }, 200);
  });

  app.openapi(deleteRoute, async (c) => {
    const { id } = c.req.valid("param");
    if ((await deleteDeadLetters(c.env.DB, [id])) === 0) throw new ApiError("NOT_FOUND", `No dead letter ${id}`);
    return c.body(null, 204);
  });
}
