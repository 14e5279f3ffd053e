import { describe, expect, it } from "vitest";
import { api, createMerchant, type TestMerchant } from "../helpers/fixtures";

interface Summary {
  arms: Record<"treatment" | "holdout", { decisions: number; conversions: number; top1_rate: number | null }>;
  methods: { method_id: string; payments: number }[];
  cache_hit_rate: number | null;
}

/** Polls until `check` passes: the real local queues deliver after their batch timeout (1 s). */
async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (check(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 250));
  }
}

const summary = (m: TestMerchant) => async () => (await api(m.secretKey, "/v1/analytics/summary")).json<Summary>();

describe("the whole loop through the real queues", () => {
  it("/methods records a decision, feedback with its decision_id converts it once, and the summary counts both", async () => {
    const m = await createMerchant({ holdout_percent: 0 });
    const answer = await (await api(m.secretKey, "/v1/personalize/methods?customer_id=loop_c1&device_type=mobile&country=US")).json<{
      decision_id: string;
      methods: { method_id: string }[];
    }>();
    const decided = await eventually(summary(m), (s) => s.arms.treatment.decisions === 1);
    expect(decided.arms.treatment).toMatchObject({ decisions: 1, conversions: 0 });

    const paid = answer.methods[0]!.method_id;
    const feedback = { customer_id: "loop_c1", method_id: paid, decision_id: answer.decision_id, amount: 4200, currency: "USD" };
    for (const event_id of ["order_1", "order_1", "order_2"]) {
      // A client retry (same event id) and a second payment for the same decision: still one conversion.
      const res = await api(m.secretKey, "/v1/personalize/feedback", { method: "POST", body: JSON.stringify({ ...feedback, event_id }) });
      expect(res.status).toBe(204);
    }
    const converted = await eventually(summary(m), (s) => s.arms.treatment.conversions >= 1 && (s.methods[0]?.payments ?? 0) >= 2);
    expect(converted.arms.treatment).toMatchObject({ decisions: 1, conversions: 1, top1_rate: 1 });
    expect(converted.methods).toEqual([expect.objectContaining({ method_id: paid, payments: 2 })]);
  });
});
