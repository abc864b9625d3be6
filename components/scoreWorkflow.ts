import * as pulumi from "@pulumi/pulumi";
import type { MlflowAuth } from "../providers/mlflow/connection";
import { ModelReference } from "../providers/modelReference";
import { ScoreWorkflowResource } from "../providers/scoreWorkflow";
import { programParameters, workflowSnippets, WORKFLOW_TOKEN_ENV } from "./snippets/workflow";

export type WorkflowFormat = "csv" | "parquet" | "jsonl";

/** A registry version resolved at `up` (by number, or the one an alias points to). */
export interface WorkflowRegistryModel {
  readonly trackingUri: pulumi.Input<string>;
  readonly registryId?: pulumi.Input<string>;
  readonly auth?: pulumi.Input<MlflowAuth | undefined>;
  readonly name: string;
  /** Exactly one of alias and version. */
  readonly alias?: string;
  readonly version?: number;
}

export interface ScoreWorkflowArgs {
  /** The agent's API URL (MlflowAgent.url). */
  readonly agentUrl: pulumi.Input<string>;
  /** The agent's API token (secret); never in the outputs. */
  readonly token: pulumi.Input<string>;
  /** The agent process (MlflowAgent.instance): a restarted agent is asked again. */
  readonly agentInstance?: pulumi.Input<string>;
  /** The agent's workflow id (`workflowId` of the execute body). */
  readonly workflowId: string;
  /** `models:/<name>/<version>`, or `models:/<name>@<alias>` (resolved by the agent at each run). */
  readonly modelUri?: pulumi.Input<string>;
  /** Or a registry version resolved here at `up`, so a moved alias is a new model URI. */
  readonly registered?: WorkflowRegistryModel;
  /** Absolute path (file or folder) on the agent's host, or an s3:// / abfss:// URI. */
  readonly input: pulumi.Input<string>;
  /** Default csv. */
  readonly inputFormat?: pulumi.Input<WorkflowFormat>;
  /** The one output file: the input rows plus a `prediction` column. */
  readonly output: pulumi.Input<string>;
  /** Default csv. */
  readonly outputFormat?: pulumi.Input<WorkflowFormat>;
  /** Rows per scoring batch (default 1000). */
  readonly batchSize?: pulumi.Input<number>;
  /** Runs of this workflow at once (default 1). */
  readonly maxConcurrentRuns?: pulumi.Input<number>;
  /** A run still scoring after this is stopped and failed (default 3600 s). */
  readonly timeoutSeconds?: pulumi.Input<number>;
  /** Run once per change of the workflow or its model version during `up` (default false). */
  readonly executeOnUp?: pulumi.Input<boolean>;
}

/** One entry of the stack output `workflows`: how to trigger and poll the workflow. */
export interface WorkflowEntry {
  workflowId: string;
  agentUrl: string;
  modelUri: string;
  /** `POST` the guide's body here. */
  executeUrl: string;
  /** Append an executionId to poll it. */
  statusUrl: string;
  /** The environment variable the commands read the agent token from. */
  tokenEnv: string;
  /** Cookie login, then execute (the user guide's style). */
  curl: string;
  /** Execute with the bearer token. */
  curlBearer: string;
  /** Poll one execution with the cookie (set EXECUTION_ID). */
  statusCurl: string;
  /** Log in, execute and poll to the end (requests). */
  python: string;
  executeOnUp: boolean;
  /** The last run `up` started (executeOnUp), or "". */
  lastExecutionId: string;
  lastExecutionStatus: string;
}

const WORKFLOW_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** A score workflow on the MLOps agent (batch scoring triggered over REST, the user guide's body). */
export class ScoreWorkflow extends pulumi.ComponentResource {
  /** The model the workflow scores with. */
  public readonly modelUri: pulumi.Output<string>;
  public readonly lastExecutionId: pulumi.Output<string>;
  public readonly lastExecutionStatus: pulumi.Output<string>;
  public readonly entry: pulumi.Output<WorkflowEntry>;

  constructor(name: string, args: ScoreWorkflowArgs, opts?: pulumi.ComponentResourceOptions) {
    super("modelserving:agent:ScoreWorkflow", name, {}, opts);
    if (!WORKFLOW_ID.test(args.workflowId)) {
      throw new Error(
        `ScoreWorkflow: workflowId must be 1-64 letters, digits, "_", "." or "-", starting with a letter or digit (got "${args.workflowId}")`,
      );
    }
    if ((args.modelUri === undefined) === (args.registered === undefined)) {
      throw new Error("ScoreWorkflow: set either modelUri or registered, not both");
    }
    const reg = args.registered;
    if (reg !== undefined && (reg.alias === undefined) === (reg.version === undefined)) {
      throw new Error("ScoreWorkflow: registered needs exactly one of alias and version");
    }
    this.modelUri =
      reg === undefined
        ? pulumi.output(args.modelUri!)
        : new ModelReference(
            `${name}-model`,
            {
              trackingUri: reg.trackingUri,
              registryId: reg.registryId,
              auth: reg.auth,
              name: reg.name,
              ...(reg.alias !== undefined ? { alias: reg.alias } : { version: reg.version }),
            },
            { parent: this },
          ).modelUri;
    const defaults = {
      inputFormat: "csv" as const,
      outputFormat: "csv" as const,
      batchSize: 1000,
      maxConcurrentRuns: 1,
      timeoutSeconds: 3600,
      executeOnUp: false,
    };
    const token = pulumi.secret(args.token);
    const workflow = new ScoreWorkflowResource(
      `${name}-workflow`,
      {
        agentUrl: args.agentUrl,
        token,
        agentInstance: args.agentInstance,
        workflowId: args.workflowId,
        modelUri: this.modelUri,
        input: args.input,
        inputFormat: args.inputFormat ?? defaults.inputFormat,
        output: args.output,
        outputFormat: args.outputFormat ?? defaults.outputFormat,
        batchSize: args.batchSize ?? defaults.batchSize,
        maxConcurrentRuns: args.maxConcurrentRuns ?? defaults.maxConcurrentRuns,
        timeoutSeconds: args.timeoutSeconds ?? defaults.timeoutSeconds,
        executeOnUp: args.executeOnUp ?? defaults.executeOnUp,
      },
      { parent: this },
    );
    this.lastExecutionId = workflow.lastExecutionId;
    this.lastExecutionStatus = workflow.lastExecutionStatus;
    // Built from the plain inputs: no secret flows into the entry (the token stays in TOKEN).
    this.entry = pulumi
      .all([
        pulumi.output(args.agentUrl),
        this.modelUri,
        pulumi.output(args.input),
        pulumi.output(args.output),
        pulumi.output(args.executeOnUp ?? defaults.executeOnUp),
        workflow.lastExecutionId,
        workflow.lastExecutionStatus,
      ])
      .apply(([agentUrl, modelUri, input, output, executeOnUp, lastId, lastStatus]) => {
        const base = agentUrl.replace(/\/+$/, "");
        const snippets = workflowSnippets({
          agentUrl: base,
          workflowId: args.workflowId,
          programParameters: programParameters(input, output),
        });
        return {
          workflowId: args.workflowId,
          agentUrl: base,
          modelUri,
          executeUrl: `${base}/api/v1/workflow/execute`,
          statusUrl: `${base}/api/v1/workflow/executions/`,
          tokenEnv: WORKFLOW_TOKEN_ENV,
          ...snippets,
          executeOnUp,
          lastExecutionId: lastId ?? "",
          lastExecutionStatus: lastStatus ?? "",
        };
      });
    this.registerOutputs({
      modelUri: this.modelUri,
      lastExecutionId: this.lastExecutionId,
      lastExecutionStatus: this.lastExecutionStatus,
      entry: this.entry,
    });
  }
}
