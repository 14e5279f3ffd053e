import { createRoute, z } from "@hono/zod-openapi";
import { Scalar } from "@scalar/hono-api-reference";
import type { App, AppEnv } from "../env";
import { ERROR_CODES, type ErrorCode, errorBody } from "../errors";
import { MAX_BODY_BYTES } from "../middleware/bodyLimits";
import { PUBLISHABLE_ROUTES } from "../middleware/auth";
import { errorResponses, KeylessQuery } from "../schemas/common";
import { securitySchemes } from "../schemas/security";
import { setBounded } from "../storage/boundedMemo";

export const OPENAPI_PATH = "/v1/openapi.json";
export const DOCS_PATH = "/docs";

const OpenApiDocument = z
  .looseObject({ openapi: z.literal("3.1.0"), info: z.looseObject({ title: z.string(), version: z.string() }), paths: z.record(z.string(), z.unknown()) })
  .openapi("OpenApiDocument", { description: "This document (OpenAPI 3.1)" });

const documentRoute = createRoute({
  method: "get", path: OPENAPI_PATH, tags: ["Self-description"], operationId: "getOpenApiDocument", security: [],
  summary: "This OpenAPI 3.1 document, generated from the zod schemas that validate requests (no key)",
  request: { query: KeylessQuery },
  responses: { 200: { description: "The document", content: { "application/json": { schema: OpenApiDocument } } }, ...errorResponses(400) },
});

const docsRoute = createRoute({
  method: "get", path: DOCS_PATH, tags: ["Self-description"], operationId: "getApiReference", security: [],
  summary: "Interactive API reference page rendered from this document (no key)",
  request: { query: KeylessQuery },
  responses: { 200: { description: "The reference page", content: { "text/html": { schema: z.string() } } }, ...errorResponses(400) },
});

/** An example message per error code (the bodies themselves come from errorBody, as the API renders them). */
const ERROR_EXAMPLES: Record<ErrorCode, string> = {
  VALIDATION_ERROR: "customer_id: Required",
  INVALID_JSON: "The body is not valid JSON",
  MISSING_API_KEY: "An API key is required (X-API-Key header or Authorization: Bearer)",
  INVALID_API_KEY: "The API key is malformed, unknown or revoked",
  INVALID_ADMIN_TOKEN: "The admin token is missing or wrong",
  INVALID_CLIENT_SECRET: "The client secret is unknown, expired or malformed",
  MERCHANT_MISMATCH: "merchant_id names another merchant than the API key's",
  KEY_NOT_ALLOWED: "A publishable key opens only GET /v1/personalize/methods and /offers; use a secret key",
  ORIGIN_NOT_ALLOWED: "Origin https://other.example is not in the merchant's allowed_origins",
  NOT_FOUND: "No merchant m_unknown",
  METHOD_NOT_ALLOWED: "DELETE is not allowed on /v1/personalize/methods",
  CONFLICT: "Merchant m_demo already exists",
  PRECONDITION_FAILED: 'Merchant m_demo is at "v8", which If-Match does not name: nothing was changed; read it again, apply your change to that and send its ETag',
  PAYLOAD_TOO_LARGE: `The body exceeds ${MAX_BODY_BYTES} bytes`,
  UNSUPPORTED_MEDIA_TYPE: "The body must be JSON with Content-Type: application/json",
  RATE_LIMITED: "Rate limit of 1000 requests per hour (burst 100) exceeded; retry in 4 s",
  INTERNAL_ERROR: "Something went wrong on our side; the request id helps us find it",
  UNAVAILABLE: "The feedback queue cannot take events right now; retry with the same event_id",
};

const STATUS_TEXT: Record<number, string> = {
  400: "Invalid request", 401: "Missing or invalid credentials", 403: "Forbidden", 404: "Not found", 409: "Conflict", 412: "Precondition failed",
  413: "Payload too large", 415: "Unsupported media type", 429: "Rate limited", 500: "Internal error", 503: "A dependency is unavailable; retry",
};

const header = (description: string, example: string | number, type: "string" | "integer" = "integer") => ({ description, schema: { type }, example });
const HEADERS = {
  "X-Request-Id": header("The request's id (an incoming well-formed X-Request-Id is reused); also in error bodies and the log line", "req_abc123", "string"),
  "RateLimit-Limit": header("The merchant's hourly request limit (absent when the rate limiter was unreachable)", 1000),
  "RateLimit-Remaining": header("Requests left in the merchant's token bucket", 99),
  "RateLimit-Reset": header("Seconds until a token is available again when empty, else until the bucket is full", 360),
  "Retry-After": header("Seconds to wait before retrying", 4),
};
const headerRef = (name: keyof typeof HEADERS) => ({ $ref: `#/components/headers/${name}` });
const REQUEST_ID_PARAM = {
  name: "X-Request-Id", in: "header", required: false, description: "Your own id for this request, reused when it matches ^[A-Za-z0-9._-]{1,128}$",
  schema: { type: "string", pattern: "^[A-Za-z0-9._-]{1,128}$" }, example: "order-42-methods",
};

interface Json { [key: string]: unknown }
interface Operation { security?: Record<string, string[]>[]; parameters?: unknown[]; responses: Record<string, Json> }

/** What the gateway may answer on an operation beyond its handler: which codes each error status carries. */
function errorCodes(method: string, path: string, op: Operation, status: number): ErrorCode[] {
  const schemes = (op.security ?? []).flatMap((s) => Object.keys(s));
  const merchant = schemes.includes("ApiKeyHeader");
  const publishable = PUBLISHABLE_ROUTES.has(`${method.toUpperCase()} ${path}`);
  const applies: Partial<Record<ErrorCode, boolean>> = {
    INVALID_JSON: method !== "get",
    MISSING_API_KEY: merchant, INVALID_API_KEY: merchant, MERCHANT_MISMATCH: merchant, KEY_NOT_ALLOWED: merchant,
    INVALID_ADMIN_TOKEN: schemes.includes("AdminToken"),
    INVALID_CLIENT_SECRET: publishable, ORIGIN_NOT_ALLOWED: publishable,
  };
  return (Object.keys(ERROR_CODES) as ErrorCode[]).filter((code) => ERROR_CODES[code] === status && applies[code] !== false);
}

const isErrorResponse = (res: Json) => (res.content as Json | undefined)?.["application/json"] !== undefined
  && ((res.content as Record<string, Json>)["application/json"]!.schema as Json | undefined)?.$ref === "#/components/schemas/Error";

/**
 * What middleware adds to every operation, written into the document in one place: 413/415 on every
 * body-taking method (bodyLimits), the codes each error status can carry with an example of each, the
 * X-Request-Id header everywhere, RateLimit-* on merchant answers and Retry-After on 429 and 503.
 */
export function describeGateway(doc: Json): Json {
  const components = (doc.components ??= {}) as Json;
  components.headers = HEADERS;
  components.parameters = { ...(components.parameters as Json | undefined), RequestId: REQUEST_ID_PARAM };
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, Operation>>)) {
    for (const [method, op] of Object.entries(item)) {
      const merchant = (op.security ?? []).some((s) => "ApiKeyHeader" in s);
      if (method !== "get") for (const s of [413, 415]) op.responses[s] ??= { description: STATUS_TEXT[s], content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } };
      op.parameters = [...(op.parameters ?? []), { $ref: "#/components/parameters/RequestId" }];
      for (const [status, res] of Object.entries(op.responses)) {
        const limited = merchant && status !== "401" && status !== "503";
        res.headers = {
          "X-Request-Id": headerRef("X-Request-Id"),
          ...(limited ? { "RateLimit-Limit": headerRef("RateLimit-Limit"), "RateLimit-Remaining": headerRef("RateLimit-Remaining"), "RateLimit-Reset": headerRef("RateLimit-Reset") } : {}),
          ...(status === "429" || status === "503" ? { "Retry-After": headerRef("Retry-After") } : {}),
          ...(res.headers as Json | undefined),
        };
        if (!isErrorResponse(res)) continue;
        const codes = errorCodes(method, path, op, Number(status));
        if (codes.length === 0) continue;
        res.description = `${STATUS_TEXT[Number(status)] ?? "Error"}: ${codes.map((c) => `\`${c}\``).join(", ")}`;
        const media = (res.content as Record<string, Json>)["application/json"]!;
        media.examples = Object.fromEntries(codes.map((code) => [code, { value: exampleError(code) }]));
      }
    }
  }
  return doc;
}

function exampleError(code: ErrorCode) {
  const details = code === "VALIDATION_ERROR" ? [{ path: "customer_id", message: "Required" }] : undefined;
  return errorBody(code, ERROR_EXAMPLES[code], "req_abc123", details);
}

/** Hosts that only reach the machine itself: a Host header naming one cannot point a reader elsewhere. */
const isLoopback = (hostname: string) =>
  hostname === "localhost" || hostname.endsWith(".localhost") || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname) || hostname === "[::1]";

/**
 * The document's `servers` URL. Configured per environment (PUBLIC_BASE_URL in wrangler*.toml): the
 * request's Host header must not decide it, since a client generator or the reference page's "Try
 * it" trusts that URL with keys. Without it (development): the request's origin when its host is
 * loopback (`npm run dev` on any port, the local tools), else the relative "/" (OpenAPI's default:
 * the host that served the document).
 */
export function serverUrlFor(configured: string | undefined, requestUrl: string): string {
  if (configured) return configured;
  const url = new URL(requestUrl);
  return isLoopback(url.hostname) ? url.origin : "/";
}

/** The OpenAPI 3.1 document of the app, as GET /v1/openapi.json serves it. */
export function openApiDocument(app: App, serverUrl: string): Json {
  const doc = app.getOpenAPI31Document({
    openapi: "3.1.0",
    info: {
      title: "Tap2 Personalize API",
      version: "1.0.0",
      description:
        "Tells a checkout which payment methods to show first for this customer, device, country and basket, and learns from what the customer pays with. " +
        "Errors share one body: {error: {code, message, request_id, documentation_url, details?}}; each error response lists the codes it can carry. " +
        "Every response carries X-Request-Id; merchant responses carry RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset, and a 429 or 503 also Retry-After. " +
        "Outside the operations listed here: a path that does not exist is 404 NOT_FOUND (401 first under /v1 without a key), and a method a path does not take is 405 METHOD_NOT_ALLOWED with an Allow header.",
    },
    servers: [{ url: serverUrl }],
  });
  return describeGateway(JSON.parse(JSON.stringify(doc)) as Json);
}

/**
 * The reference page's script, pinned: Scalar's default is the CDN's latest release, i.e. code that
 * changes under us on the page where people paste secret keys and the admin token into "Try it".
 * Raise the version on purpose (npm view @scalar/api-reference version).
 */
export const SCALAR_BUNDLE = "https://cdn.jsdelivr.net/npm/@scalar/api-reference@1.76.0/esm.js";

/**
 * The reference page's policy: people paste secret keys and the admin token into its "Try it", so no
 * other site may frame it (clickjacking a request with the key Scalar remembers), and no `<base>`
 * or plugin can redirect its script. Script and style sources stay open: Scalar's bundle loads its
 * own chunks, styles and fonts, which a stricter list would break without a browser to tell.
 */
export const DOCS_CSP = "frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/** The OpenAPI 3.1 document, generated from the route schemas that validate requests, and its reference page. */
export function registerOpenApiRoutes(app: App) {
  for (const [name, scheme] of Object.entries(securitySchemes)) {
    app.openAPIRegistry.registerComponent("securitySchemes", name, scheme);
  }
  // Built once per isolate and server URL (the routes do not change while it runs): the document is
  // ~170 KB and a keyless caller could otherwise make every request rebuild it.
  const built = new Map<string, Json>();
  app.openapi(documentRoute, (c) => {
    const server = serverUrlFor(c.env.PUBLIC_BASE_URL, c.req.url);
    let doc = built.get(server);
    if (doc === undefined) {
      doc = openApiDocument(app, server);
      setBounded(built, server, doc, 16); // one when configured; a few loopback origins in development
    }
    c.header("Cache-Control", "public, max-age=300");
    return c.json(doc as z.infer<typeof OpenApiDocument>, 200);
  });
  // Declared like every route, so its query is validated too; Scalar renders the page once it passed.
  const reference = Scalar<AppEnv>({ url: OPENAPI_PATH, pageTitle: "Tap2 Personalize API reference", bundle: SCALAR_BUNDLE });
  app.openapi(docsRoute, async (c) => {
    const page = (await reference(c, async () => undefined)) as Response;
    page.headers.set("Content-Security-Policy", DOCS_CSP);
    return page;
  });
}
