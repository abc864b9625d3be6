/** Key-by-key diffs for the dynamic providers: old outputs against new inputs. */

/**
 * What a dynamic provider's `diff` receives for a value that is not known yet (during `pulumi preview`,
 * an output of a resource that is still to be created or updated): Pulumi's `runtime.unknownValue`,
 * possibly nested inside arrays and objects. A constant here, so the providers' serialized code does
 * not pull in the SDK for it (test/unit/diffKeys.test.ts checks it against the SDK).
 */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** True when the value is, or contains, a value unknown during preview. */
export function containsUnknown(value: unknown): boolean {
  if (value === UNKNOWN) {
    return true;
  }
  if (Array.isArray(value)) {
    return value.some(containsUnknown);
  }
  if (value !== null && typeof value === "object") {
    return Object.values(value).some(containsUnknown);
  }
  return false;
}

/** The keys whose values differ (compared as JSON; missing and undefined count as null). A key whose new
 * value is unknown counts as changed. */
export function changedKeys<T, K extends keyof T>(olds: T, news: T, keys: readonly K[]): K[] {
  return keys.filter(
    (k) =>
      containsUnknown(news[k]) ||
      JSON.stringify(olds[k] ?? null) !== JSON.stringify(news[k] ?? null),
  );
}

/**
 * A provider diff result: a change in `replaceKeys` replaces, one in `updateKeys` updates in place.
 * A value not known yet (preview) is "maybe an update", never a replacement: `pulumi up` runs the
 * program again and diffs the real value before it acts, and only a known change replaces. Previewing
 * a replacement for every unknown input would announce deletions that never happen.
 */
export function diffByKeys<T, K extends keyof T>(
  olds: T,
  news: T,
  replaceKeys: readonly K[],
  updateKeys: readonly K[],
  deleteBeforeReplace: boolean,
): { changes: boolean; replaces: string[]; deleteBeforeReplace: boolean } {
  const changed = changedKeys(olds, news, [...replaceKeys, ...updateKeys]);
  const replaces = replaceKeys.filter((k) => changed.includes(k) && !containsUnknown(news[k]));
  return {
    changes: changed.length > 0,
    replaces: replaces.map(String),
    deleteBeforeReplace,
  };
}
