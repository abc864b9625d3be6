import * as pulumi from "@pulumi/pulumi";
import * as path from "path";
import type { RemoteServingArgs } from "../providers/deployment/types";
import { LocalMlflowServer } from "../providers/localMlflowServer";
import { MlflowAuth } from "../providers/modelVersionCore";
import { remoteMlflowHost, RemoteHostArgs } from "./remoteMlflowHost";

export type { RemoteBackendStore, RemoteHostArgs, SshKeySource } from "./remoteMlflowHost";

/** What every mode takes: the server's basic-auth credentials. */
interface MlflowServerCommon {
  /** Basic-auth user (default "admin" when a password is set). */
  readonly username?: pulumi.Input<string>;
  /** Basic-auth password; a local or remote server is started with MLflow's basic-auth app. Keep it
   * secret. */
  readonly password?: pulumi.Input<string>;
}

/** `mlflow server` on this machine. */
export interface LocalMlflowServerArgs extends MlflowServerCommon {
  readonly mode: "local";
  /** Interface the local server binds to (default 127.0.0.1). */
  readonly host?: pulumi.Input<string>;
  /** Port of the local server (default 5000). */
  readonly port?: pulumi.Input<number>;
  /** Backend store and artifacts of the local server; kept on destroy. */
  readonly dataDir: pulumi.Input<string>;
  /** The `mlflow` executable for the local server. */
  readonly mlflowBin: pulumi.Input<string>;
  /** Deadline for the local server's /health (default 120 s). */
  readonly startTimeoutSeconds?: pulumi.Input<number>;
  /** Environment variable names the local server gets from the deploying environment (default []). */
  readonly passEnv?: pulumi.Input<pulumi.Input<string>[]>;
}

/** A tracking server that exists already. */
export interface ExistingMlflowServerArgs extends MlflowServerCommon {
  readonly mode: "existing";
  /** URL of the existing tracking server. */
  readonly trackingUri: pulumi.Input<string>;
}

/** `mlflow server` as a service on a host over SSH, provisioned by a profile. */
export interface RemoteMlflowServerArgs extends MlflowServerCommon {
  readonly mode: "remote";
  /** The host, its key pin, the SSH key, the profile and the backend store. */
  readonly remote: RemoteHostArgs;
  /** Port of MLflow on the host (default 5000). */
  readonly port?: pulumi.Input<number>;
  /** Deadline for the server's /health (default 120 s). */
  readonly startTimeoutSeconds?: pulumi.Input<number>;
}

export type MlflowServerArgs =
  LocalMlflowServerArgs | ExistingMlflowServerArgs | RemoteMlflowServerArgs;

/** An MLflow tracking server and model registry: started here (`local`), an existing one, or a
 * service on a host over SSH (`remote`). */
export class MlflowServer extends pulumi.ComponentResource {
  /** Credential-free URL of the tracking server. */
  public readonly trackingUri: pulumi.Output<string>;
  /** Credentials for the server, secret (undefined without auth). */
  public readonly auth: pulumi.Output<MlflowAuth | undefined>;
  /** Which registry this is: `local:<data directory>` for the local server (a new data directory is a
   * new, empty registry), `remote:<host>:<port><data directory>` for a remote host, the tracking URI
   * for an existing server. Pass it to every ModelVersion. */
  public readonly registryId: pulumi.Output<string>;
  /** Mode remote: the SSH connection and layout for deploy mode remote (secret); else undefined. */
  public readonly remote: pulumi.Output<RemoteServingArgs | undefined>;
  /** Mode remote: the host's provisioning hash (a new venv); else undefined. */
  public readonly remoteProvisioned: pulumi.Output<string | undefined>;

  constructor(name: string, args: MlflowServerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("modelserving:mlflow:MlflowServer", name, {}, opts);
    const mode = (args as { mode: string }).mode;
    if (mode !== "local" && mode !== "existing" && mode !== "remote") {
      throw new Error(`MlflowServer: mode must be "local", "existing" or "remote", got "${mode}"`);
    }
    if (args.mode === "existing" && args.trackingUri === undefined) {
      throw new Error('MlflowServer: trackingUri is required when mode is "existing"');
    }
    if (args.mode === "local" && args.mlflowBin === undefined) {
      throw new Error('MlflowServer: mlflowBin is required when mode is "local"');
    }
    if (args.mode === "remote" && args.remote === undefined) {
      throw new Error('MlflowServer: remote is required when mode is "remote"');
    }

    const auth =
      args.password === undefined
        ? undefined
        : pulumi.secret(
            pulumi
              .all([args.username ?? "admin", args.password])
              .apply(([username, password]) => ({ username, password })),
          );
    this.auth = auth ?? pulumi.output(undefined);
    this.remote = pulumi.output(undefined);
    this.remoteProvisioned = pulumi.output(undefined);

    if (args.mode === "local") {
      const host = args.host ?? "127.0.0.1";
      const port = args.port ?? 5000;
      const server = new LocalMlflowServer(
        `${name}-server`,
        {
          mlflowBin: args.mlflowBin,
          host,
          port,
          dataDir: args.dataDir,
          startTimeoutSeconds: args.startTimeoutSeconds ?? 120,
          auth,
          passEnv: args.passEnv ?? [],
        },
        { parent: this },
      );
      // The URL follows from host and port, so it is known during preview even while the server is
      // being updated (its own `trackingUri` output is unknown then, and everything using it would
      // preview as changed). `server.urn` is known in preview too and keeps the dependency: whatever
      // uses the URL waits for the server.
      this.trackingUri = pulumi.all([host, port, server.urn]).apply(([h, p]) => `http://${h}:${p}`);
      this.registryId = pulumi.output(args.dataDir).apply((d) => `local:${path.resolve(d)}`);
    } else if (args.mode === "remote") {
      const host = remoteMlflowHost(
        name,
        args.remote,
        args.port ?? 5000,
        args.startTimeoutSeconds ?? 120,
        auth,
        this,
      );
      this.trackingUri = host.trackingUri;
      this.registryId = host.registryId;
      this.remote = host.serving;
      this.remoteProvisioned = host.provisioned;
    } else {
      this.trackingUri = pulumi.output(args.trackingUri);
      this.registryId = this.trackingUri.apply((u) => u.replace(/\/+$/, ""));
    }
    this.registerOutputs({
      trackingUri: this.trackingUri,
      auth: this.auth,
      registryId: this.registryId,
      remote: this.remote,
      remoteProvisioned: this.remoteProvisioned,
    });
  }
}
