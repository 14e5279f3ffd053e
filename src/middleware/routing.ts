import type { Context, MiddlewareHandler } from "hono";
import type { App, AppEnv } from "../env";
import { ApiError } from "../errors";

type Pattern = { method: string; re: RegExp; template: string };

/** Per app, built on first use: routes are registered after the middleware that reads them. */
const patternsOf = new WeakMap<App, Pattern[]>();

function patterns(app: App): Pattern[] {
  let found = patternsOf.get(app);
  if (!found) {
    found = app.routes
      .filter((r) => r.method !== "ALL")
      // Literal parts escaped (the "." of /v1/openapi.json must not match any character), parameters as one segment.
      .map((r) => ({
        method: r.method,
        re: new RegExp("^" + r.path.split(/(:[A-Za-z_]+)/).map((part) => (part.startsWith(":") ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))).join("") + "$"),
        template: r.path.replace(/:([A-Za-z_]+)/g, "{$1}"), // the contract's spelling of a parameter
      }));
    patternsOf.set(app, found);
  }
  return found;
}

/** The methods some route of `app` takes on `path` (HEAD with GET, OPTIONS with any); empty for an unknown path. */
export function methodsForPath(app: App, path: string): string[] {
  const methods = new Set(patterns(app).filter((p) => p.re.test(path)).map((p) => p.method));
  if (methods.has("GET")) methods.add("HEAD"); // answered by the GET route, without the body
  if (methods.size > 0) methods.add("OPTIONS");
  return [...methods];
}

/** The template (`/v1/personalize/customers/{customer_id}`) of the route `path` is, whatever the method; null for an unknown path. */
export function routeTemplate(app: App, path: string): string | null {
  return patterns(app).find((p) => p.re.test(path))?.template ?? null;
}

/** Every literal segment of a route path (`v1`, `customers`, `export`, …): the only parts of an unknown path safe to log. */
const literalsOf = new WeakMap<App, Set<string>>();
export function routeLiterals(app: App): Set<string> {
  let found = literalsOf.get(app);
  if (!found) {
    found = new Set(patterns(app).flatMap((p) => p.template.split("/").filter((s) => s !== "" && !s.startsWith("{"))));
    literalsOf.set(app, found);
  }
  return found;
}

// Allow names OPTIONS (cors() answers preflights); a plain OPTIONS gets that list, not a 405 contradicting it.
const allowHeader = (allowed: string[]) => ({ Allow: allowed.join(", ") });

/**
 * The route is known before the body is looked at: an unknown path is 404 and a method its path does
 * not take 405 (API.md §1), whatever body came with it, instead of a 400/413/415 about a body no
 * route would read. Requests a route takes go on to the body checks.
 */
export function knownRoutes(app: App): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const allowed = methodsForPath(app, c.req.path);
    if (c.req.method === "OPTIONS" && allowed.length > 0) return c.body(null, 204, allowHeader(allowed));
    if (!allowed.includes(c.req.method)) throw routeMiss(c, allowed);
    return next();
  };
}

/** Paths longer than this are cut in error messages (a URL may be 16 KB; the message needs only its start). */
const PATH_IN_MESSAGE = 200;

/** The request's path for an error message: cut to PATH_IN_MESSAGE characters, "…" marking the cut. */
export function pathForMessage(path: string): string {
  return path.length > PATH_IN_MESSAGE ? `${path.slice(0, PATH_IN_MESSAGE)}…` : path;
}

/** "No route GET /path": the 404 message of every route miss. */
export const noRouteMessage = (c: Context<AppEnv>) => `No route ${c.req.method} ${pathForMessage(c.req.path)}`;

/** Why no route takes the request: 405 with Allow on a known path, else 404. */
export function routeMiss(c: Context<AppEnv>, allowed: string[]): ApiError {
  if (allowed.length === 0) return new ApiError("NOT_FOUND", noRouteMessage(c));
  return new ApiError("METHOD_NOT_ALLOWED", `${c.req.method} is not allowed on ${pathForMessage(c.req.path)}`, undefined, allowHeader(allowed));
}
