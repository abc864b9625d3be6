import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as scripts from "../../../providers/deployment/remoteScripts";
import { tempDir } from "../../support/env";

const spec: scripts.RemoteServeSpec = {
  locksDir: "/opt/model-serving/run/model-servers",
  serviceUser: "mlflow",
  mlflowBin: "/opt/model-serving/venv/bin/mlflow",
  trackingUri: "http://127.0.0.1:5000",
  modelUri: "models:/iris/1",
  bindHost: "0.0.0.0",
  owner: "org/project/stack/iris",
};

describe("deploy mode remote: the scripts it runs on the host", () => {
  test("the serve command", () => {
    expect(scripts.serveArgv(spec, 5001)).toEqual([
      "/opt/model-serving/venv/bin/mlflow",
      "models",
      "serve",
      "-m",
      "models:/iris/1",
      "--env-manager",
      "local",
      "-h",
      "0.0.0.0",
      "-p",
      "5001",
    ]);
  });

  test("every script is valid sh", () => {
    for (const s of [
      scripts.reservePortScript(spec, 5001),
      scripts.reservePortScript(spec, 5001, 5003),
      scripts.startScript(spec, 5001),
      scripts.identityScript(123, "456", spec.modelUri),
      scripts.pingScript(5001),
      scripts.stopScript(spec, 5001, 123, true),
      scripts.stopScript(spec, 5001, 123, false),
      scripts.logTailScript(spec, 5001),
    ]) {
      expect(() => execFileSync("sh", ["-n"], { input: s })).not.toThrow();
    }
  });

  test("the start script runs the server in its own session as the service user, env not secret", () => {
    const s = scripts.startScript(spec, 5001);
    expect(s).toContain(
      "setsid -f runuser -u mlflow -- sh -c 'echo $$ > /opt/model-serving/run/model-servers/5001/pid; exec env PATH=/opt/model-serving/venv/bin:/usr/local/bin:/usr/bin:/bin MLFLOW_TRACKING_URI=http://127.0.0.1:5000 /opt/model-serving/venv/bin/mlflow models serve -m models:/iris/1 --env-manager local -h 0.0.0.0 -p 5001' >> /opt/model-serving/run/model-servers/5001/log 2>&1 < /dev/null",
    );
  });

  test("with basic auth the server's HOME holds MLflow's credentials file; a token is read from a file", () => {
    const file = scripts.startScript({ ...spec, credentials: "file" }, 5001);
    expect(file).toContain("chown -R mlflow /opt/model-serving/run/model-servers/5001/home\n");
    expect(file).toContain(
      "exec env PATH=/opt/model-serving/venv/bin:/usr/local/bin:/usr/bin:/bin HOME=/opt/model-serving/run/model-servers/5001/home MLFLOW_TRACKING_URI=",
    );
    expect(file).not.toContain("credentials.env");
    const token = scripts.startScript({ ...spec, credentials: "env" }, 5001);
    expect(token).toContain(
      "set -a; . /opt/model-serving/run/model-servers/5001/credentials.env; set +a; rm -f /opt/model-serving/run/model-servers/5001/credentials.env; exec env",
    );
    expect(token).not.toContain("HOME=");
    for (const s of [file, token]) {
      expect(() => execFileSync("sh", ["-n"], { input: s })).not.toThrow();
    }
    expect(scripts.stopScript(spec, 5001, 123, true)).toContain(
      "rm -rf /opt/model-serving/run/model-servers/5001/home\n",
    );
  });

  // The port lock logic runs for real on this machine (a temp locks dir; `ss` sees this machine's ports).
  describe("reservePortScript, for real", () => {
    const dir = tempDir("remote-locks");
    const local = { ...spec, locksDir: path.join(dir, "locks") };
    const reserve = (s: scripts.RemoteServeSpec, start: number, fixed?: number) =>
      execFileSync("sh", ["-c", scripts.reservePortScript(s, start, fixed)], {
        encoding: "utf8",
        stdio: "pipe",
      }).trim();
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    test("own unstarted locks are reused, others' kept, live pids skipped, dead pids' locks taken", () => {
      const other = { ...local, owner: "org/project/stack/other" };
      expect(reserve(local, 34900)).toBe("34900");
      expect(fs.readFileSync(path.join(local.locksDir, "34900", "owner"), "utf8")).toBe(
        local.owner,
      );
      expect(reserve(local, 34900)).toBe("34900"); // our own reservation from a create that never started
      expect(reserve(other, 34900)).toBe("34901"); // someone else's pending reservation is kept
      fs.writeFileSync(path.join(local.locksDir, "34900", "pid"), String(process.pid));
      expect(reserve(local, 34900)).toBe("34902"); // a live server: skipped, even our own
      fs.writeFileSync(path.join(local.locksDir, "34900", "pid"), "999999999");
      expect(reserve(other, 34900)).toBe("34900"); // its server is gone: the stale lock is taken over
      expect(fs.readFileSync(path.join(local.locksDir, "34900", "owner"), "utf8")).toBe(
        other.owner,
      );
    });

    test("a fixed port: reserved when free, an error naming it when a live server holds it", () => {
      expect(reserve(local, 5001, 34950)).toBe("34950");
      fs.writeFileSync(path.join(local.locksDir, "34950", "pid"), String(process.pid));
      expect(() => reserve(local, 5001, 34950)).toThrow("port 34950 is in use on this host");
    });
  });
});
