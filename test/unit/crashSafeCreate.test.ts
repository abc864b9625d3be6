import * as fs from "fs";
import * as path from "path";
import { createDeployment, deleteDeployment } from "../../providers/deployment/core";
import { DeploymentArgs } from "../../providers/deployment/types";
import {
  serverCommand,
  startMlflowServer,
  stopMlflowServer,
} from "../../providers/mlflowServerCore";
import {
  isSameProcessAlive,
  killProcessGroup,
  ProcessHandle,
  spawnDetached,
} from "../../providers/process";
import { readReservations, Reservation } from "../../providers/process/reservations";
import { freePort, tempDir } from "../support/env";

// Crash-safe create without MLflow: a stand-in `mlflow` executable (a shell script) that serves HTTP 200 on
// the port after `-p`/`--port`, so createDeployment and startMlflowServer run their real code paths:
// reserve, record, spawn, wait for our own listener, adopt or stop an interrupted create's orphan.
const cache = tempDir("crash-cache");
const lockDir = path.join(cache, "locks", "ports");
const fakeMlflow = path.join(tempDir("crash-bin"), "mlflow");
fs.writeFileSync(
  fakeMlflow,
  `#!/bin/sh
port=""
while [ $# -gt 0 ]; do
  case "$1" in -p|--port) port="$2"; shift;; esac
  shift
done
exec "${process.execPath}" -e 'require("http").createServer((q, s) => s.end("ok")).listen(Number(process.argv[1]), "127.0.0.1")' "$port"
`,
  { mode: 0o755 },
);

const saved = process.env.MODEL_SERVING_CACHE;
beforeAll(() => {
  process.env.MODEL_SERVING_CACHE = cache;
});
afterAll(() => {
  process.env.MODEL_SERVING_CACHE = saved;
});

const started: ProcessHandle[] = [];
afterAll(async () => {
  for (const h of started) {
    await killProcessGroup(h, 2_000);
  }
});

/** What a create killed after the spawn leaves behind: a running server and its record. */
function orphan(
  record: Omit<Reservation, "v" | "reservedBy" | "updatedAt" | "server">,
  port: number,
) {
  const handle = spawnDetached(fakeMlflow, ["-p", String(port)], {
    env: { PATH: process.env.PATH ?? "" },
    logFile: path.join(cache, "orphan.log"),
  });
  started.push(handle);
  fs.mkdirSync(lockDir, { recursive: true });
  fs.writeFileSync(
    path.join(lockDir, `127.0.0.1-${port}.json`),
    JSON.stringify({
      v: 1,
      ...record,
      reservedBy: { pid: 1, start: "killed" },
      server: { pid: handle.pid, pgid: handle.pgid, startTicks: handle.startTicks },
      updatedAt: "",
    }),
  );
  return handle;
}

async function waitAnswering(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(`http://127.0.0.1:${port}/`);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe("crash-safe create of a model deployment", () => {
  const owner = "organization/model-serving/dev/iris-server";
  const args = (extra: Partial<DeploymentArgs>): DeploymentArgs => ({
    mode: "local",
    modelUri: "models:/iris/1",
    trackingUri: "http://127.0.0.1:5000",
    host: "127.0.0.1",
    portRangeStart: 5001,
    mlflowBin: fakeMlflow,
    runDir: path.join(cache, "run", "dev"),
    startTimeoutSeconds: 30,
    owner,
    passEnv: [],
    ...extra,
  });
  const command = (a: DeploymentArgs, port: number) => [
    a.mlflowBin,
    ...["models", "serve", "-m", a.modelUri, "--env-manager", "local"],
    ...["-h", a.host, "-p", String(port)],
  ];

  it("adopts this resource's own server of an interrupted create (same model): same port, same pid", async () => {
    const port = await freePort();
    const a = args({ portRangeStart: port - 10 > 1024 ? port - 10 : port });
    const handle = orphan(
      {
        kind: "model-server",
        owner,
        host: "127.0.0.1",
        port,
        command: command(a, port),
        subject: "models:/iris/1 from http://127.0.0.1:5000",
      },
      port,
    );
    await waitAnswering(port);
    const lines: string[] = [];
    const { id, outs } = await createDeployment(a, (m) => lines.push(m));
    expect(id).toBe(`127.0.0.1:${port}`);
    expect(outs.pid).toBe(handle.pid);
    expect(lines[0]).toBe(
      `found this deployment's server from an interrupted create (pid ${handle.pid}, http://127.0.0.1:${port}): adopting it once it answers`,
    );
    await deleteDeployment(outs);
    expect(isSameProcessAlive(handle)).toBe(false);
    expect(readReservations(lockDir).filter((r) => r.port === port)).toEqual([]);
  });

  it("stops an orphan serving another model and starts the new server on the orphan's port", async () => {
    const port = await freePort();
    const a = args({ modelUri: "models:/iris/2", portRangeStart: 1024 });
    const old = orphan(
      {
        kind: "model-server",
        owner,
        host: "127.0.0.1",
        port,
        command: command({ ...a, modelUri: "models:/iris/1" }, port),
        subject: "models:/iris/1 from http://127.0.0.1:5000",
      },
      port,
    );
    await waitAnswering(port);
    const lines: string[] = [];
    const { outs } = await createDeployment(a, (m) => lines.push(m));
    started.push(outs);
    expect(outs.servedPort).toBe(port);
    expect(outs.pid).not.toBe(old.pid);
    expect(isSameProcessAlive(old)).toBe(false);
    expect(lines[0]).toBe(
      `stopping this deployment's server left by an interrupted create (pid ${old.pid}, models:/iris/1 from http://127.0.0.1:5000); its port ${port} is reused`,
    );
    const record = readReservations(lockDir).find((r) => r.port === port)!;
    expect(record).toMatchObject({
      owner,
      command: command(a, port),
      server: { pid: outs.pid, pgid: outs.pgid, startTicks: outs.startTicks },
    });
    await deleteDeployment(outs);
  });

  it("never touches another stack's server", async () => {
    const port = await freePort();
    const foreign = orphan(
      {
        kind: "model-server",
        owner: "organization/model-serving/other/iris-server",
        host: "127.0.0.1",
        port,
        command: [],
        subject: "models:/iris/1 from http://127.0.0.1:5000",
      },
      port,
    );
    await waitAnswering(port);
    const { outs } = await createDeployment(args({ portRangeStart: port }));
    started.push(outs);
    expect(outs.servedPort).not.toBe(port);
    expect(isSameProcessAlive(foreign)).toBe(true);
    await deleteDeployment(outs);
  });
});

describe("crash-safe create of the local MLflow server", () => {
  it("adopts its own server of an interrupted create, or stops it when the command changed", async () => {
    const port = await freePort();
    const owner = "organization/model-serving/dev/mlflow-server";
    const server = {
      mlflowBin: fakeMlflow,
      host: "127.0.0.1",
      port,
      dataDir: path.join(cache, "mlflow"),
      startTimeoutSeconds: 30,
      owner,
    };
    const handle = orphan(
      {
        kind: "mlflow-server",
        owner,
        host: "127.0.0.1",
        port,
        command: [fakeMlflow, ...serverCommand(server)],
        subject: path.resolve(server.dataDir),
      },
      port,
    );
    await waitAnswering(port);
    const adopted = await startMlflowServer(server);
    expect(adopted.pid).toBe(handle.pid);

    // Another command (here: another worker count would do too; basic auth on) -> stopped, started anew.
    const restarted = await startMlflowServer({
      ...server,
      auth: { username: "admin", password: "Adm1n-Password-long" },
    });
    started.push(restarted);
    expect(isSameProcessAlive(handle)).toBe(false);
    expect(restarted.pid).not.toBe(handle.pid);
    expect(restarted.port).toBe(port);
    await stopMlflowServer(restarted);
    expect(readReservations(lockDir).filter((r) => r.port === port)).toEqual([]);
  });
});
