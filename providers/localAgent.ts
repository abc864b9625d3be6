import * as pulumi from "@pulumi/pulumi";
import type * as core from "./agent/serverCore";
import type { MlflowAuth } from "./mlflow/connection";
import { assertProviderCodeCurrent, providerCode } from "./providerCode";

// Thin dynamic resource over ./agent/serverCore (see the contract there), loaded from the installed
// provider code (./providerCode.ts).
type Core = typeof core;
const localAgentProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds, news) {
    return {
      inputs: news,
      failures: providerCode<Core>("providers/agent/serverCore").checkAgentServer(news),
    };
  },
  async diff(id, olds, news) {
    return providerCode<Core>("providers/agent/serverCore").diffAgentServer(olds, news);
  },
  async create(inputs) {
    const c = providerCode<Core>("providers/agent/serverCore");
    const outs = await c.startAgent(inputs, (msg) => console.log(`agent: ${msg}`));
    return { id: c.agentId(outs), outs };
  },
  async update(id, olds, news) {
    const c = providerCode<Core>("providers/agent/serverCore");
    return { outs: await c.updateAgentServer(olds, news, (msg) => console.log(`agent: ${msg}`)) };
  },
  async read(id, props) {
    const c = providerCode<Core>("providers/agent/serverCore");
    const state = await c.readAgent(props, (msg) => console.log(`agent: ${msg}`));
    return state ? { id, props: state } : { id: "", props: {} };
  },
  async delete(id, props) {
    await providerCode<Core>("providers/agent/serverCore").stopAgent(props);
  },
};

export interface LocalAgentArgs {
  /** The venv's python (runs the agent and its `mlflow models serve` backends). */
  python: pulumi.Input<string>;
  /** The project's agent/ folder. */
  agentDir: pulumi.Input<string>;
  host: pulumi.Input<string>;
  port: pulumi.Input<number>;
  frontPorts: pulumi.Input<{ first: number; last: number }>;
  backendPorts: pulumi.Input<{ first: number; last: number }>;
  /** Config, token file, state file and logs of the agent. */
  dataDir: pulumi.Input<string>;
  trackingUri: pulumi.Input<string>;
  /** The API token; secret (only ever written to the agent's 0600 token file). */
  token: pulumi.Input<string>;
  /** MLflow basic auth for the model servers; secret (only ever written to MLflow's credentials
   * file in the agent's 0700 home). */
  mlflowAuth?: pulumi.Input<MlflowAuth | undefined>;
  startTimeoutSeconds: pulumi.Input<number>;
  backendStartTimeoutSeconds: pulumi.Input<number>;
  backendWorkers?: pulumi.Input<number>;
}

/** The MLOps agent running on this machine (id `<host>:<port>`). */
export class LocalAgent extends pulumi.dynamic.Resource {
  declare public readonly url: pulumi.Output<string>;
  declare public readonly instance: pulumi.Output<string>;
  declare public readonly pid: pulumi.Output<number>;

  constructor(name: string, args: LocalAgentArgs, opts?: pulumi.CustomResourceOptions) {
    assertProviderCodeCurrent();
    super(
      localAgentProvider,
      name,
      {
        url: undefined,
        instance: undefined,
        pid: undefined,
        ...args,
        token: pulumi.secret(args.token),
        owner: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}/${name}`,
      },
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["token", "mlflowAuth"] }),
      "modelserving",
      "LocalAgent",
    );
  }
}
