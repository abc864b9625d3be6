import { inspect } from "util";

/**
 * Everything an error carries that could end up in a log or a Pulumi diagnostic: message, stack, every
 * own property (enumerable or not, nested objects such as an HTTP client's request config and headers)
 * and its `cause` chain. Use it for "no secret in the error" checks: `JSON.stringify(err)` sees none of
 * an Error's message, stack or cause (they are not enumerable), so a check on it cannot fail.
 */
export function errorText(err: unknown): string {
  return inspect(err, {
    showHidden: true,
    depth: 20,
    breakLength: Infinity,
    maxArrayLength: Infinity,
    maxStringLength: Infinity,
    getters: false,
  });
}
