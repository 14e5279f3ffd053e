import { describe, expect, it } from "vitest";
import { fromBase64Url, toBase64Url } from "../../src/crypto/encoding";
import { type DecisionClaims, signDecision, verifyDecision } from "../../src/personalization/decision";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

describe("base64url", () => {
  it("round-trips every length of bytes", () => {
    for (let n = 0; n < 40; n++) {
      const bytes = new Uint8Array(n).map((_, i) => (i * 37 + n) & 0xff);
      expect(fromBase64Url(toBase64Url(bytes))).toEqual(bytes);
    }
  });

  it("has one spelling per value: a last character differing only in unused bits is refused", () => {
    for (const n of [1, 2, 16, 17]) {
      const text = toBase64Url(new Uint8Array(n).fill(0xa5));
      const last = ALPHABET.indexOf(text.at(-1)!);
      const unused = n % 3 === 1 ? 4 : 2; // 1 byte left over: 4 unused bits; 2 bytes: 2
      let variants = 0;
      for (let v = 1; v < 1 << unused; v++) {
        const other = text.slice(0, -1) + ALPHABET[last ^ v]!;
        expect(fromBase64Url(other)).toBeNull();
        variants += 1;
      }
      expect(variants).toBe((1 << unused) - 1);
    }
  });

  it("refuses padding, other alphabets and impossible lengths", () => {
    for (const text of ["QQ==", "a+b/", "A", "AAAAA", "A A"]) expect(fromBase64Url(text)).toBeNull();
  });
});

describe("decision ids have one spelling", () => {
  it("a decision id whose signature's last character differs in its unused bits does not verify", async () => {
    const claims: DecisionClaims = { m: "m_enc", a: "treatment", f: null, r: ["visa"], t: Date.now() };
    const id = await signDecision("k", claims);
    expect(await verifyDecision("k", id, "m_enc")).not.toBeNull();
    const last = ALPHABET.indexOf(id.at(-1)!);
    for (let v = 1; v < 16; v++) expect(await verifyDecision("k", id.slice(0, -1) + ALPHABET[last ^ v]!, "m_enc")).toBeNull();
  });
});
