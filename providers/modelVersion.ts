import * as pulumi from "@pulumi/pulumi";
import type * as core from "./modelVersionCore";
import { assertProviderCodeCurrent, providerCode } from "./providerCode";

// Thin dynamic resource over ./modelVersionCore (see the contract there). The provider's methods are
// serialized into the state and run in the dynamic-provider process: each loads the compiled core from
// the installed provider code (./providerCode.ts) and calls it, so the state carries no copy of the core.
type Core = typeof core;
const modelVersionProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds, news) {
    const c = providerCode<Core>("providers/modelVersionCore");
    return { inputs: await c.checkModelVersion(olds, news as core.ModelVersionArgs) };
  },
  async diff(id, olds, news) {
    return providerCode<Core>("providers/modelVersionCore").diffModelVersion(olds, news);
  },
  async create(inputs) {
    return providerCode<Core>("providers/modelVersionCore").createModelVersion(inputs, (msg) =>
      console.log(`registry: ${msg}`),
    );
  },
  async update(id, olds, news) {
    const c = providerCode<Core>("providers/modelVersionCore");
    return { outs: await c.updateModelVersion(olds, news) };
  },
  async read(id, props) {
    const state = await providerCode<Core>("providers/modelVersionCore").readModelVersion(props);
    return state ? { id, props: state } : { id: "", props: {} };
  },
  async delete(id, props) {
    const c = providerCode<Core>("providers/modelVersionCore");
    await c.deleteModelVersion(props, (msg) => console.log(`registry: ${msg}`));
  },
};

export interface ModelVersionResourceArgs {
  trackingUri: pulumi.Input<string>;
  /** Identifies the registry behind `trackingUri` (for a local server: its data directory; for an
   * existing server: its URL); another value registers anew. Default: `trackingUri`. */
  registryId?: pulumi.Input<string>;
  auth?: pulumi.Input<core.MlflowAuth | undefined>;
  name: pulumi.Input<string>;
  source: pulumi.Input<string>;
  sourceHash: pulumi.Input<string>;
  aliases: pulumi.Input<pulumi.Input<string>[]>;
  tags: pulumi.Input<Record<string, pulumi.Input<string>>>;
  description: pulumi.Input<string>;
  registration: pulumi.Input<number>;
  experimentName: pulumi.Input<string>;
  readyTimeoutSeconds: pulumi.Input<number>;
}

/** One registered version of an MLflow model (id `<name>/<version>`). */
export class ModelVersion extends pulumi.dynamic.Resource {
  declare public readonly version: pulumi.Output<string>;
  declare public readonly modelUri: pulumi.Output<string>;
  declare public readonly runId: pulumi.Output<string>;
  declare public readonly storageSource: pulumi.Output<string>;

  constructor(name: string, args: ModelVersionResourceArgs, opts?: pulumi.CustomResourceOptions) {
    assertProviderCodeCurrent();
    super(
      modelVersionProvider,
      name,
      {
        version: undefined,
        modelUri: undefined,
        runId: undefined,
        storageSource: undefined,
        ...args,
        registryId: args.registryId ?? args.trackingUri,
        // The claim tag's owner: create never adopts a version another owner registered.
        owner: `${pulumi.getProject()}/${pulumi.getStack()}/${name}`,
      },
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["auth"] }),
      "modelserving",
      "ModelVersion",
    );
  }
}
