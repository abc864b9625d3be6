import type * as pulumi from "@pulumi/pulumi";

/**
 * Records what a program registers and calls under `pulumi.runtime.setMocks`, for mock tests to assert on.
 * Each test file keeps its own setMocks (the mocked outputs differ per file) and hands the registrations
 * and calls to a recorder; the lookups below then read the recorded inputs.
 */

/** Mock inputs are the untyped JSON the engine would receive, so tests index into them freely. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- mock inputs are untyped JSON
export type MockInputs = Record<string, any>;

/** One resource registration seen by the mocks. */
export interface Registration {
  type: string;
  name: string;
  inputs: MockInputs;
}

/** One provider function call seen by the mocks. */
export interface Call {
  token: string;
  inputs: MockInputs;
}

/** Resolves an Output's value (under mocks every Output resolves, known or not). */
export const value = <T>(o: pulumi.Output<T>) => new Promise<T>((resolve) => o.apply(resolve));

/** A fresh recorder; its functions are plain closures, so they can be destructured. */
export function mockRecorder() {
  const registrations: Registration[] = [];
  const calls: Call[] = [];

  /** Records a registration (call from the mocks' `newResource`). */
  const record = (args: pulumi.runtime.MockResourceArgs): void => {
    registrations.push({ type: args.type, name: args.name, inputs: args.inputs });
  };

  /** Records a provider function call (call from the mocks' `call`). */
  const recordCall = (args: pulumi.runtime.MockCallArgs): void => {
    calls.push({ token: args.token, inputs: args.inputs });
  };

  /** Waits until the registrations stop growing (children register after their parents' outputs resolve). */
  async function settle(): Promise<void> {
    let n = -1;
    while (n !== registrations.length) {
      n = registrations.length;
      await new Promise((r) => setTimeout(r, 30));
    }
  }

  /** The registrations named `<prefix>-...`: the children of a component named `prefix`. */
  const of = (prefix: string) => registrations.filter((r) => r.name.startsWith(`${prefix}-`));

  /** The one registration of `type` under `prefix`; fails the test unless there is exactly one. */
  const one = (prefix: string, type: string): Registration => {
    const found = of(prefix).filter((r) => r.type === type);
    expect(found).toHaveLength(1);
    return found[0];
  };

  /** The inputs of the one registration called `name`; fails the test unless there is exactly one. */
  const named = (name: string): MockInputs => {
    const found = registrations.filter((r) => r.name === name);
    expect(found).toHaveLength(1);
    return found[0].inputs;
  };

  return { registrations, calls, record, recordCall, settle, of, one, named };
}
