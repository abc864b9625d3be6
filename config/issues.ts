import { z } from "zod";

/**
 * The one error format of the stack config, for every key (models, mlflow, cloud targets):
 * `model-serving:<key.path>: <why> (got <value>)`, one line per problem. Secrets are never echoed.
 */

export type KeyPath = (string | number)[];

/** `models[0].targets.sagemaker` from ["models", 0, "targets", "sagemaker"], after an optional prefix. */
export function keyName(prefix: string, keys: KeyPath): string {
  return keys.reduce<string>(
    (acc, k) => (typeof k === "number" ? `${acc}[${k}]` : acc ? `${acc}.${k}` : k),
    prefix,
  );
}

export function valueAt(raw: unknown, keys: KeyPath): unknown {
  return keys.reduce<unknown>(
    (v, k) => (v !== null && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined),
    raw,
  );
}

/** Strips `user:password@` from a URL-like string so a credential is never echoed. */
export function withoutUserInfo(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, "$1<hidden>@");
}

/** How a value is shown after "got": passwords, passphrases, private keys and DSNs hidden, URLs without
 * credentials. */
export function shown(keys: KeyPath, value: unknown): string {
  const last = keys.at(-1);
  if (typeof last === "string" && /password|passphrase|^privateKey$|dsn/i.test(last)) {
    return "<hidden>";
  }
  if (typeof value === "string") {
    return JSON.stringify(withoutUserInfo(value));
  }
  return JSON.stringify(value) ?? String(value);
}

/** One problem line. `got` is omitted when undefined. */
export function problem(prefix: string, keys: KeyPath, message: string, got?: unknown): string {
  const gotText = got === undefined ? "" : ` (got ${shown(keys, got)})`;
  return `${prefix}${keyName("", keys)}: ${message}${gotText}`;
}

const article = (t: string) => (/^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`);

/** Messages for the checks that carry none of their own (types, enums, bounds, uuids). */
export const errorMap: z.ZodErrorMap = (issue, ctx) => {
  // A message the schema set itself (invalid_type_error, errorMap on the schema) wins.
  if (ctx.defaultError !== z.defaultErrorMap(issue, { data: ctx.data, defaultError: "" }).message) {
    return { message: ctx.defaultError };
  }
  switch (issue.code) {
    case z.ZodIssueCode.invalid_type:
      if (issue.received === "undefined") {
        return { message: "is required" };
      }
      return {
        message:
          issue.expected === "integer"
            ? "must be a whole number"
            : `must be ${article(issue.expected)}`,
      };
    case z.ZodIssueCode.invalid_enum_value:
      return {
        message: `must be one of ${issue.options.map((o) => JSON.stringify(o)).join(", ")}`,
      };
    case z.ZodIssueCode.invalid_string:
      if (issue.validation === "uuid") {
        return { message: "must be a UUID" };
      }
      break;
    case z.ZodIssueCode.too_small:
      if (issue.type === "string" && issue.minimum === 1) {
        return { message: "must not be empty" };
      }
      if (issue.type === "number") {
        return {
          message: `must be ${issue.inclusive ? "at least" : "more than"} ${issue.minimum}`,
        };
      }
      if (issue.type === "array") {
        return { message: `must list at least ${issue.minimum}` };
      }
      break;
    case z.ZodIssueCode.too_big:
      if (issue.type === "number") {
        return { message: `must be ${issue.inclusive ? "at most" : "less than"} ${issue.maximum}` };
      }
      if (issue.type === "string") {
        return { message: `must be at most ${issue.maximum} characters` };
      }
      if (issue.type === "array") {
        return { message: `must list at most ${issue.maximum}` };
      }
      break;
  }
  return { message: ctx.defaultError };
};

/** A whole number from min to max, with the message the config uses for every such field. */
export const wholeNumber = (min: number, max?: number) => {
  const message =
    max === undefined
      ? `must be a whole number of at least ${min}`
      : `must be a whole number from ${min} to ${max}`;
  let n = z.number({ invalid_type_error: message }).int(message).min(min, message);
  if (max !== undefined) {
    n = n.max(max, message);
  }
  return n;
};

/** Unwraps optional/default/effects/pipeline wrappers down to the schema that parses the value. */
function inner(schema: z.ZodTypeAny): z.ZodTypeAny {
  for (;;) {
    if (schema instanceof z.ZodOptional || schema instanceof z.ZodNullable) {
      schema = schema.unwrap();
    } else if (schema instanceof z.ZodDefault) {
      schema = schema._def.innerType;
    } else if (schema instanceof z.ZodEffects) {
      schema = schema.innerType();
    } else if (schema instanceof z.ZodPipeline) {
      schema = schema._def.in;
    } else {
      return schema;
    }
  }
}

/** The object schema at `keys` (for naming the keys an object accepts), if there is one. */
function objectAt(schema: z.ZodTypeAny, keys: KeyPath): z.AnyZodObject | undefined {
  let s = inner(schema);
  for (const k of keys) {
    if (s instanceof z.ZodObject) {
      const next = (s.shape as Record<string, z.ZodTypeAny>)[String(k)];
      if (!next) {
        return undefined;
      }
      s = inner(next);
    } else if (s instanceof z.ZodArray) {
      s = inner(s.element);
    } else if (s instanceof z.ZodUnion) {
      const obj = (s.options as z.ZodTypeAny[]).map(inner).find((o) => o instanceof z.ZodObject);
      if (!obj) {
        return undefined;
      }
      s = objectAt(obj, [k]) ?? obj;
    } else {
      return undefined;
    }
  }
  if (s instanceof z.ZodUnion) {
    s = (s.options as z.ZodTypeAny[]).map(inner).find((o) => o instanceof z.ZodObject) ?? s;
  }
  return s instanceof z.ZodObject ? s : undefined;
}

/** A union's "Invalid input" says little: report the issues of the branch that got furthest instead. */
function mostSpecific(issue: z.ZodIssue): z.ZodIssue[] {
  if (issue.code !== "invalid_union") {
    return [issue];
  }
  const branches = issue.unionErrors.map((e) => e.issues.flatMap(mostSpecific));
  const depth = (issues: z.ZodIssue[]) => Math.max(...issues.map((i) => i.path.length));
  const best = branches.reduce((a, b) => (depth(b) > depth(a) ? b : a));
  return depth(best) > issue.path.length ? best : [issue];
}

/**
 * Every issue of a failed parse as problem lines. An unknown key names itself and the keys its object
 * accepts; a custom issue may set `params: { got: false }` when the value would say nothing.
 */
export function formatIssues(
  error: z.ZodError,
  raw: unknown,
  schema: z.ZodTypeAny,
  prefix: string,
  base: KeyPath = [],
): string[] {
  return error.issues.flatMap(mostSpecific).flatMap((issue) => {
    const keys = [...base, ...issue.path];
    if (issue.code === z.ZodIssueCode.unrecognized_keys) {
      const accepted = Object.keys(objectAt(schema, issue.path)?.shape ?? {});
      const hint = accepted.length > 0 ? `; expected one of ${accepted.join(", ")}` : "";
      return issue.keys.map((k) => problem(prefix, [...keys, k], `unknown key${hint}`));
    }
    const got =
      issue.code === z.ZodIssueCode.custom && issue.params?.got === false
        ? undefined
        : valueAt(raw, issue.path);
    return [problem(prefix, keys, issue.message, got)];
  });
}
