import * as pulumi from "@pulumi/pulumi";
import type * as core from "./remote/agentCore";
import type { HostLayout } from "./remote/provisionScript";
import type { SshConnection } from "./ssh/connection";
import { assertProviderCodeCurrent, providerCode } from "./providerCode";

// Thin dynamic resource over ./remote/agentCore (see the contract there), loaded from the installed
// provider code (./providerCode.ts).
type Core = typeof core;
const remoteAgentProvider: pulumi.dynamic.ResourceProvider = {
  async diff(id, olds, news) {
    return providerCode<Core>("providers/remote/agentCore").diffRemoteAgent(olds, news);
  },
  async create(inputs) {
    const c = providerCode<Core>("providers/remote/agentCore");
    const outs = await c.createRemoteAgent(inputs, (msg) => console.log(`agent: ${msg}`));
    return { id: c.remoteAgentId(outs), outs };
  },
  async update(id, olds, news) {
    const c = providerCode<Core>("providers/remote/agentCore");
    return { outs: await c.updateRemoteAgent(olds, news, (msg) => console.log(`agent: ${msg}`)) };
  },
  async read(id, props) {
    const c = providerCode<Core>("providers/remote/agentCore");
    const state = await c.readRemoteAgent(props, (msg) => console.log(`agent: ${msg}`));
    return state ? { id, props: state } : { id: "", props: {} };
  },
  async delete(id, props) {
    await providerCode<Core>("providers/remote/agentCore").deleteRemoteAgent(props);
  },
};

export interface RemoteAgentArgs {
  /** How to reach the host; secret (the private key). */
  connection: pulumi.Input<SshConnection>;
  layout: pulumi.Input<HostLayout>;
  /** The host name in the agent's URL. */
  publicHost: pulumi.Input<string>;
  /** Interface the API and the fronts bind on the host. */
  bindHost: pulumi.Input<string>;
  port: pulumi.Input<number>;
  frontPorts: pulumi.Input<{ first: number; last: number }>;
  backendPorts: pulumi.Input<{ first: number; last: number }>;
  /** MLflow as the host reaches it. */
  hostTrackingUri: pulumi.Input<string>;
  backendStartTimeoutSeconds: pulumi.Input<number>;
  backendWorkers?: pulumi.Input<number>;
  /** The API token; secret (only ever written to the host's 0600 token file). */
  token: pulumi.Input<string>;
  /** The project's agent/ folder and its content hash (a new one re-installs). */
  agentDir: pulumi.Input<string>;
  packageHash: pulumi.Input<string>;
  /** The host's provisioning hash (a new venv restarts the agent). */
  provisioned?: pulumi.Input<string>;
  startTimeoutSeconds: pulumi.Input<number>;
}

/** The MLOps agent installed and running on the remote MLflow host (id `<publicHost>:<port>`). */
export class RemoteAgent extends pulumi.dynamic.Resource {
  declare public readonly url: pulumi.Output<string>;
  declare public readonly supervisor: pulumi.Output<"systemd" | "process">;

  constructor(name: string, args: RemoteAgentArgs, opts?: pulumi.CustomResourceOptions) {
    assertProviderCodeCurrent();
    super(
      remoteAgentProvider,
      name,
      {
        url: undefined,
        supervisor: undefined,
        logFile: undefined,
        ...args,
        token: pulumi.secret(args.token),
      },
      pulumi.mergeOptions(opts, {
        additionalSecretOutputs: ["connection", "token"],
        deleteBeforeReplace: true,
      }),
      "modelserving",
      "RemoteAgent",
    );
  }
}
