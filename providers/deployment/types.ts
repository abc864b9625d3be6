import { MlflowAuth } from "../modelVersionCore";
import { ProcessHandle } from "../process";
import { HostLayout } from "../remote/provisionScript";
import { SshConnection } from "../ssh/connection";

/** Where a model server runs: the MLflow host itself (`local`), a host over SSH (`remote`) or through the
 * MLOps agent on the MLflow host (`agent`). Each mode is one ServingHost implementation. */
export type DeployMode = "local" | "remote" | "agent";

export interface DeploymentArgs {
  mode: DeployMode;
  /** `models:/<name>/<version>` */
  modelUri: string;
  trackingUri: string;
  /** Secret; handed to the model server's environment to download the model. */
  auth?: MlflowAuth;
  /** Interface the model server binds to, and the host name in its URL. */
  host: string;
  /** Fixed port; when unset the first free port from `portRangeStart` is used. */
  port?: number;
  portRangeStart: number;
  /** The `mlflow` executable (of the venv that has the model's dependencies). */
  mlflowBin: string;
  /** Logs and port locks. */
  runDir: string;
  startTimeoutSeconds: number;
  /** Environment variable names copied from the deploying environment into the model server's (config
   * `mlflow.passEnv`); nothing else of that environment reaches it (see providers/process/env.ts). */
  passEnv?: string[];
  /** The stack resource, `<org>/<project>/<stack>/<name>`: names its port reservation, so a create
   * interrupted by a killed `up` is adopted or stopped by the next create of the same resource. */
  owner?: string;
  /** Deploy mode `remote` only: the host and how it is laid out (see providers/deployment/remoteHost.ts). */
  remote?: RemoteServingArgs;
}

export interface RemoteServingArgs {
  /** Secret (the private key). */
  connection: SshConnection;
  layout: HostLayout;
  /** The host name in the endpoint URL (`host` is the interface bound on the remote host). */
  publicHost: string;
  /** The tracking URI as the remote host reaches it, e.g. http://127.0.0.1:5000. */
  hostTrackingUri: string;
}

export interface DeploymentState extends DeploymentArgs, ProcessHandle {
  servedPort: number;
  /** `http://<host>:<port>` */
  baseUrl: string;
  /** The scoring URL, `<baseUrl>/invocations`. */
  url: string;
  logFile: string;
}

export type ServerHealth = "serving" | "not answering" | "gone";

export interface ServingHost {
  /**
   * Before a create: this resource's own server left running by a create that never finished (a killed
   * `up`). Adopted when it serves the same model and answers as ours; otherwise stopped, so its port is
   * reused. Undefined when there is nothing to adopt.
   */
  recover(args: DeploymentArgs, log: (msg: string) => void): Promise<DeploymentState | undefined>;
  /** Starts the model server on `port` and waits until it answers /ping. */
  start(args: DeploymentArgs, port: number, log: (msg: string) => void): Promise<DeploymentState>;
  /** Stops it and waits until the port is released; the port's reservation goes too unless
   * `keepReservation` (an update that restarts on the same port). */
  stop(state: DeploymentState, options?: { keepReservation?: boolean }): Promise<void>;
  /** "gone" unless the process we started (pid + start identity) runs; "not answering" when it runs
   * but misses its health check (slow, stopped, overloaded): that is not a deletion. */
  health(state: DeploymentState): Promise<ServerHealth>;
  /** Picks the port for a new deployment and reserves it (machine-wide). */
  reservePort(args: DeploymentArgs): Promise<number>;
  /** Gives back a reserved port whose server never started. */
  releasePort(args: DeploymentArgs, port: number): Promise<void>;
}
