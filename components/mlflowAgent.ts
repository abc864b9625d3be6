import * as pulumi from "@pulumi/pulumi";
import * as path from "path";
import type { RemoteServingArgs } from "../providers/deployment/types";
import type { MlflowAuth } from "../providers/mlflow/connection";
import { LocalAgent } from "../providers/localAgent";
import { RemoteAgent } from "../providers/remoteAgent";
import { agentPackage } from "../providers/remote/agentUnits";

export interface MlflowAgentArgs {
  /** `local` starts the agent on this machine; `remote` installs and runs it on the remote MLflow
   * host over SSH; `existing` uses the agent at `url` (nothing started). */
  readonly mode: "local" | "remote" | "existing";
  /** The API token (secret config agentToken); kept secret in state. */
  readonly token: pulumi.Input<string>;
  /** URL of an existing agent's API (mode `existing`). */
  readonly url?: pulumi.Input<string>;
  /** Interface of the agent's API and fronts (default 127.0.0.1; mode `remote`: the host's bind
   * address, default 0.0.0.0). */
  readonly host?: pulumi.Input<string>;
  /** The agent's API port (default 5100). */
  readonly port?: pulumi.Input<number>;
  /** Each model's own front port comes from here (default 5001-5099). */
  readonly frontPorts?: pulumi.Input<{ first: number; last: number }>;
  /** Loopback ports of the model backends (default 15001-15999). */
  readonly backendPorts?: pulumi.Input<{ first: number; last: number }>;
  /** uvicorn workers per backend (default: the agent's, the core count). */
  readonly backendWorkers?: pulumi.Input<number>;
  /** The agent's deadline for one backend start (default 180 s). */
  readonly startTimeoutSeconds?: pulumi.Input<number>;
  /** The venv's python (mode `local`). */
  readonly python?: pulumi.Input<string>;
  /** MLflow basic-auth credentials for the agent's model servers (mode `local`), secret. */
  readonly mlflowAuth?: pulumi.Input<MlflowAuth | undefined>;
  /** The agent's config, token file, state and logs (mode `local`). */
  readonly dataDir?: pulumi.Input<string>;
  /** The MLflow tracking server the agent resolves `models:/` URIs against (mode `local`). */
  readonly trackingUri?: pulumi.Input<string>;
  /** Mode `remote`: the MLflow host (MlflowServer.remote; secret, it holds the SSH key). */
  readonly remote?: pulumi.Input<RemoteServingArgs | undefined>;
  /** Mode `remote`: the host name in the agent's URL and its front URLs (mlflow.remote.publicHost). */
  readonly publicHost?: pulumi.Input<string>;
  /** Mode `remote`: the host's provisioning hash (MlflowServer.remoteProvisioned). */
  readonly provisioned?: pulumi.Input<string | undefined>;
}

/** The MLOps agent of deploy mode `agent`: started here (`local`) or one that runs (`existing`). */
export class MlflowAgent extends pulumi.ComponentResource {
  /** The agent's API URL. */
  public readonly url: pulumi.Output<string>;
  /** The API token, secret. */
  public readonly token: pulumi.Output<string>;
  /** The agent process (`<pid>:<start>`; "" for an existing agent): a restarted agent changes it. */
  public readonly instance: pulumi.Output<string>;
  /** The agent's backend start deadline (what a deploy through it waits for). */
  public readonly startTimeoutSeconds: pulumi.Output<number>;
  /** Mode `remote`: the host name of the front URLs (the agent reports its bind address); else
   * undefined (the agent's own host name is right). */
  public readonly publicHost: pulumi.Output<string | undefined>;

  constructor(name: string, args: MlflowAgentArgs, opts?: pulumi.ComponentResourceOptions) {
    super("modelserving:mlflow:MlflowAgent", name, {}, opts);
    if (args.mode !== "local" && args.mode !== "remote" && args.mode !== "existing") {
      throw new Error(
        `MlflowAgent: mode must be "local", "remote" or "existing", got "${args.mode}"`,
      );
    }
    for (const key of ["remote", "publicHost"] as const) {
      if (args.mode === "remote" && args[key] === undefined) {
        throw new Error(`MlflowAgent: ${key} is required when mode is "remote"`);
      }
    }
    if (args.mode === "existing" && args.url === undefined) {
      throw new Error('MlflowAgent: url is required when mode is "existing"');
    }
    for (const key of ["python", "dataDir", "trackingUri"] as const) {
      if (args.mode === "local" && args[key] === undefined) {
        throw new Error(`MlflowAgent: ${key} is required when mode is "local"`);
      }
    }
    this.token = pulumi.secret(args.token);
    this.startTimeoutSeconds = pulumi.output(args.startTimeoutSeconds ?? 180);
    this.publicHost = pulumi.output(undefined);
    if (args.mode === "local") {
      const agent = new LocalAgent(
        `${name}-server`,
        {
          python: args.python!,
          agentDir: path.resolve(__dirname, "..", "agent"),
          host: args.host ?? "127.0.0.1",
          port: args.port ?? 5100,
          frontPorts: args.frontPorts ?? { first: 5001, last: 5099 },
          backendPorts: args.backendPorts ?? { first: 15001, last: 15999 },
          backendWorkers: args.backendWorkers,
          dataDir: args.dataDir!,
          trackingUri: args.trackingUri!,
          token: this.token,
          mlflowAuth: args.mlflowAuth,
          // Adoption may start every recorded backend again before /health says ok.
          startTimeoutSeconds: this.startTimeoutSeconds.apply((s) => s + 120),
          backendStartTimeoutSeconds: this.startTimeoutSeconds,
        },
        { parent: this },
      );
      this.url = agent.url;
      this.instance = agent.instance;
    } else if (args.mode === "remote") {
      const agentDir = path.resolve(__dirname, "..", "agent");
      const remote = pulumi.secret(pulumi.output(args.remote!)).apply((r) => {
        if (r === undefined) {
          throw new Error(
            'MlflowAgent: mode "remote" needs the MLflow host of mlflow.mode "remote"',
          );
        }
        return r;
      });
      const agent = new RemoteAgent(
        `${name}-remote`,
        {
          connection: remote.apply((r) => r.connection),
          // Not secret themselves (only the connection is).
          layout: pulumi.unsecret(remote.apply((r) => r.layout)),
          publicHost: args.publicHost!,
          bindHost: args.host ?? "0.0.0.0",
          port: args.port ?? 5100,
          frontPorts: args.frontPorts ?? { first: 5001, last: 5099 },
          backendPorts: args.backendPorts ?? { first: 15001, last: 15999 },
          hostTrackingUri: pulumi.unsecret(remote.apply((r) => r.hostTrackingUri)),
          backendStartTimeoutSeconds: this.startTimeoutSeconds,
          backendWorkers: args.backendWorkers,
          token: this.token,
          agentDir,
          packageHash: agentPackage(agentDir).hash,
          provisioned: pulumi.output(args.provisioned).apply((p) => p ?? ""),
          // Adoption may start every recorded backend again before /health says ok.
          startTimeoutSeconds: this.startTimeoutSeconds.apply((s) => s + 120),
        },
        { parent: this },
      );
      // Known in preview (the host and port) and still waiting for the agent (its urn).
      this.url = pulumi
        .all([args.publicHost!, args.port ?? 5100, agent.urn])
        .apply(([h, p]) => `http://${h.includes(":") ? `[${h}]` : h}:${p}`);
      this.publicHost = pulumi.output(args.publicHost!);
      // The host's supervisor restarts a killed agent and it adopts its backends: nothing to re-PUT.
      this.instance = pulumi.output("");
    } else {
      this.url = pulumi.output(args.url!).apply((u) => u.replace(/\/+$/, ""));
      this.instance = pulumi.output("");
    }
    this.registerOutputs({
      url: this.url,
      token: this.token,
      instance: this.instance,
      startTimeoutSeconds: this.startTimeoutSeconds,
      publicHost: this.publicHost,
    });
  }
}
