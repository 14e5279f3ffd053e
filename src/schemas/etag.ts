import { z } from "@hono/zod-openapi";
import type { VersionPrecondition } from "../storage/merchants";

/**
 * Entity tags of the admin API's merchants (RFC 9110 §8.8.3): a strong tag of the row's version,
 * `"v7"`. Opaque to clients: they send back what they were given, in `If-Match`.
 */
export const etagOf = (version: number) => `"v${version}"`;

/**
 * One list element: an entity tag (optional weak prefix, a quoted run of etagc: RFC 9110 §8.8.3, no
 * `"`, controls or space) or nothing (lists may hold empty elements, §5.6.1.2), then a comma or the end.
 */
const LIST_ELEMENT = /[ \t]*(?:(W\/)?"([\x21\x23-\x7e\x80-\xff]*)")?[ \t]*(,|$)/y;

/**
 * The stored versions an `If-Match` value names, or null when it is not one: `*`, or a comma-separated
 * list of entity tags. If-Match compares strongly (RFC 9110 §13.1.1), so a weak tag, or a tag this
 * API never gave out, matches no version; that is a 412, not a malformed header.
 */
export function parseIfMatch(value: string): VersionPrecondition | null {
  if (value.trim() === "*") return "any";
  const versions: number[] = [];
  let tags = 0;
  LIST_ELEMENT.lastIndex = 0;
  for (;;) {
    const element = LIST_ELEMENT.exec(value);
    if (!element) return null;
    const [, weak, opaque, end] = element;
    if (opaque !== undefined) {
      tags += 1;
      const ours = /^v(0|[1-9]\d{0,14})$/.exec(opaque);
      if (weak === undefined && ours) versions.push(Number(ours[1]));
    }
    if (end === "") break;
  }
  return tags > 0 ? versions : null;
}

export const IfMatchHeaders = z.object({
  "if-match": z
    .string()
    .refine((v) => parseIfMatch(v) !== null, { message: 'If-Match must be * or a comma-separated list of quoted entity tags, e.g. "v7" (the ETag a read gave)' })
    .optional()
    .openapi({
      description:
        "Apply the PATCH only if the merchant is still at this version: the `ETag` of the GET (or of the last write) it was computed from. " +
        "When another write came first: 412 PRECONDITION_FAILED, nothing changed. Without it, the PATCH is merged into whatever is stored.",
      example: '"v7"',
    }),
});
