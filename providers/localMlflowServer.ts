import * as pulumi from "@pulumi/pulumi";
import type * as core from "./mlflowServerCore";
import { assertProviderCodeCurrent, providerCode, withProviderKept } from "./providerCode";

// Thin dynamic resource over ./mlflowServerCore (see the contract there), loaded from the installed
// provider code (./providerCode.ts). Progress lines go to the provider's stdout, which the engine shows
// as info messages during `pulumi up`.
type Core = typeof core;
const localMlflowServerProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds, news) {
    const c = providerCode<Core>("providers/mlflowServerCore");
    return { inputs: news, failures: await c.checkMlflowServer(olds, news) };
  },
  async diff(id, olds, news) {
    return providerCode<Core>("providers/mlflowServerCore").diffMlflowServer(olds, news);
  },
  async create(inputs) {
    const c = providerCode<Core>("providers/mlflowServerCore");
    const outs = await c.startMlflowServer(inputs, (msg) => console.log(`mlflow: ${msg}`));
    return { id: c.serverId(outs), outs };
  },
  async update(id, olds, news) {
    const c = providerCode<Core>("providers/mlflowServerCore");
    try {
      return {
        outs: await c.updateMlflowServer(olds, news, (msg) => console.log(`mlflow: ${msg}`)),
      };
    } catch (err) {
      // A rejected admin password leaves the new server running: partial state (see the core).
      throw withProviderKept(err, news);
    }
  },
  async read(id, props) {
    const c = providerCode<Core>("providers/mlflowServerCore");
    const state = await c.readMlflowServer(props, (msg) => console.log(`mlflow: ${msg}`));
    return state ? { id, props: state } : { id: "", props: {} };
  },
  async delete(id, props) {
    await providerCode<Core>("providers/mlflowServerCore").stopMlflowServer(props);
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
    assertProviderCodeCurrent();
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
