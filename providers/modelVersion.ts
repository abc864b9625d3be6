import * as pulumi from "@pulumi/pulumi";
import * as core from "./modelVersionCore";

// Thin dynamic resource over ./modelVersionCore (see the contract there). The provider's methods are
// serialized into the state and run in the dynamic-provider process: they only call the core functions,
// which the serializer captures together with the node modules they require.
const modelVersionProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds, news) {
    return { inputs: news };
  },
  async diff(id, olds, news) {
    return core.diffModelVersion(olds, news);
  },
  async create(inputs) {
    return core.createModelVersion(inputs, (msg) => console.log(`registry: ${msg}`));
  },
  async update(id, olds, news) {
    return { outs: await core.updateModelVersion(olds, news) };
  },
  async read(id, props) {
    const state = await core.readModelVersion(props);
    return state ? { id, props: state } : { id: "", props: {} };
  },
  async delete(id, props) {
    await core.deleteModelVersion(props, (msg) => console.log(`registry: ${msg}`));
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
