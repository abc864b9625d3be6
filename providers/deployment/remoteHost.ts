import { lastLines, runScriptAsRoot, SshSession, withSsh } from "../ssh/client";
import { writeRemoteFile } from "../ssh/files";
import { shQuote } from "../ssh/quote";
import { credentialsFileText } from "../mlflow/credentialsHome";
import { venvDir } from "../remote/provisionScript";
import * as scripts from "./remoteScripts";
import {
  DeploymentArgs,
  DeploymentState,
  RemoteServingArgs,
  ServerHealth,
  ServingHost,
} from "./types";

/**
 * Deploy mode `remote`: `mlflow models serve --env-manager local` on a provisioned host over SSH, as the
 * service user, in its own session (setsid), so stop ends the whole process group. Ports from
 * `portRangeStart` (5001 by default, the admin guide's range) are locked on the remote host
 * (<baseDir>/run/model-servers/<port>, see remoteScripts.ts); the log lives beside the lock and its last
 * lines are in every start error. The server's environment is MLFLOW_TRACKING_URI only (the host's view
 * of MLflow), and with MLflow basic auth (`auth`) the credentials, read from a 0600 file written over
 * SSH stdin and removed before the server execs (remoteScripts.ts).
 */
function remoteOf(args: DeploymentArgs): RemoteServingArgs {
  if (!args.remote) {
    throw new Error("deployMode remote: the remote host (ssh connection and layout) is not set");
  }
  return args.remote;
}

function specOf(args: DeploymentArgs): scripts.RemoteServeSpec {
  const remote = remoteOf(args);
  return {
    locksDir: `${remote.layout.baseDir}/run/model-servers`,
    serviceUser: remote.layout.serviceUser,
    mlflowBin: `${venvDir(remote.layout)}/bin/mlflow`,
    trackingUri: remote.hostTrackingUri,
    modelUri: args.modelUri,
    bindHost: args.host,
    owner: args.owner ?? "",
    credentials: credentialsKind(args.auth),
  };
}

/** Basic auth goes into MLflow's credentials file, a token (MLflow has no file for one) into the env. */
function credentialsKind(auth: DeploymentArgs["auth"]): "file" | "env" | undefined {
  if (auth?.username !== undefined && auth.password !== undefined) {
    return "file";
  }
  return auth?.token !== undefined ? "env" : undefined;
}

function asRoot(ssh: SshSession, args: DeploymentArgs, script: string, what: string) {
  return runScriptAsRoot(ssh, remoteOf(args).connection.user, script, what);
}

function stateFor(
  args: DeploymentArgs,
  port: number,
  pid: number,
  pgid: number,
  startTicks: string,
): DeploymentState {
  const baseUrl = `http://${remoteOf(args).publicHost}:${port}`;
  return {
    ...args,
    pid,
    pgid,
    startTicks,
    servedPort: port,
    baseUrl,
    url: `${baseUrl}/invocations`,
    logFile: `${scripts.lockDir(specOf(args), port)}/log`,
  };
}

export function remoteServingHost(): ServingHost {
  const withHost = <T>(args: DeploymentArgs, fn: (ssh: SshSession) => Promise<T>) =>
    withSsh(remoteOf(args).connection, fn);

  const waitForPing = async (ssh: SshSession, state: DeploymentState, log: (m: string) => void) => {
    const deadline = Date.now() + state.startTimeoutSeconds * 1000;
    let lastReport = Date.now();
    for (;;) {
      const status = (await ssh.run(scripts.pingScript(state.servedPort))).stdout.trim();
      if (status === "200") {
        return;
      }
      const alive = (
        await asRoot(
          ssh,
          state,
          scripts.identityScript(state.pid, state.startTicks, state.modelUri),
          "checking the model server",
        )
      ).stdout.trim();
      const tail = async () =>
        lastLines(
          (
            await asRoot(
              ssh,
              state,
              scripts.logTailScript(specOf(state), state.servedPort),
              "reading the log",
            )
          ).stdout,
          30,
        );
      if (alive !== "alive") {
        throw new Error(
          `model server for ${state.modelUri} on ${ssh.target} exited during start-up; last log lines:\n${await tail()}`,
        );
      }
      if (Date.now() > deadline) {
        throw new Error(
          `model server for ${state.modelUri} on ${ssh.target} did not answer /ping on port ${state.servedPort} within ${state.startTimeoutSeconds} s; last log lines:\n${await tail()}`,
        );
      }
      if (Date.now() - lastReport > 10_000) {
        log(`waiting for ${state.modelUri} on ${state.baseUrl}`);
        lastReport = Date.now();
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  };

  return {
    async recover(): Promise<DeploymentState | undefined> {
      // A killed `up` leaves a lock with this owner; reservePort reuses it once its process is gone. An
      // orphan that still runs keeps its port (not adopted yet: see the report in the commit).
      return undefined;
    },

    async reservePort(args) {
      const out = await withHost(args, (ssh) =>
        asRoot(
          ssh,
          args,
          scripts.reservePortScript(specOf(args), args.portRangeStart, args.port),
          "reserving a port",
        ),
      );
      return Number(out.stdout.trim());
    },

    async releasePort(args, port) {
      await withHost(args, (ssh) =>
        asRoot(ssh, args, `rm -rf '${scripts.lockDir(specOf(args), port)}'`, "releasing a port"),
      );
    },

    async start(args, port, log) {
      return withHost(args, async (ssh) => {
        const kind = credentialsKind(args.auth);
        if (kind !== undefined) {
          const user = remoteOf(args).layout.serviceUser;
          await writeRemoteFile(ssh, remoteOf(args).connection.user, {
            path:
              kind === "file"
                ? `${scripts.credentialsHome(specOf(args), port)}/.mlflow/credentials`
                : scripts.credentialsPath(specOf(args), port),
            content:
              kind === "file"
                ? credentialsFileText(args.auth!.username!, args.auth!.password!)
                : scripts.credentialsEnv(args.auth!),
            mode: "0600",
            owner: `${user}:${user}`,
            asRoot: true,
          });
        }
        const out = await asRoot(
          ssh,
          args,
          scripts.startScript(specOf(args), port),
          `starting ${args.modelUri}`,
        );
        const [pid, pgid, startTicks] = out.stdout.trim().split(" ");
        const state = stateFor(args, port, Number(pid), Number(pgid), startTicks);
        log(`started ${args.modelUri} on ${state.baseUrl} (${ssh.target}, pid ${pid})`);
        try {
          await waitForPing(ssh, state, log);
        } catch (err) {
          await asRoot(
            ssh,
            args,
            scripts.stopScript(specOf(args), port, state.pgid, true),
            "stopping it",
          ).catch(() => undefined);
          throw err;
        }
        if (kind === "file") {
          // Fetched and loaded: the password need not stay on the host.
          await asRoot(
            ssh,
            args,
            `rm -rf ${shQuote(scripts.credentialsHome(specOf(args), port))}`,
            "removing the model server's MLflow credentials",
          );
        }
        return state;
      });
    },

    async stop(state, options = {}) {
      await withHost(state, (ssh) =>
        asRoot(
          ssh,
          state,
          scripts.stopScript(
            specOf(state),
            state.servedPort,
            state.pgid,
            options.keepReservation ?? false,
          ),
          `stopping ${state.modelUri}`,
        ),
      );
    },

    async health(state): Promise<ServerHealth> {
      return withHost(state, async (ssh) => {
        const alive = (
          await asRoot(
            ssh,
            state,
            scripts.identityScript(state.pid, state.startTicks, state.modelUri),
            "checking the model server",
          )
        ).stdout.trim();
        if (alive !== "alive") {
          return "gone";
        }
        return (await ssh.run(scripts.pingScript(state.servedPort))).stdout.trim() === "200"
          ? "serving"
          : "not answering";
      });
    },
  };
}
