import { describe, expect, it } from "vitest";
import { SEND_BYTES, SEND_OVERHEAD, sendChunks } from "../../src/routes/deadLetters";
import type { DeadLetter } from "../../src/storage/deadLetters";

const letter = (id: number, bodyBytes: number): DeadLetter => ({
  id, queue: "feedback", message_id: `m${id}`, merchant_id: "m_1", body: JSON.stringify({ pad: "x".repeat(Math.max(0, bodyBytes - 10)) }), truncated: false, attempts: 5, received_at: "2026-11-25T00:00:00.000Z",
});
const bytesOf = (chunk: DeadLetter[]) => chunk.reduce((n, l) => n + new TextEncoder().encode(l.body).byteLength + SEND_OVERHEAD, 0);

describe("re-drive chunks (Queues: sendBatch takes 100 messages and 256 KB at most)", () => {
  it("cuts by count", () => {
    const chunks = sendChunks(Array.from({ length: 250 }, (_, i) => letter(i, 200)));
    expect(chunks.map((c) => c.length)).toEqual([100, 100, 50]);
    expect(chunks.flat().map((l) => l.id)).toEqual(Array.from({ length: 250 }, (_, i) => i)); // every letter once, in order
  });

  it("cuts by bytes, message metadata included", () => {
    const letters = Array.from({ length: 60 }, (_, i) => letter(i, 20_000)); // 1.2 MB in all
    const chunks = sendChunks(letters);
    expect(chunks.length).toBe(5);
    for (const c of chunks) expect(bytesOf(c)).toBeLessThanOrEqual(SEND_BYTES);
    expect(SEND_BYTES).toBeLessThan(256 * 1024);
    expect(chunks.flat()).toHaveLength(60);
  });

  it("nothing to send is no call", () => {
    expect(sendChunks([])).toEqual([]);
  });
});
