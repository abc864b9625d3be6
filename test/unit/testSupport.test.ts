import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { errorText } from "../support/errorText";
import { freePort, inCI, listenOnFreePort, tryReservePort } from "../support/env";
import * as net from "net";

// The test helpers the other suites rely on to be able to fail.

describe("errorText", () => {
  it("sees an Error's message, stack, hidden properties and cause, which JSON.stringify misses", () => {
    const err = new Error("login with s3cret failed", { cause: new Error("token t0ken") });
    Object.defineProperty(err, "config", { value: { headers: { Authorization: "Basic aGk=" } } });
    expect(JSON.stringify(err)).toBe("{}");
    const text = errorText(err);
    for (const needle of [
      "login with s3cret failed",
      "token t0ken",
      "Basic aGk=",
      "testSupport.test",
    ]) {
      expect(text).toContain(needle);
    }
  });
});

describe("inCI", () => {
  it.each([
    ["true", true],
    ["1", true],
    ["TRUE", true],
    ["false", false],
    ["", false],
    [undefined, false],
  ])("CI=%s -> %s", (value, expected) => {
    expect(inCI(value === undefined ? {} : { CI: value })).toBe(expected);
  });
});

describe("freePort", () => {
  const lockDir = path.join(os.tmpdir(), "model-serving-test-ports");

  it("reserves distinct ports below the ephemeral range, each in a file naming this process", async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    expect(new Set(ports).size).toBe(20);
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(20000);
      expect(port).toBeLessThan(32768); // Linux hands out 32768-60999 to outgoing connections
      expect(fs.readFileSync(path.join(lockDir, `${port}.pid`), "utf8")).toBe(String(process.pid));
    }
  });

  it("never takes a port another live process reserved, and takes over a dead one's", async () => {
    const port = await freePort();
    const file = path.join(lockDir, `${port}.pid`);
    fs.writeFileSync(file, String(process.ppid)); // a live process (jest's parent) holds it
    expect(tryReservePort(port)).toBe(false);
    expect(fs.readFileSync(file, "utf8")).toBe(String(process.ppid));
    fs.writeFileSync(file, "999999999"); // a process that is gone
    expect(tryReservePort(port)).toBe(true);
    expect(fs.readFileSync(file, "utf8")).toBe(String(process.pid));
  });

  it("listenOnFreePort binds the kernel's pick and says which", async () => {
    const server = net.createServer();
    const port = await listenOnFreePort(server);
    try {
      expect((server.address() as net.AddressInfo).port).toBe(port);
    } finally {
      server.close();
    }
  });
});

describe("the two lanes of the server suites (replayLastSequencer)", () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { inLaneOne } = require("../support/replayLastSequencer") as {
    inLaneOne: (p: string) => boolean;
  };
  const root = path.join(__dirname, "..", "..");
  const suites = (dir: string): string[] =>
    fs
      .readdirSync(path.join(root, dir), { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith(".test.ts"))
      .map((f) => path.join(root, dir, f));

  it("puts the SSH-host, Docker and fault suites in lane 1 and the local MLflow suites in lane 2", () => {
    const lane = (p: string) => (inLaneOne(path.join(root, p)) ? 1 : 2);
    expect(lane("test/integration/remote/provision.test.ts")).toBe(1);
    expect(lane("test/engine/remoteStack.test.ts")).toBe(1);
    expect(lane("test/replay/kubeScorer.test.ts")).toBe(1);
    expect(lane("test/faults/faults.test.ts")).toBe(1);
    expect(lane("test/engine/agentStack.test.ts")).toBe(2);
    expect(lane("test/integration/deployment.test.ts")).toBe(2);
    expect(lane("test/faults/badInput.test.ts")).toBe(2);
  });

  it("gives each lane suites (a renamed suite does not empty one)", () => {
    const all = ["test/integration", "test/engine", "test/faults", "test/replay"].flatMap(suites);
    const one = all.filter(inLaneOne).length;
    expect(one).toBeGreaterThanOrEqual(10);
    expect(all.length - one).toBeGreaterThanOrEqual(10);
  });
});
