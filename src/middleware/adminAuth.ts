import type { MiddlewareHandler } from "hono";
import { constantTimeEqual } from "../crypto/hash";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { noRouteMessage } from "./routing";

/** Admin API: Bearer ADMIN_TOKEN, compared in constant time; without the secret the API does not exist (404). */
export function adminAuth(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const expected = c.env.ADMIN_TOKEN;
    if (!expected) throw new ApiError("NOT_FOUND", noRouteMessage(c));
    const authorization = c.req.header("Authorization") ?? "";
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!m || !(await constantTimeEqual(m[1]!, expected))) {
      // RFC 6750 §3.1: a request that sent no credential at all gets the challenge without an error code.
      const challenge: Record<string, string> = authorization.trim() === "" ? { "WWW-Authenticate": 'Bearer realm="tap2-admin"' } : {};
      throw new ApiError("INVALID_ADMIN_TOKEN", "The admin token is missing or wrong", undefined, challenge);
    }
    return next();
  };
}
