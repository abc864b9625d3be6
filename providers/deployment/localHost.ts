import * as fs from "fs";
import * as path from "path";
import { resolveConnection } from "../mlflow/connection";
import { serverTrackingEnv } from "../mlflow/credentialsHome";
import * as proc from "../process";
import { serverEnvironment } from "../process/env";
import { DeploymentArgs, DeploymentState, ServerHealth, ServingHost } from "./types";

/** Deploy mode `local`: `mlflow models serve --env-manager local` on this machine, in its own process
 * group (so delete can stop the server and all its workers), with an allow-listed environment, its port
 * reserved machine-wide and its start recorded before it is spawned (crash-safe create). With MLflow
 * basic auth its credentials are a file in a home of its own (providers/mlflow/credentialsHome.ts),
 * not variables of its environment; stop removes that home. */
export function localServingHost(): ServingHost {
  const homeOf = (runDir: string, host: string, port: number) =>
    path.join(runDir, "homes", `model-server-${host}-${port}`);
  const serveArgs = (args: DeploymentArgs, port: number): string[] => [
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
  ];
  const request = (args: DeploymentArgs, port: number): proc.ReservationRequest => ({
    kind: "model-server",
    owner: args.owner ?? "",
    command: [args.mlflowBin, ...serveArgs(args, port)],
    subject: `${args.modelUri} from ${args.trackingUri}`,
  });
  const stateFor = (
    args: DeploymentArgs,
    port: number,
    handle: proc.ProcessHandle,
  ): DeploymentState => {
    const baseUrl = `http://${args.host}:${port}`;
    return {
      ...args,
      pid: handle.pid,
      pgid: handle.pgid,
      startTicks: handle.startTicks,
      servedPort: port,
      baseUrl,
      url: `${baseUrl}/invocations`,
      logFile: path.join(args.runDir, "logs", `model-server-${args.host}-${port}.log`),
    };
  };

  return {
    async recover(args, log): Promise<DeploymentState | undefined> {
      for (const orphan of proc.ownLiveServers(args.owner, "model-server", args.host)) {
        const handle = orphan.server!;
        const state = stateFor(args, orphan.port, handle);
        const same =
          orphan.subject === request(args, orphan.port).subject &&
          JSON.stringify(orphan.command) === JSON.stringify(request(args, orphan.port).command) &&
          (args.port === undefined || args.port === orphan.port);
        if (same) {
          log(
            `found this deployment's server from an interrupted create (pid ${handle.pid}, ` +
              `${state.baseUrl}): adopting it once it answers`,
          );
          try {
            await proc.waitForHttpOk(
              `${state.baseUrl}/ping`,
              handle,
              args.startTimeoutSeconds,
              state.logFile,
              log,
            );
            return state;
          } catch (err) {
            log(`cannot adopt it (${(err as Error).message.split("\n")[0]}): stopping it`);
          }
        } else {
          log(
            `stopping this deployment's server left by an interrupted create (pid ${handle.pid}, ` +
              `${orphan.subject}); its port ${orphan.port} is reused`,
          );
        }
        await proc.killProcessGroup(handle);
        await proc.waitForPortFree(args.host, orphan.port, 15_000);
      }
      return undefined;
    },

    async reservePort(args: DeploymentArgs): Promise<number> {
      return proc.reservePort(args.host, args.port, args.portRangeStart, request(args, 0));
    },

    async releasePort(args: DeploymentArgs, port: number): Promise<void> {
      await proc.releasePort(args.host, port, args.owner);
    },

    async start(args: DeploymentArgs, port: number, log): Promise<DeploymentState> {
      // The record names what is started here before it is spawned (and the pid right after), so an
      // `up` killed from here on leaves an orphan the next create finds.
      await proc.reservePort(args.host, port, args.portRangeStart, request(args, port));
      const logFile = stateFor(args, port, { pid: 0, pgid: 0, startTicks: "" }).logFile;
      const env = serverEnvironment({
        base: process.env,
        mlflowBin: args.mlflowBin,
        passEnv: args.passEnv,
        // The one credential policy (providers/mlflow/connection.ts): the auth input, else the
        // provider's MLFLOW_TRACKING_* credentials; the server gets exactly the resolved ones.
        set: serverTrackingEnv(
          resolveConnection({ trackingUri: args.trackingUri, auth: args.auth }, process.env),
          homeOf(args.runDir, args.host, port),
        ),
      });
      const handle = proc.spawnDetached(args.mlflowBin, serveArgs(args, port), {
        env,
        logFile,
        cwd: args.runDir,
      });
      const state = stateFor(args, port, handle);
      try {
        await proc.recordServer(args.host, port, handle);
        log(`started ${args.modelUri} on ${state.baseUrl} (pid ${handle.pid})`);
        await proc.waitForHttpOk(
          `${state.baseUrl}/ping`,
          handle,
          args.startTimeoutSeconds,
          logFile,
          log,
        );
      } catch (err) {
        await proc.killProcessGroup(handle);
        fs.rmSync(homeOf(args.runDir, args.host, port), { recursive: true, force: true });
        throw err;
      }
      // Fetched and loaded: the password need not stay on disk.
      fs.rmSync(homeOf(args.runDir, args.host, port), { recursive: true, force: true });
      return state;
    },

    async stop(state: DeploymentState, options = {}): Promise<void> {
      await proc.killProcessGroup(state);
      await proc.waitForPortFree(state.host, state.servedPort, 15_000);
      fs.rmSync(homeOf(state.runDir, state.host, state.servedPort), {
        recursive: true,
        force: true,
      });
      if (!options.keepReservation) {
        await proc.releasePort(state.host, state.servedPort, state.owner);
      }
    },

    async health(state: DeploymentState): Promise<ServerHealth> {
      if (
        !proc.isSameProcessAlive(state) ||
        !proc.processCommandLine(state.pid).includes(state.modelUri)
      ) {
        return "gone";
      }
      return (await proc.httpStatus(`${state.baseUrl}/ping`)) === 200 ? "serving" : "not answering";
    },
  };
}
