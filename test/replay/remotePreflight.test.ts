/* eslint-disable @typescript-eslint/no-explicit-any -- recorded inputs are untyped JSON */
/**
 * The MLflow host's preflight (components/hostPreflight.ts), a `@pulumi/command` `remote.Command`: the
 * MlflowServer (mode remote) is declared under mocks against the SSH test host, its recorded Command
 * inputs (connection, create) are performed for real over SSH (test/replay/remoteCommandReplay.ts) on
 * one test host shared by every case: root and a sudo user pass; a user without sudo, a port taken by
 * another user, and a profile whose OS this host is not each fail with their message, all at once.
 */
import * as pulumi from "@pulumi/pulumi";
import { mockRecorder } from "../support/mockRecorder";
import { missingSshHost, startSshHost, type SshTestHost } from "../support/sshHost";
import { replayCreate } from "./remoteCommandReplay";

jest.mock("../../providers/hostProvisioning", () =>
  jest.requireActual("../support/dynamicStandIns").hostProvisioningModule(),
);
jest.mock("../../providers/remoteMlflowServer", () =>
  jest.requireActual("../support/dynamicStandIns").remoteMlflowServerModule(),
);

const { record, settle, one } = mockRecorder();
pulumi.runtime.setMocks(
  {
    newResource(args) {
      record(args);
      const state: Record<string, any> = { ...args.inputs };
      if (args.type.endsWith(":HostProvisioning")) {
        state.hash = "h1";
      }
      return { id: `${args.name}-id`, state };
    },
    call: (args) => args.inputs,
  },
  "model-serving",
  "replay-preflight",
  false,
);

import { MlflowServer } from "../../components/mlflowServer";

const why = missingSshHost();
const describeReal = why ? describe.skip : describe;
const PORT = 5000;

describeReal("the preflight remote.Command, replayed over SSH on the test host", () => {
  let host: SshTestHost;
  /** The recorded preflight of an MlflowServer for `user` (its key) and `profile`. */
  async function recorded(name: string, user: string, privateKey: string, profile = "default") {
    new MlflowServer(name, {
      mode: "remote",
      port: PORT,
      remote: {
        host: host.address,
        sshPort: host.sshPort,
        user,
        hostKey: host.hostKey,
        privateKey,
        profile,
      },
    });
    await settle();
    return one(name, "command:remote:Command").inputs;
  }

  beforeAll(async () => {
    host = await startSshHost();
    // A user who can log in (the sudo user's key) but has no sudo.
    const made = await host.inspect(
      [
        "set -e",
        "useradd --create-home --shell /bin/bash nosudo",
        "install -d -m 0700 -o nosudo -g nosudo /home/nosudo/.ssh",
        "install -m 0600 -o nosudo -g nosudo /home/deploy/.ssh/authorized_keys /home/nosudo/.ssh/",
      ].join("\n"),
    );
    expect(made).toMatchObject({ code: 0 });
  }, 10 * 60_000);

  afterAll(async () => {
    await host?.stop();
  }, 120_000);

  test("records the command with the host key pinned and the connection secret", async () => {
    const inputs = await recorded("pf-root", "root", host.root.privateKey);
    expect(inputs.connection["4dabf18193072939515e22adb298388d"]).toBeDefined();
    expect(inputs.connection.value).toMatchObject({
      host: "127.0.0.1",
      port: host.sshPort,
      user: "root",
      hostKey: host.hostKey.split(" ").slice(0, 2).join(" "),
    });
  });

  test("root on a fresh host: ok, everything it checked on the last line", async () => {
    const result = await replayCreate(one("pf-root", "command:remote:Command").inputs);
    expect(result.failure).toBeUndefined();
    expect(result.stdout.trim().split("\n").pop()).toMatch(
      /^preflight: ok: debian:12, root, python 3\.11\.\d+, port 5000 free$/,
    );
  });

  test("a sudo user: ok", async () => {
    const result = await replayCreate(
      await recorded("pf-sudo", "deploy", host.sudoUser.privateKey),
    );
    expect(result.failure).toBeUndefined();
    expect(result.stdout).toContain("preflight: ok: debian:12, deploy with passwordless sudo,");
  });

  test("a user without sudo and a port taken by root: both reasons, exit 1, before anything is installed", async () => {
    const listen = await host.inspect(
      `setsid nohup python3 -m http.server ${PORT} --bind 127.0.0.1 >/dev/null 2>&1 & sleep 1; echo started`,
    );
    expect(listen.code).toBe(0);
    try {
      const result = await replayCreate(
        await recorded("pf-nosudo", "nosudo", host.sudoUser.privateKey),
      );
      expect(result.code).toBe(1);
      expect(result.failure).toBe(
        [
          "Process exited with status 1: preflight: user nosudo is not root and has no passwordless sudo (sudo -n true failed); add 'nosudo ALL=(ALL) NOPASSWD:ALL' to /etc/sudoers.d/nosudo",
          "preflight: port 5000 (MLflow, mlflow.port) is in use on the host by root; stop what listens there or choose another mlflow.port",
        ].join("\n"),
      );
      // Nothing was installed or created by it.
      expect(
        (await host.inspect("! id -u mlflow 2>/dev/null && ! test -e /opt/model-serving")).code,
      ).toBe(0);
    } finally {
      await host.inspect(`pkill -f 'http.server ${PORT}' || true`);
    }
  });

  test("the port held by the service user (an earlier up's MLflow) is fine", async () => {
    await host.inspect(
      `useradd --system --user-group --shell /usr/sbin/nologin mlflow && setsid nohup runuser -u mlflow -- python3 -m http.server ${PORT} --bind 0.0.0.0 >/dev/null 2>&1 & sleep 1`,
    );
    try {
      const result = await replayCreate(one("pf-root", "command:remote:Command").inputs);
      expect(result.failure).toBeUndefined();
      expect(result.stdout).toContain(
        "port 5000 held by mlflow (the MLflow server of an earlier up)",
      );
    } finally {
      await host.inspect(`pkill -f 'http.server ${PORT}' || true; userdel mlflow || true`);
    }
  });

  test("a profile for another OS is refused with the OS it needs", async () => {
    const result = await replayCreate(
      await recorded("pf-compat", "root", host.root.privateKey, "sparkflows-compat"),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      "preflight: profile sparkflows-compat supports ubuntu:18.04; this host is debian:12",
    );
  });
});
