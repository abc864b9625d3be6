// How a dynamic provider reaches its core. Pulumi serializes a provider's methods into the state (inputs
// and outputs of every resource) and inlines every module they capture that is not under node_modules:
// ~37 KB per ModelVersion, and the serialization walked the whole core graph on every `up`. Instead the
// methods call providerCode("providers/<core>"), which requires the core from the package
// node_modules/@model-serving/code that the bootstrap compiles from providers/ (scripts/provider-code.js),
// so the state carries a few hundred bytes naming the installed code.
//
// Consequences (README, "state and secrets"): like a provider plugin, every operation runs the installed
// code, including delete and read of resources written by an older checkout, so a core must keep reading
// the state its earlier versions wrote; a destroy needs the package installed (`npm run bootstrap`).

/** Loads a compiled core in the dynamic-provider process. Serialized into the state: captures nothing. */
export function providerCode<T>(core: string): T {
  const name = `@model-serving/code/${core}`;
  try {
    return require(name) as T;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "MODULE_NOT_FOUND" && String(e.message).includes(`'${name}'`)) {
      throw new Error(
        `model-serving's provider code ${name} is not installed under ${process.cwd()}/node_modules: ` +
          "run `npm run bootstrap` in the project (it builds the package from providers/) and retry",
      );
    }
    throw err;
  }
}

/** A core's partial state (Pulumi's ErrorResourceInitFailed: the object exists, a later step failed)
 * is recorded as the resource's outputs; the engine adds the serialized provider (`__provider`) only to
 * the outputs of a success, so the partial state gets the inputs' own, or a later update or delete of
 * the resource has no provider to run. Serialized into the state: captures nothing. */
export function withProviderKept(err: unknown, inputs: Record<string, unknown>): unknown {
  const e = err as { id?: unknown; properties?: Record<string, unknown> };
  if (e && typeof e === "object" && e.id && e.properties) {
    e.properties = { ...e.properties, __provider: inputs.__provider };
  }
  return err;
}

let checked = false;

/** Throws when the installed provider code is missing or was built from other sources than the
 * checkout's; runs once per program, when the first dynamic resource is declared. */
export function assertProviderCodeCurrent(): void {
  if (checked) {
    return;
  }
  const build = require("../scripts/provider-code.js") as { problem(): string | undefined };
  const problem = build.problem();
  if (problem) {
    throw new Error(problem);
  }
  checked = true;
}
