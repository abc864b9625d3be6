import * as pulumi from "@pulumi/pulumi";
import type * as core from "./modelReferenceCore";
import { assertProviderCodeCurrent, providerCode } from "./providerCode";

// Thin dynamic resource over ./modelReferenceCore (see the contract there), loaded from the installed
// provider code (./providerCode.ts).
type Core = typeof core;
const log = (msg: string) => console.log(`registry: ${msg}`);
const modelReferenceProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds, news) {
    return { inputs: news };
  },
  async diff(id, olds, news) {
    return providerCode<Core>("providers/modelReferenceCore").diffModelReference(olds, news);
  },
  async create(inputs) {
    return providerCode<Core>("providers/modelReferenceCore").createModelReference(inputs, log);
  },
  async update(id, olds, news) {
    const c = providerCode<Core>("providers/modelReferenceCore");
    return { outs: await c.updateModelReference(olds, news, log) };
  },
  async read(id, props) {
    const state = await providerCode<Core>("providers/modelReferenceCore").readModelReference(
      props,
      log,
    );
    return state ? { id, props: state } : { id: "", props: {} };
  },
  async delete() {
    // Nothing to do: the registry is left exactly as it is.
  },
};

export interface ModelReferenceResourceArgs {
  trackingUri: pulumi.Input<string>;
  registryId?: pulumi.Input<string>;
  auth?: pulumi.Input<core.MlflowAuth | undefined>;
  name: pulumi.Input<string>;
  /** Exactly one of version and alias. */
  version?: pulumi.Input<number>;
  alias?: pulumi.Input<string>;
}

/** A version the registry already holds (by number, or the one an alias points to), never changed. */
export class ModelReference extends pulumi.dynamic.Resource {
  declare public readonly resolvedVersion: pulumi.Output<string>;
  declare public readonly modelUri: pulumi.Output<string>;
  declare public readonly storageSource: pulumi.Output<string>;
  declare public readonly servingExample: pulumi.Output<string>;

  constructor(name: string, args: ModelReferenceResourceArgs, opts?: pulumi.CustomResourceOptions) {
    assertProviderCodeCurrent();
    super(
      modelReferenceProvider,
      name,
      {
        resolvedVersion: undefined,
        modelUri: undefined,
        storageSource: undefined,
        runId: undefined,
        servingExample: undefined,
        ...args,
      },
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["auth"] }),
      "modelserving",
      "ModelReference",
    );
  }
}
