import { MlflowAuth } from "../modelVersionCore";
import { ProcessHandle } from "../process";

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
}

export interface DeploymentState extends DeploymentArgs, ProcessHandle {
  servedPort: number;
  /** `http://<host>:<port>` */
  baseUrl: string;
  /** The scoring URL, `<baseUrl>/invocations`. */
  url: string;
  logFile: string;
}

export interface ServingHost {
  /** Starts the model server on `port` and waits until it answers /ping. */
  start(args: DeploymentArgs, port: number, log: (msg: string) => void): Promise<DeploymentState>;
  /** Stops it and waits until the port is released. */
  stop(state: DeploymentState): Promise<void>;
  /** True when the server we started is still running and answers as this model's server. */
  isServing(state: DeploymentState): Promise<boolean>;
  /** Picks the port for a new deployment. */
  reservePort(args: DeploymentArgs): Promise<number>;
  /** Gives back a reserved port whose server never started. */
  releasePort(args: DeploymentArgs, port: number): void;
}
