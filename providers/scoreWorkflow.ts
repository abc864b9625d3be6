import * as pulumi from "@pulumi/pulumi";
import type * as core from "./agent/workflowCore";
import { assertProviderCodeCurrent, providerCode, withProviderKept } from "./providerCode";

// Thin dynamic resource over ./agent/workflowCore (see the contract there), loaded from the installed
// provider code (./providerCode.ts).
type Core = typeof core;

const scoreWorkflowProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds, news) {
    return {
      inputs: news,
      failures: providerCode<Core>("providers/agent/workflowCore").checkScoreWorkflow(news),
    };
  },
  async diff(id, olds, news) {
    return providerCode<Core>("providers/agent/workflowCore").diffScoreWorkflow(olds, news);
  },
  async create(inputs) {
    const c = providerCode<Core>("providers/agent/workflowCore");
    try {
      const outs = await c.putWorkflow(inputs, undefined, (msg) => console.log(`agent: ${msg}`));
      return { id: outs.workflowId, outs };
    } catch (err) {
      throw withProviderKept(err, inputs);
    }
  },
  async update(id, olds, news) {
    const c = providerCode<Core>("providers/agent/workflowCore");
    try {
      return {
        outs: await c.updateScoreWorkflow(olds, news, (msg) => console.log(`agent: ${msg}`)),
      };
    } catch (err) {
      throw withProviderKept(err, news);
    }
  },
  async read(id, props) {
    const c = providerCode<Core>("providers/agent/workflowCore");
    const state = await c.readScoreWorkflow(props, (msg) => console.log(`agent: ${msg}`));
    return state ? { id, props: state } : { id: "", props: {} };
  },
  async delete(id, props) {
    await providerCode<Core>("providers/agent/workflowCore").deleteScoreWorkflow(props);
  },
};

export interface ScoreWorkflowResourceArgs {
  /** The agent's API URL. */
  agentUrl: pulumi.Input<string>;
  /** The agent's API token; secret. */
  token: pulumi.Input<string>;
  workflowId: pulumi.Input<string>;
  /** `models:/<name>/<version>` (or `models:/<name>@<alias>`, resolved by the agent at each run). */
  modelUri: pulumi.Input<string>;
  input: pulumi.Input<string>;
  inputFormat: pulumi.Input<core.WorkflowFormat>;
  output: pulumi.Input<string>;
  outputFormat: pulumi.Input<core.WorkflowFormat>;
  batchSize: pulumi.Input<number>;
  maxConcurrentRuns: pulumi.Input<number>;
  timeoutSeconds: pulumi.Input<number>;
  /** Run once per change of the run inputs during `up`, failing it with the run's error. */
  executeOnUp: pulumi.Input<boolean>;
  /** The agent process (LocalAgent.instance): a restarted agent is asked again. */
  agentInstance?: pulumi.Input<string>;
}

/** A score workflow declared on the MLOps agent (id: the workflow id). */
export class ScoreWorkflowResource extends pulumi.dynamic.Resource {
  declare public readonly lastExecutionId: pulumi.Output<string>;
  declare public readonly lastExecutionStatus: pulumi.Output<string>;
  declare public readonly lastExecutionError: pulumi.Output<string>;

  constructor(name: string, args: ScoreWorkflowResourceArgs, opts?: pulumi.CustomResourceOptions) {
    assertProviderCodeCurrent();
    super(
      scoreWorkflowProvider,
      name,
      {
        executedFor: undefined,
        lastExecutionId: undefined,
        lastExecutionStatus: undefined,
        lastExecutionError: undefined,
        ...args,
        token: pulumi.secret(args.token),
      },
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["token"] }),
      "modelserving",
      "ScoreWorkflow",
    );
  }
}
