import * as pulumi from "@pulumi/pulumi";
import * as core from "./mlflowServerCore";

// Thin dynamic resource over ./mlflowServerCore (see the contract there). Progress lines go to the
// provider's stdout, which the engine shows as info messages during `pulumi up`.
const localMlflowServerProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds, news) {
    return { inputs: news, failures: await core.checkMlflowServer(olds, news) };
  },
  async diff(id, olds, news) {
    return core.diffMlflowServer(olds, news);
  },
  async create(inputs) {
    const outs = await core.startMlflowServer(inputs, (msg) => console.log(`mlflow: ${msg}`));
    return { id: core.serverId(outs), outs };
  },
  async update(id, olds, news) {
    return {
      outs: await core.updateMlflowServer(olds, news, (msg) => console.log(`mlflow: ${msg}`)),
    };
  },
  async read(id, props) {
    const state = await core.readMlflowServer(props, (msg) => console.log(`mlflow: ${msg}`));
    return state ? { id, props: state } : { id: "", props: {} };
  },
  async delete(id, props) {
    await core.stopMlflowServer(props);
  },
};

export interface LocalMlflowServerArgs {
  mlflowBin: pulumi.Input<string>;
  host: pulumi.Input<string>;
  port: pulumi.Input<number>;
  dataDir: pulumi.Input<string>;
  startTimeoutSeconds: pulumi.Input<number>;
  auth?: pulumi.Input<{ username: pulumi.Input<string>; password: pulumi.Input<string> }>;
  /** Environment variable names copied from the deploying environment into the server's (default
   * []); nothing else of that environment reaches it. */
  passEnv?: pulumi.Input<pulumi.Input<string>[]>;
}

/** An `mlflow server` process on this machine (id `<host>:<port>`). */
export class LocalMlflowServer extends pulumi.dynamic.Resource {
  declare public readonly trackingUri: pulumi.Output<string>;
  declare public readonly pid: pulumi.Output<number>;

  constructor(name: string, args: LocalMlflowServerArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      localMlflowServerProvider,
      name,
      {
        trackingUri: undefined,
        pid: undefined,
        ...args,
        passEnv: args.passEnv ?? [],
        // Names the port reservation, so the next create of this resource finds a killed create's server.
        owner: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}/${name}`,
      },
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["auth"] }),
      "modelserving",
      "LocalMlflowServer",
    );
  }
}
