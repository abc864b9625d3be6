import { ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as path from "path";
import { readDeployment } from "../../providers/deployment/core";
import { DeploymentState } from "../../providers/deployment/types";
import { readMlflowServer, MlflowServerState } from "../../providers/mlflowServerCore";
import {
  isPortFree,
  isSameProcessAlive,
  killProcessGroup,
  logExcerpt,
  ProcessHandle,
  reservePort,
  spawnDetached,
  waitForHttpOk,
} from "../../providers/process";
import {
  Exec,
  linuxProbe,
  processProbe,
  psProbe,
  unsupportedPlatformMessage,
} from "../../providers/process/identity";
import {
  portLockDir,
  readReservations,
  Reservation,
  ReservationRequest,
} from "../../providers/process/reservations";
import { freePort, repoRoot, tempDir } from "../support/env";

const request = (owner: string, subject = "models:/iris/1"): ReservationRequest => ({
  kind: "model-server",
  owner,
  command: ["/venv/bin/mlflow", "models", "serve"],
  subject,
});

describe("machine-wide port reservations (proper-lockfile)", () => {
  it("lives under the cache, not a stack's run dir", () => {
    expect(portLockDir({ MODEL_SERVING_CACHE: "/c" })).toBe("/c/locks/ports");
    expect(portLockDir({ XDG_CACHE_HOME: "/x", HOME: "/h" })).toBe("/x/model-serving/locks/ports");
    expect(portLockDir({ HOME: "/h" })).toBe("/h/.cache/model-serving/locks/ports");
  });

  it("gives two stacks reserving at once different ports (in one process)", async () => {
    const lockDir = tempDir("ports");
    const start = await freePort();
    const ports = await Promise.all(
      ["a", "b", "a2", "b2", "a3", "b3"].map((o) =>
        reservePort(
          "127.0.0.1",
          undefined,
          start,
          request(`org/p/stack-${o}/iris-server`),
          lockDir,
        ),
      ),
    );
    expect(new Set(ports).size).toBe(6);
    expect(
      readReservations(lockDir)
        .map((r) => r.port)
        .sort(),
    ).toEqual([...ports].sort());
  });

  it("gives two stacks in two processes (two provider processes) different ports", async () => {
    // Compile the reservation module once and race two node processes on one lock directory.
    const out = tempDir("ports-js");
    execFileSync(
      path.join(repoRoot, "node_modules/.bin/tsc"),
      [
        "--outDir",
        out,
        "--module",
        "commonjs",
        "--target",
        "es2022",
        "--esModuleInterop",
        "--skipLibCheck",
        path.join(repoRoot, "providers/process/reservations.ts"),
      ],
      { stdio: "pipe" },
    );
    const lockDir = tempDir("ports-cross");
    const start = await freePort();
    const script = `
      const r = require(${JSON.stringify(path.join(out, "reservations.js"))});
      const id = require(${JSON.stringify(path.join(out, "identity.js"))});
      const owner = process.argv[1];
      Promise.all([0, 1, 2, 3].map((i) => r.reservePort({
        host: "127.0.0.1", rangeStart: ${start}, lockDir: ${JSON.stringify(lockDir)},
        request: { kind: "model-server", owner: owner + i, command: [], subject: "s" },
        probe: id.processProbe(),
      }))).then((ports) => console.log(JSON.stringify(ports)));
      setTimeout(() => {}, 30000); // stay alive: a reservation holds while its reserving process runs`;
    const children: ChildProcess[] = [];
    const run = (owner: string) =>
      new Promise<number[]>((resolve, reject) => {
        const child = spawn(process.execPath, ["-e", script, owner], {
          env: { ...process.env, NODE_PATH: path.join(repoRoot, "node_modules") },
          stdio: ["ignore", "pipe", "inherit"],
        });
        children.push(child);
        let text = "";
        child.stdout.on("data", (d) => {
          text += d;
          if (text.endsWith("\n")) {
            resolve(JSON.parse(text));
          }
        });
        child.on("error", reject);
        child.on("close", (code) => reject(new Error(`exit ${code}`)));
      });
    try {
      const [a, b] = await Promise.all([run("stack-a/"), run("stack-b/")]);
      expect(a).toHaveLength(4);
      expect(new Set([...a, ...b]).size).toBe(8);
    } finally {
      children.forEach((c) => c.kill("SIGKILL"));
    }
  }, 60_000);

  it("takes over a lock directory left by a killed process (stale after 10 s)", async () => {
    const lockDir = tempDir("ports-stale-lock");
    fs.mkdirSync(path.join(lockDir, ".lock"));
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(path.join(lockDir, ".lock"), old, old);
    const start = await freePort();
    const t0 = Date.now();
    expect(await reservePort("127.0.0.1", undefined, start, request("o/p/s/a"), lockDir)).toBe(
      start,
    );
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it("skips another stack's live reservation, reclaims a dead one, reuses its own old port", async () => {
    const lockDir = tempDir("ports-records");
    const start = await freePort();
    const dead = spawnSync("true").pid!;
    const write = (port: number, r: Partial<Reservation>) =>
      fs.writeFileSync(
        path.join(lockDir, `127.0.0.1-${port}.json`),
        JSON.stringify({
          v: 1,
          ...request("other/p/s/x"),
          host: "127.0.0.1",
          port,
          reservedBy: { pid: dead, start: "1" },
          updatedAt: "",
          ...r,
        }),
      );
    const probe = linuxProbe();
    // start: held by a live server of another stack (our parent process stands in for it).
    write(start, {
      server: {
        pid: process.ppid,
        pgid: process.ppid,
        startTicks: probe.info(process.ppid)!.start,
      },
    });
    expect(await reservePort("127.0.0.1", undefined, start, request("o/p/s/a"), lockDir)).toBe(
      start + 1,
    );
    // A dead server's record is stale: the port is free for anyone.
    write(start, { server: { pid: dead, pgid: dead, startTicks: "1" } });
    expect(await reservePort("127.0.0.1", undefined, start, request("o/p/s/b"), lockDir)).toBe(
      start,
    );
    // o/p/s/a reserved start+1 before: its next create gets start+1 again (same URL), before start+2.
    expect(await reservePort("127.0.0.1", undefined, start, request("o/p/s/a"), lockDir)).toBe(
      start + 1,
    );
    // A fixed port held by another owner's live start is refused like a bound one.
    write(start + 5, { reservedBy: { pid: process.ppid, start: probe.info(process.ppid)!.start } });
    await expect(
      reservePort("127.0.0.1", start + 5, start, request("o/p/s/c"), lockDir),
    ).rejects.toThrow(
      `port: ${start + 5} on 127.0.0.1 is already in use by a process this stack does not own; choose another port or stop that process`,
    );
  });

  it("refuses a fixed port held by another process", async () => {
    const server = net.createServer();
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    try {
      expect(await isPortFree("127.0.0.1", port)).toBe(false);
      await expect(
        reservePort("127.0.0.1", port, 5001, request("o/p/s/a"), tempDir("ports-fixed")),
      ).rejects.toThrow(
        `port: ${port} on 127.0.0.1 is already in use by a process this stack does not own; choose another port or stop that process`,
      );
    } finally {
      server.close();
    }
  });
});

/** A node HTTP server in its own process group answering 200 on every path; `tag` lands on its
 * command line. */
const serverScript = `require("http").createServer((q, s) => s.end("ok")).listen(Number(process.argv[1]), "127.0.0.1")`;
function spawnNodeServer(port: number, tag: string, logFile: string): ProcessHandle {
  return spawnDetached(process.execPath, ["-e", serverScript, String(port), tag], {
    env: { PATH: process.env.PATH ?? "" },
    logFile,
  });
}

describe("ready means our own process answers", () => {
  const started: ProcessHandle[] = [];
  afterAll(async () => {
    for (const h of started) {
      await killProcessGroup(h, 2_000);
    }
  });

  it("accepts our server once it answers", async () => {
    const port = await freePort();
    const log = path.join(tempDir("ready"), "s.log");
    const handle = spawnNodeServer(port, "ours", log);
    started.push(handle);
    await waitForHttpOk(`http://127.0.0.1:${port}/ping`, handle, 20, log);
    expect(isSameProcessAlive(handle)).toBe(true);
  });

  it("never adopts a foreign server answering /ping on the reserved port", async () => {
    const port = await freePort();
    const foreign = http.createServer((q, s) => s.end("pong")).listen(port, "127.0.0.1");
    await new Promise((r) => foreign.once("listening", r));
    const log = path.join(tempDir("foreign"), "s.log");
    // Our "server" is alive but never binds (like a model server still loading its model).
    const handle = spawnDetached(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], {
      env: {},
      logFile: log,
    });
    started.push(handle);
    try {
      await expect(waitForHttpOk(`http://127.0.0.1:${port}/ping`, handle, 20, log)).rejects.toThrow(
        `port: ${port} on 127.0.0.1 is answered by a process this stack did not start (pid ${process.pid}), not by its server (pid ${handle.pid}); stop that process or choose another port`,
      );
    } finally {
      foreign.close();
    }
  });
});

describe("read keeps a running server that misses its health check", () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    if (child?.pid) {
      try {
        process.kill(-child.pid, "SIGCONT");
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // gone
      }
    }
  });

  it("SIGSTOPped model server: read warns and keeps it; dead: read reports it gone", async () => {
    const port = await freePort();
    const logFile = path.join(tempDir("read"), "s.log");
    const handle = spawnNodeServer(port, "models:/iris/1", logFile);
    child = { pid: handle.pid } as ChildProcess;
    await waitForHttpOk(`http://127.0.0.1:${port}/ping`, handle, 20, logFile);
    const state: DeploymentState = {
      mode: "local",
      modelUri: "models:/iris/1",
      trackingUri: "http://127.0.0.1:5000",
      host: "127.0.0.1",
      portRangeStart: 5001,
      mlflowBin: "/venv/bin/mlflow",
      runDir: "/run",
      startTimeoutSeconds: 60,
      ...handle,
      servedPort: port,
      baseUrl: `http://127.0.0.1:${port}`,
      url: `http://127.0.0.1:${port}/invocations`,
      logFile,
    };
    const lines: string[] = [];
    expect(await readDeployment(state, (m) => lines.push(m))).toEqual(state);
    expect(lines).toEqual([]);

    process.kill(-handle.pgid, "SIGSTOP");
    expect(await readDeployment(state, (m) => lines.push(m))).toEqual(state);
    expect(lines).toEqual([
      `warning: the server of models:/iris/1 (pid ${handle.pid}) runs but http://127.0.0.1:${port}/ping did not answer; keeping it (its log: ${logFile})`,
    ]);
    const mlflowState = {
      ...state,
      port,
      dataDir: "/d",
      trackingUri: `http://127.0.0.1:${port}`,
    } as unknown as MlflowServerState;
    const mlflowLines: string[] = [];
    expect(await readMlflowServer(mlflowState, (m) => mlflowLines.push(m))).toEqual(mlflowState);
    expect(mlflowLines).toEqual([
      `warning: the mlflow server (pid ${handle.pid}) runs but http://127.0.0.1:${port}/health did not answer; keeping it (its log: ${logFile})`,
    ]);
    process.kill(-handle.pgid, "SIGCONT");
    expect(await readDeployment(state)).toEqual(state);

    // A recycled pid (other start identity) is not ours; a dead process is gone.
    expect(await readDeployment({ ...state, startTicks: "1" })).toBeUndefined();
    await killProcessGroup(handle, 2_000);
    expect(await readDeployment(state)).toBeUndefined();
    expect(await readMlflowServer(mlflowState)).toBeUndefined();
  }, 30_000);
});

describe("process identity off Linux (ps/lsof through an injected exec)", () => {
  const fakeExec =
    (answers: Record<string, string | undefined>): Exec =>
    (file, args) =>
      answers[[file, ...args].join(" ")];

  it("reads start identity and group from ps, a zombie or missing pid as gone", () => {
    const probe = processProbe(
      "darwin",
      fakeExec({
        "ps -o pgid= -o stat= -o lstart= -p 42": "  4100 Ss   Tue Dec  1 06:59:21 2026\n",
        "ps -o pgid= -o stat= -o lstart= -p 43": "  4100 Z+   Tue Dec  1 06:59:22 2026\n",
        "ps -o command= -p 42":
          "/venv/bin/python /venv/bin/mlflow models serve -m models:/iris/1\n",
      }),
    );
    expect(probe.info(42)).toEqual({ start: "Tue Dec 1 06:59:21 2026", pgid: 4100 });
    expect(probe.info(43)).toBeUndefined();
    expect(probe.info(44)).toBeUndefined();
    expect(probe.commandLine(42)).toBe(
      "/venv/bin/python /venv/bin/mlflow models serve -m models:/iris/1",
    );
    expect(probe.commandLine(44)).toBe("");
  });

  it("finds listeners with lsof; undefined (cannot tell) without lsof", () => {
    const withLsof = psProbe(
      fakeExec({
        "lsof -nP -iTCP:5001 -sTCP:LISTEN -t": "4101\n4102\n",
        "sh -c command -v lsof": "/usr/sbin/lsof\n",
      }),
    );
    expect(withLsof.listeners(5001)).toEqual([4101, 4102]);
    expect(withLsof.listeners(5002)).toEqual([]);
    expect(psProbe(fakeExec({})).listeners(5001)).toBeUndefined();
  });

  it("refuses Windows with a clear error", () => {
    expect(() => processProbe("win32")).toThrow(
      'local servers need a POSIX system with process groups (Linux, macOS); this is "win32": use mlflow.mode "existing" and serve the models elsewhere',
    );
    expect(unsupportedPlatformMessage("win32")).toContain('"win32"');
  });

  it("the real ps agrees with /proc on this machine's pid and group", () => {
    const viaPs = processProbe("darwin").info(process.pid);
    const viaProc = linuxProbe().info(process.pid);
    expect(viaPs?.pgid).toBe(viaProc?.pgid);
    expect(viaPs?.start).toMatch(/^\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4}$/);
    expect(processProbe("darwin").info(spawnSync("true").pid!)).toBeUndefined();
  });
});

describe("the log lines a failed start shows", () => {
  const shutdown = Array.from({ length: 20 }, (_, i) => `[INFO] worker ${i} exiting`);

  it("keeps the cause that scrolled out of the last lines", () => {
    const log = [
      "Traceback (most recent call last):",
      '  File "loader.py", line 3, in load',
      "ModuleNotFoundError: No module named 'model_serving_no_such_module'",
      ...shutdown,
    ].join("\n");
    const excerpt = logExcerpt(log, 15).split("\n");
    expect(excerpt[0]).toBe("ModuleNotFoundError: No module named 'model_serving_no_such_module'");
    expect(excerpt.slice(2)).toEqual(shutdown.slice(-15));
  });

  it("is just the last lines when they hold the cause, or there is none", () => {
    const log = [...shutdown, "OSError: [Errno 98] Address already in use"].join("\n");
    expect(logExcerpt(log, 3)).toBe(
      [
        "[INFO] worker 18 exiting",
        "[INFO] worker 19 exiting",
        "OSError: [Errno 98] Address already in use",
      ].join("\n"),
    );
    expect(logExcerpt(shutdown.join("\n"), 2)).toBe(shutdown.slice(-2).join("\n"));
  });
});
