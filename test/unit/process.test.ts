import { spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { isPortFree, releasePort, reservePort } from "../../providers/process";
import { freePort, tempDir } from "../support/env";

describe("port reservation", () => {
  it("gives parallel deployments different ports", async () => {
    const lockDir = tempDir("ports");
    const start = await freePort();
    const ports = await Promise.all(
      [0, 1, 2, 3].map(() => reservePort("127.0.0.1", undefined, start, lockDir)),
    );
    expect(new Set(ports).size).toBe(4);
    for (const p of ports) {
      expect(fs.existsSync(path.join(lockDir, `port-127.0.0.1-${p}.lock`))).toBe(true);
      releasePort("127.0.0.1", p, lockDir);
    }
  });

  it("skips ports in use and takes over a stale lock of a process that is gone", async () => {
    const lockDir = tempDir("ports-stale");
    const start = await freePort();
    const dead = spawnSync("true").pid!; // exited: its lock is stale
    fs.writeFileSync(path.join(lockDir, `port-127.0.0.1-${start}.lock`), String(dead));
    expect(await reservePort("127.0.0.1", undefined, start, lockDir)).toBe(start);

    const live = path.join(lockDir, `port-127.0.0.1-${start}.lock`);
    fs.writeFileSync(live, String(process.ppid)); // a live owner keeps its port
    expect(await reservePort("127.0.0.1", undefined, start, lockDir)).not.toBe(start);
  });

  it("refuses a fixed port held by another process", async () => {
    const server = net.createServer();
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    try {
      expect(await isPortFree("127.0.0.1", port)).toBe(false);
      await expect(reservePort("127.0.0.1", port, 5001, tempDir("ports-fixed"))).rejects.toThrow(
        `port: ${port} on 127.0.0.1 is already in use by a process this stack does not own; choose another port or stop that process`,
      );
    } finally {
      server.close();
    }
  });
});
