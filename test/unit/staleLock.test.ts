import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { repoRoot, tempDir } from "../support/env";

// scripts/stale-lock.js (npm run up's recovery of a lock a killed `pulumi up` left), on a fake file
// backend; the real-engine case is test/faults/killedUp.test.ts.

const deadPid = spawnSync("true").pid!; // exited
const timestamp = "2026-12-01T07:00:00.000000000Z";
const made: string[] = [];
afterAll(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function backendWith(locks: Record<string, unknown>[]) {
  const backend = tempDir("stale-lock");
  made.push(backend);
  const dir = path.join(backend, ".pulumi", "locks", "organization", "model-serving", "dev");
  fs.mkdirSync(dir, { recursive: true });
  const files = locks.map((lock, i) => {
    const file = path.join(dir, `lock-${i}.json`);
    fs.writeFileSync(file, JSON.stringify({ username: "alice", timestamp, ...lock }));
    fs.writeFileSync(`${file}.attrs`, "{}");
    return file;
  });
  return { backend, dir, files };
}

function recover(backendUrl: string | undefined, stack = "dev") {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.PULUMI_BACKEND_URL;
  if (backendUrl !== undefined) {
    env.PULUMI_BACKEND_URL = backendUrl;
  }
  const r = spawnSync("node", ["scripts/stale-lock.js", stack], {
    cwd: repoRoot,
    env,
    encoding: "utf8",
  });
  return { code: r.status, stderr: r.stderr };
}

describe("scripts/stale-lock.js", () => {
  it("removes the lock (and its .attrs) of a pulumi of this machine that is gone", () => {
    const { backend, dir } = backendWith([{ pid: deadPid, hostname: os.hostname() }]);
    expect(recover(`file://${backend}?no_tmp_dir=true`)).toEqual({
      code: 0,
      stderr:
        `[stale-lock] removed the lock of stack dev held by alice@${os.hostname()} (pid ${deadPid}) ` +
        `since ${timestamp}: that pulumi is no longer running\n`,
    });
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it("treats a pid reused by a process that is not pulumi as gone", () => {
    const { backend, dir } = backendWith([{ pid: process.pid, hostname: os.hostname() }]);
    expect(recover(`file://${backend}`).code).toBe(0);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it("keeps another machine's lock and says what to run", () => {
    const { backend, files } = backendWith([{ pid: deadPid, hostname: "build-42" }]);
    expect(recover(`file://${backend}`)).toEqual({
      code: 1,
      stderr:
        `[stale-lock] stack dev is locked by alice@build-42 (pid ${deadPid}) since ${timestamp}, ` +
        "another machine; once no pulumi runs there for this stack, run: " +
        "npm run pulumi -- cancel --yes --stack dev\n",
    });
    expect(files.every((f) => fs.existsSync(f))).toBe(true);
  });

  it("does nothing without locks, for another stack, or on a backend that is not a file backend", () => {
    const { backend, files } = backendWith([{ pid: deadPid, hostname: os.hostname() }]);
    expect(recover(`file://${backend}`, "prod")).toEqual({ code: 0, stderr: "" });
    expect(recover("s3://bucket/state")).toEqual({ code: 0, stderr: "" });
    expect(recover(undefined)).toEqual({ code: 0, stderr: "" });
    expect(files.every((f) => fs.existsSync(f))).toBe(true);
    const empty = tempDir("stale-lock-empty");
    made.push(empty);
    expect(recover(`file://${empty}`)).toEqual({ code: 0, stderr: "" });
  });
});
