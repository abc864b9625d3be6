import * as pulumi from "@pulumi/pulumi";
import type * as core from "./deployment/core";
import type { DeployMode, RemoteServingArgs } from "./deployment/types";
import type { MlflowAuth } from "./modelVersionCore";
import { assertProviderCodeCurrent, providerCode } from "./providerCode";

// Thin dynamic resource over ./deployment/core (see the contract there), loaded from the installed
// provider code (./providerCode.ts). Progress lines go to the provider's stdout, which the engine shows
// as info messages during `pulumi up`.
type Core = typeof core;
const modelDeploymentProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds, news) {
    const c = providerCode<Core>("providers/deployment/core");
    return { inputs: news, failures: await c.checkDeployment(olds, news) };
  },
  async diff(id, olds, news) {
    return providerCode<Core>("providers/deployment/core").diffDeployment(olds, news);
  },
  async create(inputs) {
    const c = providerCode<Core>("providers/deployment/core");
    return c.createDeployment(inputs, (msg) => console.log(`model server: ${msg}`));
  },
  async update(id, olds, news) {
    const c = providerCode<Core>("providers/deployment/core");
    return {
      outs: await c.updateDeployment(olds, news, (msg) => console.log(`model server: ${msg}`)),
    };
  },
  async read(id, props) {
    const c = providerCode<Core>("providers/deployment/core");
    const state = await c.readDeployment(props, (msg) => console.log(`model server: ${msg}`));
    return state ? { id, props: state } : { id: "", props: {} };
  },
  async delete(id, props) {
    await providerCode<Core>("providers/deployment/core").deleteDeployment(props);
  },
};

export interface ModelDeploymentArgs {
  mode: pulumi.Input<DeployMode>;
  modelUri: pulumi.Input<string>;
  trackingUri: pulumi.Input<string>;
  auth?: pulumi.Input<MlflowAuth | undefined>;
  host: pulumi.Input<string>;
  port?: pulumi.Input<number>;
  portRangeStart: pulumi.Input<number>;
  mlflowBin: pulumi.Input<string>;
  runDir: pulumi.Input<string>;
  startTimeoutSeconds: pulumi.Input<number>;
  /** Environment variable names copied from the deploying environment into the model server's
   * (default []); nothing else of that environment reaches it. */
  passEnv?: pulumi.Input<pulumi.Input<string>[]>;
  /** Deploy mode `remote`: the SSH host (secret: the private key) and its layout. */
  remote?: pulumi.Input<RemoteServingArgs | undefined>;
}

/** A model served as a REST endpoint on the MLflow host or a host over SSH (id `<host>:<port>`). */
export class ModelDeployment extends pulumi.dynamic.Resource {
  declare public readonly url: pulumi.Output<string>;
  declare public readonly baseUrl: pulumi.Output<string>;
  declare public readonly servedPort: pulumi.Output<number>;

  constructor(name: string, args: ModelDeploymentArgs, opts?: pulumi.CustomResourceOptions) {
    assertProviderCodeCurrent();
    super(
      modelDeploymentProvider,
      name,
      {
        url: undefined,
        baseUrl: undefined,
        servedPort: undefined,
        ...args,
        passEnv: args.passEnv ?? [],
        // Names the port reservation, so the next create of this resource finds a killed create's server.
        owner: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}/${name}`,
      },
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["auth", "remote"] }),
      "modelserving",
      "ModelDeployment",
    );
  }
}
