import * as pulumi from "@pulumi/pulumi";
import * as core from "./deployment/core";
import { DeployMode } from "./deployment/types";
import { MlflowAuth } from "./modelVersionCore";

// Thin dynamic resource over ./deployment/core (see the contract there). Progress lines go to the
// provider's stdout, which the engine shows as info messages during `pulumi up`.
const modelDeploymentProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds, news) {
    return { inputs: news, failures: await core.checkDeployment(olds, news) };
  },
  async diff(id, olds, news) {
    return core.diffDeployment(olds, news);
  },
  async create(inputs) {
    return core.createDeployment(inputs, (msg) => console.log(`model server: ${msg}`));
  },
  async update(id, olds, news) {
    return {
      outs: await core.updateDeployment(olds, news, (msg) => console.log(`model server: ${msg}`)),
    };
  },
  async read(id, props) {
    const state = await core.readDeployment(props, (msg) => console.log(`model server: ${msg}`));
    return state ? { id, props: state } : { id: "", props: {} };
  },
  async delete(id, props) {
    await core.deleteDeployment(props);
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
}

/** A model served as a REST endpoint on the MLflow host (id `<host>:<port>`). */
export class ModelDeployment extends pulumi.dynamic.Resource {
  declare public readonly url: pulumi.Output<string>;
  declare public readonly baseUrl: pulumi.Output<string>;
  declare public readonly servedPort: pulumi.Output<number>;

  constructor(name: string, args: ModelDeploymentArgs, opts?: pulumi.CustomResourceOptions) {
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
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["auth"] }),
      "modelserving",
      "ModelDeployment",
    );
  }
}
