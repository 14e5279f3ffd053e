import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";

export const MAX_BODY_BYTES = 64 * 1024;

/**
 * Whether a request of this method has its body read (and bounded) here. GET, HEAD and OPTIONS
 * bodies are never read by anyone: the edge passes them through unbounded, so reading one would
 * let a single request (a public key suffices) fill the isolate's memory.
 */
export const carriesBody = (method: string): boolean => method !== "GET" && method !== "HEAD" && method !== "OPTIONS";

/**
 * Bodies: at most 64 KiB (413), JSON only (415: a Content-Type other than JSON, or a body without
 * one, or a Content-Encoding other than identity), well-formed (400 INVALID_JSON). No body at all, or an empty one, counts as `{}`: a route that
 * needs fields answers 400 VALIDATION_ERROR naming them, a route that takes none goes ahead. The
 * bytes read here replace the request's body, so later readers (the validator, the authorization
 * check) parse them without a second read of the stream.
 */
export function bodyLimits(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (!carriesBody(c.req.method)) return next();

    const declared = Number(c.req.header("Content-Length") ?? "0");
    if (declared > MAX_BODY_BYTES) throw new ApiError("PAYLOAD_TOO_LARGE", `The body exceeds ${MAX_BODY_BYTES} bytes`);

    const raw = c.req.raw;
    // Read with a byte count and stop past the limit: a chunked body has no Content-Length, and
    // reading it whole first would let one request hold any amount of the isolate's memory.
    const bytes = raw.body ? await readAtMost(raw.body, MAX_BODY_BYTES) : new Uint8Array(0);
    if (bytes === null) throw new ApiError("PAYLOAD_TOO_LARGE", `The body exceeds ${MAX_BODY_BYTES} bytes`);

    const type = (c.req.header("Content-Type") ?? "").split(";")[0]!.trim().toLowerCase();
    const json = type === "application/json" || /^application\/[a-z0-9.+-]+\+json$/.test(type);
    if (!json && (type !== "" || bytes.byteLength > 0)) {
      throw new ApiError("UNSUPPORTED_MEDIA_TYPE", "The body must be JSON with Content-Type: application/json");
    }
    // Bodies are read as sent: a compressed one (Content-Encoding: gzip) is not JSON, and a JSON one
    // labelled with a coding is not what it says. Either way the bytes cannot be trusted to mean what
    // the client meant, so any coding but identity is 415 (RFC 9110 §15.5.16), with the one we take.
    const codings = (c.req.header("Content-Encoding") ?? "").split(",").map((t) => t.trim().toLowerCase()).filter((t) => t !== "" && t !== "identity");
    if (codings.length > 0 && bytes.byteLength > 0) {
      throw new ApiError("UNSUPPORTED_MEDIA_TYPE", `Content-Encoding ${codings.join(", ")} is not supported: send the body uncompressed`, undefined, { "Accept-Encoding": "identity" });
    }
    // Accepted as JSON here, the body goes on as plain application/json: the route validators
    // (@hono/zod-openapi) read fewer spellings as JSON (`application/json ; charset=utf-8`, a trailing
    // `;`, `vnd.x.v2+json`) and would turn the very body accepted here into a 400.
    const headers = new Headers(raw.headers);
    headers.set("Content-Type", "application/json");
    if (bytes.byteLength === 0) {
      headers.delete("Content-Length");
      c.req.raw = new Request(raw, { body: "{}", headers });
      return next();
    }
    c.req.raw = new Request(raw, { body: bytes, headers });
    try {
      JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
    } catch {
      throw new ApiError("INVALID_JSON", "The body is not valid JSON");
    }
    return next();
  };
}

/** The whole stream if it holds at most `limit` bytes; null (and the stream cancelled) past that. */
async function readAtMost(stream: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array<ArrayBuffer> | null> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
