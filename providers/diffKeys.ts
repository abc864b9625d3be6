/** Key-by-key diffs for the dynamic providers: old outputs against new inputs. */

/** The keys whose values differ (compared as JSON; missing and undefined count as null). */
export function changedKeys<T, K extends keyof T>(olds: T, news: T, keys: readonly K[]): K[] {
  return keys.filter((k) => JSON.stringify(olds[k] ?? null) !== JSON.stringify(news[k] ?? null));
}

/** A provider diff result: any change in `replaceKeys` replaces, one in `updateKeys` updates in place. */
export function diffByKeys<T, K extends keyof T>(
  olds: T,
  news: T,
  replaceKeys: readonly K[],
  updateKeys: readonly K[],
  deleteBeforeReplace: boolean,
): { changes: boolean; replaces: string[]; deleteBeforeReplace: boolean } {
  const replaces = changedKeys(olds, news, replaceKeys);
  const updates = changedKeys(olds, news, updateKeys);
  return {
    changes: replaces.length + updates.length > 0,
    replaces: replaces.map(String),
    deleteBeforeReplace,
  };
}
