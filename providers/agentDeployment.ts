import * as pulumi from "@pulumi/pulumi";
import type * as core from "./agent/deploymentCore";
import { assertProviderCodeCurrent, providerCode } from "./providerCode";

// Thin dynamic resource over ./agent/deploymentCore (see the contract there), loaded from the
// installed provider code (./providerCode.ts).
type Core = typeof core;
const agentDeploymentProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds, news) {
    return {
      inputs: news,
      failures: providerCode<Core>("providers/agent/deploymentCore").checkAgentDeployment(news),
    };
  },
  async diff(id, olds, news) {
    return providerCode<Core>("providers/agent/deploymentCore").diffAgentDeployment(olds, news);
  },
  async create(inputs) {
    const c = providerCode<Core>("providers/agent/deploymentCore");
    const outs = await c.putDeployment(inputs, (msg) => console.log(`agent: ${msg}`));
    return { id: c.deploymentId(outs), outs };
  },
  async update(id, olds, news) {
    const c = providerCode<Core>("providers/agent/deploymentCore");
    return {
      outs: await c.updateAgentDeployment(olds, news, (msg) => console.log(`agent: ${msg}`)),
    };
  },
  async read(id, props) {
    const c = providerCode<Core>("providers/agent/deploymentCore");
    const state = await c.readAgentDeployment(props, (msg) => console.log(`agent: ${msg}`));
    return state ? { id, props: state } : { id: "", props: {} };
  },
  async delete(id, props) {
    await providerCode<Core>("providers/agent/deploymentCore").deleteAgentDeployment(props);
  },
};

export interface AgentDeploymentArgs {
  /** The agent's API URL. */
  agentUrl: pulumi.Input<string>;
  /** The agent's API token; secret. */
  token: pulumi.Input<string>;
  modelName: pulumi.Input<string>;
  /** `models:/<name>/<version>` of the champion. */
  modelUri: pulumi.Input<string>;
  /** A second version behind the same front with a share of the requests. */
  challenger?: pulumi.Input<{ modelUri: pulumi.Input<string>; weight: pulumi.Input<number> }>;
  /** Fixed front port (inside the agent's front range); by default the agent picks one. */
  frontPort?: pulumi.Input<number>;
  sampleInput?: pulumi.Input<Record<string, unknown>>;
  /** `shared`: the agent's one multi-model worker (no challenger); default dedicated. */
  backend?: pulumi.Input<"dedicated" | "shared">;
  /** The agent's backend start timeout (a deploy waits that long plus 60 s). */
  startTimeoutSeconds: pulumi.Input<number>;
  /** The agent process (LocalAgent.instance): a restarted agent is asked again. */
  agentInstance?: pulumi.Input<string>;
  /** The host name of the front URLs (an agent on a remote host; MlflowAgent.publicHost). */
  publicHost?: pulumi.Input<string | undefined>;
}

/** A model served by the MLOps agent behind its stable front URL (id `<agentUrl>/models/<name>`). */
export class AgentDeployment extends pulumi.dynamic.Resource {
  declare public readonly url: pulumi.Output<string>;
  declare public readonly pathUrl: pulumi.Output<string>;
  declare public readonly servedPort: pulumi.Output<number>;

  constructor(name: string, args: AgentDeploymentArgs, opts?: pulumi.CustomResourceOptions) {
    assertProviderCodeCurrent();
    super(
      agentDeploymentProvider,
      name,
      {
        url: undefined,
        pathUrl: undefined,
        servedPort: undefined,
        ...args,
        token: pulumi.secret(args.token),
      },
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["token"] }),
      "modelserving",
      "AgentDeployment",
    );
  }
}
