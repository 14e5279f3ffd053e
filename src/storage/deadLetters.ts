import type { CustomerTablePurge, RetentionRule } from "./deletions";
import { purgedAtOrAfter } from "./events";

/**
 * All SQL of the dead letters (migration 0007): messages the queue consumers gave up on, kept in D1
 * because a queue deletes them after a few days. Rows carry the pseudonym, never a customer id.
 */

export const DEAD_LETTER_QUEUES = ["feedback", "analytics"] as const;
export type DeadLetterQueue = (typeof DEAD_LETTER_QUEUES)[number];

export interface NewDeadLetter {
  queue: DeadLetterQueue;
  message_id: string;
  merchant_id: string | null;
  customer_ref: string | null;
  /** JSON text of the body. */
  body: string;
  /** The body is not the whole original (cut at the size cap, or not JSON-serializable): not re-drivable. */
  truncated: boolean;
  attempts: number;
  received_at: string;
  /** When the API accepted the body's data (feedback received_at, decision issued_at, offers shown_at); null when the body names none. */
  made_at: string | null;
}

/** A stored letter as ops see it: everything but customer_ref (the body holds it already, as a pseudonym). */
export interface DeadLetter {
  id: number;
  queue: DeadLetterQueue;
  message_id: string;
  merchant_id: string | null;
  body: string;
  truncated: boolean;
  attempts: number;
  received_at: string;
}

const COLUMNS = "id, queue, message_id, merchant_id, body, truncated, attempts, received_at";
type Row = Omit<DeadLetter, "truncated"> & { truncated: number };
const toLetter = (r: Row): DeadLetter => ({ ...r, truncated: r.truncated === 1 });

/**
 * A letter of a customer erased (purged) at or after its data was accepted: like an event still on
 * the queue at the purge, it must not outlive the erasure (purgedAtOrAfter, which also knows the
 * purge a reopened tombstone keeps). One whose body names no time goes with any purge of its
 * customer. (A letter naming no valid merchant is no consumer's: they ack such bodies as poison. It
 * is stored, and a later purge at any merchant takes it, below; checking it here would scan every
 * tombstone, which have no index by customer alone.)
 */
const ERASED_LETTER = (merchant: string, ref: string, madeAt: string) => `EXISTS (
  SELECT 1 FROM customer_deletions WHERE merchant_id = ${merchant} AND customer_ref = ${ref} AND ${purgedAtOrAfter(`coalesce(${madeAt}, '')`)})`;

/**
 * A feedback letter whose event is stored already (its write committed, the ack was lost): nothing
 * to re-drive, and kept it could count twice, for raw-event retention deletes the stored row (by
 * occurred_at) well before the letter (by received_at), after which a re-drive inserts it anew. A
 * primary-key search of usage_events (merchant_id, event_id); a body that is not JSON is never it.
 */
const ALREADY_STORED = `CASE WHEN ?1 = 'feedback' AND json_valid(?5)
  THEN EXISTS (SELECT 1 FROM usage_events WHERE merchant_id = ?3 AND event_id = json_extract(?5, '$.event_id'))
  ELSE 0 END`;

/**
 * Stores a delivery's letters with ONE D1 batch: a message id seen before is skipped, and so are the
 * letter of an erased customer (ERASED_LETTER) and one whose event is stored (ALREADY_STORED), both
 * checked inside the INSERT. Returns how many were
 * stored and how many of the rest were erased customers' (read in the same transaction).
 */
export async function insertDeadLetters(db: D1Database, letters: NewDeadLetter[]): Promise<{ stored: number; erased: number }> {
  if (letters.length === 0) return { stored: 0, erased: 0 };
  const erased = db
    .prepare(
      `WITH l (merchant_id, customer_ref, made_at) AS (
         SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each(?1))
       SELECT count(*) AS n FROM l WHERE ${ERASED_LETTER("l.merchant_id", "l.customer_ref", "l.made_at")}`,
    )
    .bind(JSON.stringify(letters.map((l) => [l.merchant_id, l.customer_ref, l.made_at])));
  const insert = db.prepare(
    `INSERT INTO dead_letters (queue, message_id, merchant_id, customer_ref, body, truncated, attempts, received_at)
     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE NOT (${ERASED_LETTER("?3", "?4", "?9")}) AND NOT (${ALREADY_STORED})
     ON CONFLICT (message_id) DO NOTHING`,
  );
  const [count, ...results] = await db.batch([
    erased,
    ...letters.map((l) => insert.bind(l.queue, l.message_id, l.merchant_id, l.customer_ref, l.body, l.truncated ? 1 : 0, l.attempts, l.received_at, l.made_at)),
  ]);
  return { stored: results.reduce((n, r) => n + (r.meta.changes ?? 0), 0), erased: (count!.results[0] as { n: number }).n };
}

export interface DeadLetterFilter {
  queue?: DeadLetterQueue;
  merchantId?: string;
  limit: number;
  /** Only letters with a larger id (the last id of the previous page). */
  after?: number;
}

/** Oldest first, a page of `limit`; `nextAfter` is the cursor of the next page, null on the last one. */
export async function listDeadLetters(db: D1Database, f: DeadLetterFilter): Promise<{ letters: DeadLetter[]; nextAfter: number | null }> {
  const { results } = await db
    .prepare(
      `SELECT ${COLUMNS} FROM dead_letters
       WHERE (?1 IS NULL OR queue = ?1) AND (?2 IS NULL OR merchant_id = ?2) AND id > ?3
       ORDER BY id LIMIT ?4`,
    )
    .bind(f.queue ?? null, f.merchantId ?? null, f.after ?? 0, f.limit + 1)
    .all<Row>();
  const page = results.slice(0, f.limit).map(toLetter);
  return { letters: page, nextAfter: results.length > f.limit ? page[page.length - 1]!.id : null };
}

export async function countDeadLetters(db: D1Database): Promise<Record<DeadLetterQueue, number>> {
  const { results } = await db.prepare("SELECT queue, count(*) AS n FROM dead_letters GROUP BY queue").all<{ queue: DeadLetterQueue; n: number }>();
  const counts: Record<DeadLetterQueue, number> = { feedback: 0, analytics: 0 };
  for (const r of results) counts[r.queue] = r.n;
  return counts;
}

/** The re-drivable letters of `queue`: those ids (at most 100), or else the oldest `limit`. Truncated bodies are never re-sent. */
export async function lettersToRedrive(db: D1Database, queue: DeadLetterQueue, pick: { ids: number[] } | { limit: number }): Promise<DeadLetter[]> {
  const stmt =
    "ids" in pick
      ? db
          .prepare(`SELECT ${COLUMNS} FROM dead_letters WHERE queue = ?1 AND truncated = 0 AND id IN (SELECT value FROM json_each(?2)) ORDER BY id`)
          .bind(queue, JSON.stringify(pick.ids))
      : db.prepare(`SELECT ${COLUMNS} FROM dead_letters WHERE queue = ?1 AND truncated = 0 ORDER BY id LIMIT ?2`).bind(queue, pick.limit);
  const { results } = await stmt.all<Row>();
  return results.map(toLetter);
}

/** Deletes exactly these ids; returns how many existed. */
export async function deleteDeadLetters(db: D1Database, ids: number[]): Promise<number> {
  if (ids.length === 0) return 0;
  const result = await db.prepare("DELETE FROM dead_letters WHERE id IN (SELECT value FROM json_each(?1))").bind(JSON.stringify(ids)).run();
  return result.meta.changes ?? 0;
}

/**
 * The purge (src/jobs/purge.ts through CUSTOMER_DATA_TABLES). A letter whose body named no merchant
 * goes with the customer at any merchant: it cannot be told apart, and an erasure must not leave the
 * customer's data behind.
 */
export const DEAD_LETTERS_PURGE: CustomerTablePurge = {
  table: "dead_letters",
  keyColumns: ["id"],
  match: "t.customer_ref = d.customer_ref AND (t.merchant_id = d.merchant_id OR t.merchant_id IS NULL)",
};

/** Retention (src/jobs/retention.ts through RETENTION_RULES): a letter older than the raw-event window would have been deleted as an event anyway. */
export const DEAD_LETTERS_RETENTION: RetentionRule = {
  name: "dead_letters",
  window: "raw_events",
  sql: "DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters WHERE received_at < ?1 LIMIT ?2)",
};
