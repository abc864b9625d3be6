import * as pulumi from "@pulumi/pulumi";
import type * as core from "./remote/mlflowServerCore";
import type { BackendStore } from "./remote/mlflowServerUnits";
import type { HostLayout } from "./remote/provisionScript";
import type { SshConnection } from "./ssh/connection";
import { assertProviderCodeCurrent, providerCode } from "./providerCode";

// Thin dynamic resource over ./remote/mlflowServerCore (see the contract there), loaded from the
// installed provider code (./providerCode.ts). Progress lines go to the provider's stdout, which the
// engine shows as info messages during `pulumi up`.
type Core = typeof core;
const remoteMlflowServerProvider: pulumi.dynamic.ResourceProvider = {
  async diff(id, olds, news) {
    return providerCode<Core>("providers/remote/mlflowServerCore").diffRemoteMlflowServer(
      olds,
      news,
    );
  },
  async create(inputs) {
    const c = providerCode<Core>("providers/remote/mlflowServerCore");
    const outs = await c.createRemoteMlflowServer(inputs, (msg) => console.log(`mlflow: ${msg}`));
    return { id: c.remoteServerId(outs), outs };
  },
  async update(id, olds, news) {
    const c = providerCode<Core>("providers/remote/mlflowServerCore");
    return {
      outs: await c.updateRemoteMlflowServer(olds, news, (msg) => console.log(`mlflow: ${msg}`)),
    };
  },
  async read(id, props) {
    const c = providerCode<Core>("providers/remote/mlflowServerCore");
    const state = await c.readRemoteMlflowServer(props, (msg) => console.log(`mlflow: ${msg}`));
    return state ? { id, props: state } : { id: "", props: {} };
  },
  async delete(id, props) {
    await providerCode<Core>("providers/remote/mlflowServerCore").deleteRemoteMlflowServer(props);
  },
};

export interface RemoteMlflowServerArgs {
  /** How to reach the host; secret (the private key). */
  connection: pulumi.Input<SshConnection>;
  layout: pulumi.Input<HostLayout>;
  /** Interface `mlflow server` binds on the host. */
  bindHost: pulumi.Input<string>;
  port: pulumi.Input<number>;
  /** The host name in the tracking URI. */
  publicHost: pulumi.Input<string>;
  backendStore: pulumi.Input<BackendStore>;
  startTimeoutSeconds: pulumi.Input<number>;
  /** The host's provisioning hash (HostProvisioning.hash): a new one restarts the server. */
  provisioned: pulumi.Input<string>;
  /** MLflow's basic-auth app on the host. */
  basicAuth?: pulumi.Input<boolean>;
  /** Its admin's credentials; secret. */
  auth?: pulumi.Input<{ username: string; password: string } | undefined>;
}

/** `mlflow server` as a service on a provisioned host over SSH (id `<publicHost>:<port>`). */
export class RemoteMlflowServer extends pulumi.dynamic.Resource {
  declare public readonly trackingUri: pulumi.Output<string>;
  declare public readonly supervisor: pulumi.Output<"systemd" | "process">;

  constructor(name: string, args: RemoteMlflowServerArgs, opts?: pulumi.CustomResourceOptions) {
    assertProviderCodeCurrent();
    super(
      remoteMlflowServerProvider,
      name,
      { trackingUri: undefined, supervisor: undefined, logFile: undefined, ...args },
      pulumi.mergeOptions(opts, {
        additionalSecretOutputs: ["connection", "backendStore", "auth"],
        deleteBeforeReplace: true,
      }),
      "modelserving",
      "RemoteMlflowServer",
    );
  }
}
