import { execFileSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import { createDeployment, deleteDeployment } from "../../../providers/deployment/core";
import { DeploymentState } from "../../../providers/deployment/types";
import { hashSource } from "../../../providers/modelSource";
import { createModelVersion } from "../../../providers/modelVersionCore";
import {
  createRemoteMlflowServer,
  deleteRemoteMlflowServer,
  RemoteMlflowServerState,
} from "../../../providers/remote/mlflowServerCore";
import { provisionHost } from "../../../providers/remote/provision";
import { DEFAULT_LAYOUT } from "../../../providers/remote/provisionScript";
import "../../support/onNetnsHost";
import { demoModel, IRIS_ROW, missingMlflow, postJson } from "../../support/env";
import { NetnsTestHost } from "../../support/netnsHost";
import { startProvisionedSshHost, snapshotProvisioning } from "../../support/provisionedHost";
import { missingSshHost } from "../../support/sshHost";

/**
 * The netns test host (test/support/netnsHost.ts), the fallback where no Docker engine starts, in every
 * run: on a provisioned snapshot, the remote MLflow server and a model server over SSH with the
 * project's own cores, scored from here through the forwarded 127.0.0.1 ports; the host's process
 * table is its own (sshd is its pid 1, no process of this machine in it); stop leaves no namespace,
 * veth, NAT or forward rule, mount, forwarder or directory behind. ssh.netns.test.ts runs the SSH
 * layer suite on it too; MODEL_SERVING_TEST_HOST=netns runs every remote suite on it.
 */
const skip = missingSshHost() ?? missingMlflow();
const describeNetns = skip ? describe.skip : describe;

describeNetns("the netns test host", () => {
  let host: NetnsTestHost;
  let mlflow: RemoteMlflowServerState | undefined;
  beforeAll(async () => {
    host = (await startProvisionedSshHost({ ports: 2, postgresql: true })) as NetnsTestHost;
    expect(host.kind).toBe("netns");
    const provisioned = await provisionHost(host.sudoUser, snapshotProvisioning(true));
    expect(provisioned.changed).toBe(false);
  }, 20 * 60_000);
  afterAll(async () => {
    if (mlflow) {
      await deleteRemoteMlflowServer(mlflow).catch(() => undefined);
    }
    await host?.stop();
  }, 120_000);

  test(
    "MLflow and a model server over SSH, scored on the forwarded loopback ports; its own process table",
    async () => {
      mlflow = await createRemoteMlflowServer({
        connection: host.sudoUser,
        layout: DEFAULT_LAYOUT,
        bindHost: "127.0.0.1",
        port: host.ports[0],
        publicHost: "127.0.0.1",
        backendStore: { kind: "sqlite" },
        startTimeoutSeconds: 180,
      });
      const source = demoModel(1.0);
      const { outs } = await createModelVersion({
        trackingUri: mlflow.trackingUri,
        name: "iris",
        source,
        sourceHash: hashSource(source),
        aliases: [],
        tags: {},
        description: "",
        registration: 1,
        experimentName: "model-serving",
        readyTimeoutSeconds: 60,
      });
      let state: DeploymentState | undefined;
      try {
        state = (
          await createDeployment({
            mode: "remote",
            modelUri: outs.modelUri,
            trackingUri: mlflow.trackingUri,
            host: "127.0.0.1",
            portRangeStart: host.ports[1],
            mlflowBin: "/opt/model-serving/venv/bin/mlflow",
            runDir: "/opt/model-serving/run",
            startTimeoutSeconds: 240,
            owner: "organization/model-serving/test/netns",
            remote: {
              connection: host.sudoUser,
              layout: DEFAULT_LAYOUT,
              publicHost: "127.0.0.1",
              hostTrackingUri: `http://127.0.0.1:${host.ports[0]}`,
            },
          })
        ).outs;
        expect(state.url).toBe(`http://127.0.0.1:${host.ports[1]}/invocations`);
        expect(await postJson(state.url, IRIS_ROW)).toEqual({
          status: 200,
          body: { predictions: [0] },
        });
        // Its own pid namespace: sshd is pid 1, the model server is there, this machine's jest is not.
        expect((await host.inspect("ps -o args= -p 1")).stdout).toMatch(
          /^sshd: \/usr\/sbin\/sshd -D /,
        );
        const ps = (await host.inspect("ps -eo args")).stdout;
        expect(ps).toContain(`models serve -m ${outs.modelUri}`);
        expect(ps).not.toMatch(/jest/);
        // Its own loopback: the servers listen on the namespace's 127.0.0.1, not on this machine's.
        const inside = (await host.inspect("ss -Hltn")).stdout;
        expect(inside).toContain(`127.0.0.1:${host.ports[1]} `);
        const here = execFileSync("ss", ["-Hltnp", `sport = :${host.ports[1]}`], {
          encoding: "utf8",
        });
        // Here, only the forwarder listens on that port.
        const pids = [...here.matchAll(/pid=(\d+)/g)].map((m) => m[1]);
        expect(pids.length).toBeGreaterThan(0);
        for (const pid of pids) {
          expect(fs.readFileSync(`/proc/${pid}/cmdline`, "utf8")).toContain("netns_forward.py");
        }
      } finally {
        if (state) {
          await deleteDeployment(state);
        }
      }
      expect((await host.inspect("pgrep -f '[m]odels serve' || true")).stdout).toBe("");
    },
    10 * 60_000,
  );

  test("stop leaves no namespace, veth, rule, mount, forwarder or directory", async () => {
    if (mlflow) {
      await deleteRemoteMlflowServer(mlflow);
      mlflow = undefined;
    }
    await host.stop();
    expect(execFileSync("ip", ["netns", "list"], { encoding: "utf8" })).not.toContain(host.name);
    expect(fs.existsSync(`/sys/class/net/${host.vethName}`)).toBe(false);
    const rules = execFileSync(
      "sh",
      ["-c", "iptables -S FORWARD; iptables -t nat -S POSTROUTING"],
      {
        encoding: "utf8",
      },
    );
    expect(rules).not.toContain(host.vethName);
    expect(fs.readFileSync("/proc/mounts", "utf8")).not.toContain(host.rootDir);
    expect(fs.existsSync(host.rootDir)).toBe(false);
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect(host.sshPort, "127.0.0.1");
      s.on("connect", () => (s.destroy(), resolve(false)));
      s.on("error", () => resolve(true));
    });
    expect(refused).toBe(true);
  });
});
