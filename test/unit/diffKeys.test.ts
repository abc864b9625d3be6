import * as pulumi from "@pulumi/pulumi";
import { changedKeys, containsUnknown, diffByKeys, UNKNOWN } from "../../providers/diffKeys";

// The shared key-by-key diff of the three dynamic providers, with the values `pulumi preview` really
// sends a dynamic provider's diff: known values, and Pulumi's unknown sentinel (also nested).
interface Args {
  uri?: unknown;
  name?: unknown;
  tags?: unknown;
  timeout?: unknown;
}
const olds: Args = { uri: "http://127.0.0.1:5000", name: "iris", tags: { a: "1" }, timeout: 10 };
const REPLACE = ["uri", "name"] as const;
const UPDATE = ["tags", "timeout"] as const;

describe("diffByKeys", () => {
  it("uses the sentinel the Pulumi runtime sends for unknown values", () => {
    expect(UNKNOWN).toBe(pulumi.runtime.unknownValue);
  });

  const cases: [string, Args, boolean, string[]][] = [
    ["nothing changed", {}, false, []],
    ["a known replace key replaces", { uri: "http://127.0.0.1:6000" }, true, ["uri"]],
    ["a known update key updates", { timeout: 20 }, true, []],
    ["an unknown replace key is only a possible update", { uri: UNKNOWN }, true, []],
    ["an unknown update key is a possible update", { timeout: UNKNOWN }, true, []],
    ["an unknown nested in an object", { name: { first: UNKNOWN } }, true, []],
    ["an unknown nested in an array", { name: ["iris", UNKNOWN] }, true, []],
    ["an unknown inside an update key's object", { tags: { a: UNKNOWN } }, true, []],
    [
      "a known change still replaces next to an unknown one",
      { uri: UNKNOWN, name: "iris2" },
      true,
      ["name"],
    ],
    ["undefined and missing are the same", { timeout: 10, tags: { a: "1" } }, false, []],
  ];
  it.each(cases)("%s", (_t, change, changes, replaces) => {
    for (const deleteBeforeReplace of [false, true]) {
      expect(
        diffByKeys(olds, { ...olds, ...change }, REPLACE, UPDATE, deleteBeforeReplace),
      ).toEqual({ changes, replaces, deleteBeforeReplace });
    }
  });

  it("counts an unknown value as changed in changedKeys", () => {
    expect(changedKeys(olds, { ...olds, timeout: UNKNOWN }, ["timeout", "uri"])).toEqual([
      "timeout",
    ]);
  });

  it("finds the sentinel at any depth and nowhere else", () => {
    expect(containsUnknown(UNKNOWN)).toBe(true);
    expect(containsUnknown({ a: [{ b: UNKNOWN }] })).toBe(true);
    expect(containsUnknown({ a: [{ b: "x" }], c: null, d: 1 })).toBe(false);
    expect(containsUnknown(`${UNKNOWN}-suffix`)).toBe(false);
    expect(containsUnknown(undefined)).toBe(false);
  });
});
