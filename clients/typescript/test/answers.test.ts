// What the client makes of answers (a scripted fetch, no server): a success of the wrong shape is
// INVALID_RESPONSE, never a TypeError in the caller's code (docs/clients.md, "One error type").
import { describe, expect, it } from "vitest";
import { Tap2Client, Tap2Error } from "../src/index";

const answer = (status: number, body: string | null, headers: Record<string, string> = {}) => async () =>
  new Response(body, { status, headers: { "Content-Type": "application/json", "X-Request-Id": "req_shape", ...headers } });

const clientAnswering = (fetch: (request: Request) => Promise<Response>, extra: Partial<ConstructorParameters<typeof Tap2Client>[0]> = {}) =>
  new Tap2Client({ apiKey: "tp2_sk_test", baseUrl: "http://tap2.test", maxRetries: 0, fetch, ...extra });

/** Every wrapped call whose answer is JSON, and the field (if any) it promises beyond being an object. */
const CALLS: [string, (c: Tap2Client) => Promise<unknown>, string | null][] = [
  ["getMethods", (c) => c.getMethods({ customer_id: "cus_1" }), '"methods" is not an array'],
  ["getOffers", (c) => c.getOffers({ customer_id: "cus_1" }), '"offers" is not an array'],
  ["sendFeedbackBatch", (c) => c.sendFeedbackBatch([{ customer_id: "cus_1", method_id: "visa" }]), '"accepted" is not a number'],
  ["getPreferences", (c) => c.getPreferences("cus_1"), null],
  ["putPreferences", (c) => c.putPreferences({ customer_id: "cus_1", favorite_methods: [] }), '"preferences" is not an object'],
  ["getConsent", (c) => c.getConsent("cus_1"), '"entries" is not an array'],
  ["createCheckoutSession", (c) => c.createCheckoutSession({ customer_id: "cus_1" }), '"client_secret" is not a string'],
  ["deleteCustomer", (c) => c.deleteCustomer("cus_1"), null],
  ["restoreCustomer", (c) => c.restoreCustomer("cus_1"), null],
  ["exportCustomer", (c) => c.exportCustomer("cus_1"), null],
  ["getAnalyticsSummary", (c) => c.getAnalyticsSummary(), null],
  ["getAnalyticsTimeseries", (c) => c.getAnalyticsTimeseries({ metric: "conversion_rate" }), '"points" is not an array'],
  ["getPaymentMethods", (c) => c.getPaymentMethods(), '"methods" is not an array'],
];

describe("answers of an unexpected shape", () => {
  it.each(CALLS)("%s: a 2xx that is not a JSON object ([], \"x\", null, 7, empty) is INVALID_RESPONSE with its status and request id", async (_name, call) => {
    for (const body of ["[]", '"x"', "null", "7", "true", "", null]) {
      const err = await call(clientAnswering(answer(200, body))).catch((e: unknown) => e);
      expect(err, `body ${JSON.stringify(body)}`).toBeInstanceOf(Tap2Error);
      expect(err, `body ${JSON.stringify(body)}`).toMatchObject({
        status: 200,
        code: "INVALID_RESPONSE",
        requestId: "req_shape",
        message: "Unexpected answer: not a JSON object",
      });
    }
  });

  it.each(CALLS)("%s: an object without the field the route promises is INVALID_RESPONSE naming it; {} passes where nothing more is promised", async (_name, call, missing) => {
    for (const body of ["{}", '{"methods":{},"offers":"x","accepted":"3","preferences":[],"entries":null,"client_secret":1,"points":{}}']) {
      const outcome = await call(clientAnswering(answer(200, body))).then(
        (value) => ({ value }),
        (err: unknown) => ({ err }),
      );
      if (missing === null) {
        expect(outcome, body).toHaveProperty("value");
      } else {
        expect(outcome, body).toHaveProperty("err");
        expect((outcome as { err: unknown }).err).toMatchObject({ status: 200, code: "INVALID_RESPONSE", message: `Unexpected answer: ${missing}` });
      }
    }
  });

  it("answers of the promised shape pass through, with fields the client does not know", async () => {
    const c = clientAnswering(answer(200, '{"methods":[{"method_id":"visa"}],"extra":1}'));
    expect(await c.getPaymentMethods()).toEqual([{ method_id: "visa" }]);
    const batch = clientAnswering(answer(202, '{"accepted":2}'));
    expect(await batch.sendFeedbackBatch([], { idempotencyKey: "k" })).toEqual({ accepted: 2, idempotencyKey: "k" });
  });

  it("sendFeedback promises nothing but the 2xx: a 204, or a 200 with any JSON, is a success", async () => {
    expect(await clientAnswering(answer(204, null)).sendFeedback({ customer_id: "c", method_id: "visa", event_id: "e1" })).toEqual({ eventId: "e1" });
    expect(await clientAnswering(answer(200, "[]")).sendFeedback({ customer_id: "c", method_id: "visa", event_id: "e1" })).toEqual({ eventId: "e1" });
  });
});

/** Error answers and what the three clients make of them (the Python and PHP tests hold the same table). */
const NOT_AN_API_ERROR = (status: number) => `HTTP ${status} (the answer is not an API error body)`;
const ERROR_ANSWERS: [string, number, string, { code: string; message: string; requestId: string | null; details?: unknown }][] = [
  ["a proxy's HTML page", 502, "<html><body><h1>502 Bad Gateway</h1></body></html>", { code: "HTTP_502", message: NOT_AN_API_ERROR(502), requestId: "req_hdr" }],
  ["an empty body", 504, "", { code: "HTTP_504", message: NOT_AN_API_ERROR(504), requestId: "req_hdr" }],
  ["JSON that is not an error body", 500, '[{"error":1}]', { code: "HTTP_500", message: NOT_AN_API_ERROR(500), requestId: "req_hdr" }],
  ["an error that is a string", 500, '{"error":"boom"}', { code: "HTTP_500", message: NOT_AN_API_ERROR(500), requestId: "req_hdr" }],
  ["an error without a code", 500, '{"error":{"message":"m"}}', { code: "HTTP_500", message: NOT_AN_API_ERROR(500), requestId: "req_hdr" }],
  ["an error whose code is a number", 500, '{"error":{"code":5,"message":"m"}}', { code: "HTTP_500", message: NOT_AN_API_ERROR(500), requestId: "req_hdr" }],
  ["an error without a message", 503, '{"error":{"code":"UNAVAILABLE"}}', { code: "UNAVAILABLE", message: "HTTP 503", requestId: "req_hdr" }],
  [
    "an error with odd request_id and details",
    400,
    '{"error":{"code":"VALIDATION_ERROR","message":"bad","request_id":7,"details":"x"}}',
    { code: "VALIDATION_ERROR", message: "bad", requestId: "req_hdr", details: undefined },
  ],
  [
    "a whole API error",
    400,
    '{"error":{"code":"VALIDATION_ERROR","message":"bad","request_id":"req_body","details":[{"path":"a","message":"b"}]}}',
    { code: "VALIDATION_ERROR", message: "bad", requestId: "req_body", details: [{ path: "a", message: "b" }] },
  ],
];

describe("error answers", () => {
  it.each(ERROR_ANSWERS)("%s: the same code, message and request id as the Python and PHP clients", async (_name, status, body, expected) => {
    const page = async () => new Response(body, { status, statusText: "Bad Gateway", headers: { "Content-Type": "text/html", "X-Request-Id": "req_hdr" } });
    const err = await clientAnswering(page).getConsent("cus_1").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Tap2Error);
    expect(err).toMatchObject({ status, ...expected });
    if ("details" in expected) expect((err as Tap2Error).details).toEqual(expected.details);
  });
});
