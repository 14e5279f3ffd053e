import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";

export const MAX_BODY_BYTES = 64 * 1024;

/**
 * Bodies: at most 64 KiB (413), JSON only (415), well-formed (400 INVALID_JSON). The text read here
 * stays in Hono's body cache, so the route's validator parses it without a second read.
 */
export function bodyLimits(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const method = c.req.method;
    if (method === "GET" || method === "HEAD" || method === "OPTIONS") return next();

    const declared = Number(c.req.header("Content-Length") ?? "0");
    if (declared > MAX_BODY_BYTES) throw new ApiError("PAYLOAD_TOO_LARGE", `The body exceeds ${MAX_BODY_BYTES} bytes`);

    const raw = c.req.raw;
    if (!raw.body) return next();
    // Read with a byte count and stop past the limit: a chunked body has no Content-Length, and
    // reading it whole first would let one request hold any amount of the isolate's memory.
    const bytes = await readAtMost(raw.body, MAX_BODY_BYTES);
    if (bytes === null) throw new ApiError("PAYLOAD_TOO_LARGE", `The body exceeds ${MAX_BODY_BYTES} bytes`);
    if (bytes.byteLength === 0) return next();
    // Later readers (the validator, the authorization check) get the bytes read here.
    c.req.raw = new Request(raw, { body: bytes });

    const type = (c.req.header("Content-Type") ?? "").split(";")[0]!.trim().toLowerCase();
    if (type !== "application/json" && !/^application\/[a-z0-9.+-]+\+json$/.test(type)) {
      throw new ApiError("UNSUPPORTED_MEDIA_TYPE", "The body must be JSON with Content-Type: application/json");
    }
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
