/** OpenAPI security requirements: a merchant key in any of its three places. */
export const merchantSecurity: Record<string, string[]>[] = [{ ApiKeyHeader: [] }, { BearerKey: [] }, { ApiKeyQuery: [] }];

/** OpenAPI security requirement of /v1/admin/*: the ADMIN_TOKEN bearer. */
export const adminSecurity: Record<string, string[]>[] = [{ AdminToken: [] }];

export const securitySchemes = {
  ApiKeyHeader: { type: "apiKey", in: "header", name: "X-API-Key", description: "A merchant key tp2_sk_… / tp2_pk_…. Sent in more than one place, it must be the same key: two different keys are 401 INVALID_API_KEY" },
  BearerKey: { type: "http", scheme: "bearer", description: "A merchant key tp2_sk_… / tp2_pk_…" },
  ApiKeyQuery: { type: "apiKey", in: "query", name: "api_key" },
  AdminToken: { type: "http", scheme: "bearer", description: "ADMIN_TOKEN" },
} as const;
