import * as path from "path";
import * as proc from "../process";
import { DeploymentArgs, DeploymentState, ServingHost } from "./types";

/** Deploy mode `local`: `mlflow models serve --env-manager local` on this machine, in its own process
 * group, so delete can stop the server and all its workers. */
export function localServingHost(): ServingHost {
  return {
    async reservePort(args: DeploymentArgs): Promise<number> {
      return proc.reservePort(
        args.host,
        args.port,
        args.portRangeStart,
        path.join(args.runDir, "ports"),
      );
    },

    releasePort(args: DeploymentArgs, port: number): void {
      proc.releasePort(args.host, port, path.join(args.runDir, "ports"));
    },

    async start(args: DeploymentArgs, port: number, log): Promise<DeploymentState> {
      const logFile = path.join(args.runDir, "logs", `model-server-${args.host}-${port}.log`);
      // The model server execs uvicorn by name: the venv's bin folder must come first on PATH.
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        PATH: `${path.dirname(args.mlflowBin)}${path.delimiter}${process.env.PATH ?? ""}`,
        MLFLOW_TRACKING_URI: args.trackingUri,
      };
      for (const key of [
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_TRACKING_TOKEN",
      ]) {
        delete env[key];
      }
      if (args.auth?.username !== undefined) {
        env.MLFLOW_TRACKING_USERNAME = args.auth.username;
      }
      if (args.auth?.password !== undefined) {
        env.MLFLOW_TRACKING_PASSWORD = args.auth.password;
      }
      if (args.auth?.token !== undefined) {
        env.MLFLOW_TRACKING_TOKEN = args.auth.token;
      }
      const handle = proc.spawnDetached(
        args.mlflowBin,
        [
          "models",
          "serve",
          "-m",
          args.modelUri,
          "--env-manager",
          "local",
          "-h",
          args.host,
          "-p",
          String(port),
        ],
        { env, logFile },
      );
      const baseUrl = `http://${args.host}:${port}`;
      const state: DeploymentState = {
        ...args,
        ...handle,
        servedPort: port,
        baseUrl,
        url: `${baseUrl}/invocations`,
        logFile,
      };
      log(`started ${args.modelUri} on ${baseUrl} (pid ${handle.pid})`);
      try {
        await proc.waitForHttpOk(`${baseUrl}/ping`, handle, args.startTimeoutSeconds, logFile, log);
      } catch (err) {
        await proc.killProcessGroup(handle);
        throw err;
      }
      return state;
    },

    async stop(state: DeploymentState): Promise<void> {
      await proc.killProcessGroup(state);
      await proc.waitForPortFree(state.host, state.servedPort, 15_000);
      proc.releasePort(state.host, state.servedPort, path.join(state.runDir, "ports"));
    },

    async isServing(state: DeploymentState): Promise<boolean> {
      if (!proc.isSameProcessAlive(state)) {
        return false;
      }
      if (!proc.processCommandLine(state.pid).includes(state.modelUri)) {
        return false;
      }
      return (await proc.httpStatus(`${state.baseUrl}/ping`)) === 200;
    },
  };
}
