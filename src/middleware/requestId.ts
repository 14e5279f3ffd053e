import type { MiddlewareHandler } from "hono";
import { randomToken } from "../crypto/hash";
import type { AppEnv } from "../env";

const INCOMING_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** Reuses a well-formed incoming X-Request-Id, else makes `req_…`; echoed on every response. */
export function requestId(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const incoming = c.req.header("X-Request-Id");
    const id = incoming && INCOMING_ID.test(incoming) ? incoming : `req_${randomToken(12)}`;
    c.set("requestId", id);
    c.set("logFields", {});
    await next();
    c.res.headers.set("X-Request-Id", id);
  };
}
