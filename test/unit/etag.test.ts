import { describe, expect, it } from "vitest";
import { etagOf, parseIfMatch } from "../../src/schemas/etag";

describe("entity tags of merchants (If-Match)", () => {
  it("a strong tag of the version, read back from If-Match", () => {
    expect(etagOf(0)).toBe('"v0"');
    expect(etagOf(42)).toBe('"v42"');
    expect(parseIfMatch(etagOf(42))).toEqual([42]);
  });

  it("* matches any stored version; a list names each of its versions", () => {
    expect(parseIfMatch("*")).toBe("any");
    expect(parseIfMatch(" * ")).toBe("any");
    expect(parseIfMatch('"v7", "v9"')).toEqual([7, 9]);
    expect(parseIfMatch(' "v7" ,\t"v9" ')).toEqual([7, 9]);
    expect(parseIfMatch('"v7",,"v9",')).toEqual([7, 9]); // empty list elements are allowed (RFC 9110 §5.6.1.2)
  });

  it("weak tags and tags this API never gave out are well-formed but match nothing (strong comparison)", () => {
    expect(parseIfMatch('W/"v7"')).toEqual([]);
    expect(parseIfMatch('"abc"')).toEqual([]);
    expect(parseIfMatch('"v07"')).toEqual([]);
    expect(parseIfMatch('""')).toEqual([]);
    expect(parseIfMatch('"a,b", "v3"')).toEqual([3]); // a comma inside a tag is part of it
  });

  it("anything else is not an If-Match value", () => {
    for (const bad of ["v7", '"v7', "", " ", ",", '"v7" "v8"', '"v7"x', 'w/"v7"', '"v 7"', '*, "v7"', '"v\u00017"']) {
      expect(parseIfMatch(bad), JSON.stringify(bad)).toBeNull();
    }
  });
});
