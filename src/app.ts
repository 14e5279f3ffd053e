import type { MiddlewareHandler } from "hono";
import { OpenAPIHono } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import type { App, AppEnv } from "./env";
import { ApiError, isDependencyFailure, renderError } from "./errors";
import { errorText, stackFrames } from "./log";
import { adminAuth } from "./middleware/adminAuth";
import { merchantAuth, merchantAuthorization } from "./middleware/auth";
import { bodyLimits } from "./middleware/bodyLimits";
import { cors } from "./middleware/cors";
import { jsonCharset } from "./middleware/jsonCharset";
import { logField, requestLogger } from "./middleware/logger";
import { rateLimit } from "./middleware/rateLimit";
import { requestId } from "./middleware/requestId";
import { responseHeaders } from "./middleware/responseHeaders";
import { knownRoutes, methodsForPath, routeMiss } from "./middleware/routing";
import { registerAdminRoutes } from "./routes/admin";
import { registerAdminCustomerRoutes } from "./routes/adminCustomers";
import { registerAnalyticsRoutes } from "./routes/analytics";
import { registerCatalogRoutes } from "./routes/catalog";
import { registerCheckoutRoutes } from "./routes/checkout";
import { registerConsentRoutes } from "./routes/consent";
import { registerCustomersRoutes } from "./routes/customers";
import { registerDeadLetterRoutes } from "./routes/deadLetters";
import { demoOnlyInDevelopment, registerDemoRoutes } from "./routes/demo";
import { registerFeedbackRoutes } from "./routes/feedback";
import { registerHealthRoutes } from "./routes/health";
import { registerMethodsRoutes } from "./routes/methods";
import { registerOffersRoutes } from "./routes/offers";
import { registerOpenApiRoutes } from "./routes/openapi";
import { registerPreferencesRoutes } from "./routes/preferences";
import { validationHook } from "./validation";

/** Paths under /v1 that take no merchant key. */
const PUBLIC_V1 = new Set(["/v1/openapi.json"]);
const isMerchantRoute = (path: string) => !path.startsWith("/v1/admin/") && !PUBLIC_V1.has(path);

export function createApp(): App {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  // The gateway, in request order.
  app.use("*", requestId());
  app.use("*", responseHeaders());
  app.use("*", jsonCharset());
  app.use("*", requestLogger(app));
  // Only a merchant route that exists answers for a merchant: the one place CORS may grant anything.
  const merchantRouteExists = (path: string) => path.startsWith("/v1/") && isMerchantRoute(path) && methodsForPath(app, path).length > 0;
  app.use("*", cors(merchantRouteExists));
  // Merchant routes: who the key is → its rate limit → the route → the body → what the key may do
  // here. Body checks come after the limiter so that a malformed body of a valid key (400/413/415)
  // counts against its limit and carries the RateLimit-* headers like any other answer (API.md §1);
  // the route comes before them, so a wrong path or method is 404/405 whatever body came with it.
  const merchantOnly = (step: MiddlewareHandler<AppEnv>): MiddlewareHandler<AppEnv> => (c, next) => (isMerchantRoute(c.req.path) ? step(c, next) : next());
  app.use("/v1/*", merchantOnly(merchantAuth()));
  app.use("/v1/*", merchantOnly(rateLimit()));
  app.use("/v1/admin/*", adminAuth());
  app.use("/demo/*", demoOnlyInDevelopment()); // elsewhere no demo route exists, whatever the method or body
  app.use("*", knownRoutes(app)); // 404, 405, a plain OPTIONS' Allow
  app.use("*", bodyLimits());
  app.use("/v1/*", merchantOnly(merchantAuthorization())); // reads merchant_id from the body bodyLimits has checked

  // Routes.
  registerHealthRoutes(app);
  registerAdminRoutes(app);
  registerAdminCustomerRoutes(app);
  registerDeadLetterRoutes(app);
  registerCatalogRoutes(app);
  registerMethodsRoutes(app);
  registerOffersRoutes(app);
  registerPreferencesRoutes(app);
  registerConsentRoutes(app);
  registerFeedbackRoutes(app);
  registerCustomersRoutes(app);
  registerCheckoutRoutes(app);
  registerAnalyticsRoutes(app);
  registerOpenApiRoutes(app);
  registerDemoRoutes(app); // answers 404 unless ENVIRONMENT is "development"

  // knownRoutes() answers every request no route takes; this is the fallback of a handler that passes one on.
  app.notFound((c) => {
    const miss = routeMiss(c, methodsForPath(app, c.req.path));
    logField(c, "error_code", miss.code);
    return renderError(c, miss);
  });

  app.onError((err, c) => {
    if (err instanceof ApiError) {
      logField(c, "error_code", err.code);
      return renderError(c, err);
    }
    if (err instanceof HTTPException && err.status < 500) {
      // Hono's own validators (a JSON body that cannot be parsed; @hono/zod-openapi's 415 media-type gate).
      const code = err.status === 415 ? "UNSUPPORTED_MEDIA_TYPE" : err.status === 413 ? "PAYLOAD_TOO_LARGE" : /json/i.test(err.message) ? "INVALID_JSON" : "VALIDATION_ERROR";
      logField(c, "error_code", code);
      return renderError(c, new ApiError(code, err.message || "Invalid request"));
    }
    logField(c, "error", errorText(err));
    if (isDependencyFailure(err)) {
      // Storage was unreachable (the request may or may not have been applied; every write is idempotent to retry).
      logField(c, "error_code", "UNAVAILABLE");
      return renderError(c, new ApiError("UNAVAILABLE", "A storage dependency is unavailable right now; retry the request"));
    }
    logField(c, "error_code", "INTERNAL_ERROR");
    logField(c, "stack", stackFrames(err)); // a bug of ours: where it was thrown
    return renderError(c, new ApiError("INTERNAL_ERROR", "Something went wrong on our side; the request id helps us find it"));
  });

  return app;
}
