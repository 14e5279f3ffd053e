import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";

/** One per merchant: the exact token bucket (issue: rate limiting). */
export class RateLimiter extends DurableObject<Env> {}
