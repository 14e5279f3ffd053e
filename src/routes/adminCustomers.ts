import { createRoute, z } from "@hono/zod-openapi";
import type { App } from "../env";
import { ApiError } from "../errors";
import { ADMIN_ERRORS, errorResponses, jsonResponse, MerchantId, NoQuery } from "../schemas/common";
import { LegacyCustomerBody, LegacyCustomerExport, LegacyCustomerRestored, LegacyDeletionAccepted } from "../schemas/customers";
import { adminSecurity } from "../schemas/security";
import { loadMerchant } from "../storage/merchants";
import { eraseCustomer, exportCustomerData, restoreCustomerData } from "./customers";

/**
 * Data rights of the customers `.` and `..` (docs/data-rights.md, "Ids . and .."): API.md §1's id
 * format allowed them until they were refused (they cannot be a path segment), so rows of such a
 * customer may be stored, and the merchant routes, whose id is in the path, can never name them.
 * The operator exports, erases and restores them here, the id in the body, with the same effect as
 * the merchant routes (audit actor `admin`). Only these two ids: the rest keep their one way in.
 */
const MerchantPath = z.strictObject({ merchant_id: MerchantId.openapi({ param: { name: "merchant_id", in: "path" } }) });
const tags = ["Admin"];
const body = { content: { "application/json": { schema: LegacyCustomerBody } }, required: true };
const request = { params: MerchantPath, query: NoQuery, body };
const errors = errorResponses(...ADMIN_ERRORS);
const ACTOR = "admin";

const exportRoute = createRoute({
  method: "post", path: "/v1/admin/merchants/{merchant_id}/customers/export", operationId: "exportLegacyCustomer", tags, security: adminSecurity,
  summary: "Export a customer whose id is . or .. (no URL path can name it), as GET /v1/personalize/customers/{customer_id}/export would",
  request,
  responses: { 200: jsonResponse(LegacyCustomerExport, "The customer's data"), ...errors },
});
const eraseRoute = createRoute({
  method: "post", path: "/v1/admin/merchants/{merchant_id}/customers/delete", operationId: "deleteLegacyCustomer", tags, security: adminSecurity,
  summary: "Request erasure of a customer whose id is . or .., as DELETE /v1/personalize/customers/{customer_id} would",
  request,
  responses: { 202: jsonResponse(LegacyDeletionAccepted, "Erasure scheduled"), ...errors },
});
const restoreRoute = createRoute({
  method: "post", path: "/v1/admin/merchants/{merchant_id}/customers/restore", operationId: "restoreLegacyCustomer", tags, security: adminSecurity,
  summary: "Cancel a pending erasure of a customer whose id is . or .., as POST /v1/personalize/customers/{customer_id}/restore would",
  request,
  responses: { 200: jsonResponse(LegacyCustomerRestored, "Restored; the data is used again"), ...errors },
});

/** The merchant's id, or 404: the data of a merchant that does not exist cannot be named. */
async function merchantOf(db: D1Database, id: string): Promise<string> {
  if (!(await loadMerchant(db, id))) throw new ApiError("NOT_FOUND", `No merchant ${id}`);
  return id;
}

export function registerAdminCustomerRoutes(app: App): void {
  app.openapi(exportRoute, async (c) => {
    const merchantId = await merchantOf(c.env.DB, c.req.valid("param").merchant_id);
    return c.json(await exportCustomerData(c, merchantId, c.req.valid("json").customer_id, ACTOR), 200);
  });
  app.openapi(eraseRoute, async (c) => {
    const merchantId = await merchantOf(c.env.DB, c.req.valid("param").merchant_id);
    return c.json(await eraseCustomer(c, merchantId, c.req.valid("json").customer_id, ACTOR), 202);
  });
  app.openapi(restoreRoute, async (c) => {
    const merchantId = await merchantOf(c.env.DB, c.req.valid("param").merchant_id);
    return c.json(await restoreCustomerData(c, merchantId, c.req.valid("json").customer_id, ACTOR), 200);
  });
}
