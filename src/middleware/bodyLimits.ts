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
    const bytes = await c.req.arrayBuffer();
    if (bytes.byteLength > MAX_BODY_BYTES) throw new ApiError("PAYLOAD_TOO_LARGE", `The body exceeds ${MAX_BODY_BYTES} bytes`);
    if (bytes.byteLength === 0) return next();

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
