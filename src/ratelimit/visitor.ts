/**
 * The per-visitor limit of publishable keys (a merchant's `features.visitor_limit`,
 * docs/rate-limiting.md): its numbers and who a visitor is. Pure; the middleware calls the binding.
 */

/**
 * Requests one visitor may send per period with a publishable key, per merchant and Cloudflare
 * location: the VISITOR_LIMITER binding's `simple` limit and period, which `npm run check:config`
 * holds equal to these in every wrangler config.
 */
export const VISITOR_LIMIT = 120;
export const VISITOR_PERIOD_SECONDS = 60;

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const GROUP = /^[0-9a-f]{1,4}$/;

/**
 * The visitor of a request: its client address as Cloudflare reports it (`CF-Connecting-IP`, which a
 * client cannot set through Cloudflare), an IPv6 address cut to its /64 (one subscriber's network),
 * an IPv4-mapped IPv6 address as its IPv4 address. Null when there is none or it is no address (a
 * request that did not come through Cloudflare's edge).
 */
export function visitorOf(address: string | undefined): string | null {
  const ip = address?.trim().toLowerCase();
  if (!ip) return null;
  if (!ip.includes(":")) return IPV4.test(ip) ? ip : null;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(ip); // an IPv4 client seen through IPv6
  if (mapped) return mapped[1]!;
  const halves = ip.split("::");
  if (halves.length > 2) return null;
  const groupsOf = (part: string | undefined) => (part ? part.split(":") : []);
  const head = groupsOf(halves[0]);
  const tail = groupsOf(halves[1]);
  let groups: string[];
  if (halves.length === 1) {
    groups = head;
  } else {
    // "::" stands for at least one group of zeros, wherever it is: the groups after it may still be
    // among the first four (2001::1:2:3:4:5 is 2001:0:0:1:2:3:4:5).
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return null;
    groups = [...head, ...Array<string>(missing).fill("0"), ...tail];
  }
  if (groups.length !== 8 || !groups.every((g) => GROUP.test(g))) return null;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":")}::/64`;
}
