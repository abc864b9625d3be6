import {
  createRemoteMlflowServer,
  deleteRemoteMlflowServer,
  readRemoteMlflowServer,
  remoteServerHealth,
  RemoteMlflowServerArgs,
  RemoteMlflowServerState,
} from "../../../providers/remote/mlflowServerCore";
import { provisionHost } from "../../../providers/remote/provision";
import { DEFAULT_LAYOUT } from "../../../providers/remote/provisionScript";
import { startProvisionedSshHost, snapshotProvisioning } from "../../support/provisionedHost";
import { missingSshHost, SshTestHost } from "../../support/sshHost";

/**
 * The remote MLflow server on the test host (no systemd there: the supervised process), as the sudo
 * user: SQLite and PostgreSQL (installed by the profile) backend stores, adoption, the restart loop,
 * a dead server read as gone and healed by the next create, delete keeping the data.
 */
const skip = missingSshHost();
const describeSsh = skip ? describe.skip : describe;

async function mlflowPost(
  trackingUri: string,
  route: string,
  body: object,
): Promise<Record<string, unknown>> {
  const res = await fetch(`${trackingUri}/api/2.0/mlflow/${route}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) {
    throw new Error(`${route}: ${res.status} ${JSON.stringify(json)}`);
  }
  return json;
}

async function experimentNamed(trackingUri: string, name: string): Promise<string | undefined> {
  const res = await fetch(
    `${trackingUri}/api/2.0/mlflow/experiments/get-by-name?experiment_name=${name}`,
  );
  return res.ok
    ? ((await res.json()) as { experiment: { experiment_id: string } }).experiment.experiment_id
    : undefined;
}

describeSsh("the remote MLflow server on the test host", () => {
  let host: SshTestHost;
  const states: RemoteMlflowServerState[] = [];
  beforeAll(async () => {
    // A provisioned snapshot: this suite tests the host's services, provision.test.ts the provisioning.
    host = await startProvisionedSshHost({ ports: 2, postgresql: true });
    const started = Date.now();
    const provisioned = await provisionHost(host.sudoUser, snapshotProvisioning(true));
    expect(provisioned.changed).toBe(false);
    process.stderr.write(`provisioning checked (up to date) in ${Date.now() - started} ms\n`);
  }, 20 * 60_000);
  afterAll(async () => {
    for (const s of states) {
      await deleteRemoteMlflowServer(s).catch(() => undefined);
    }
    await host?.stop();
  }, 120_000);

  const argsFor = (
    port: number,
    backendStore: RemoteMlflowServerArgs["backendStore"],
  ): RemoteMlflowServerArgs => ({
    connection: host.sudoUser,
    layout: DEFAULT_LAYOUT,
    bindHost: "0.0.0.0",
    port,
    publicHost: "127.0.0.1",
    backendStore,
    startTimeoutSeconds: 120,
  });

  const serverPids = async () =>
    (await host.inspect("pgrep -f '[m]lflow server' | sort | tr '\\n' ' '")).stdout.trim();

  test(
    "SQLite: starts supervised, is adopted, restarts itself, is read as gone when dead, delete keeps the data",
    async () => {
      const args = argsFor(host.ports[0], { kind: "sqlite" });
      const lines: string[] = [];
      let t = Date.now();
      const state = await createRemoteMlflowServer(args, (m) => lines.push(m));
      process.stderr.write(`remote MLflow (SQLite) started in ${Date.now() - t} ms\n`);
      states.push(state);
      expect(state.supervisor).toBe("process");
      expect(state.trackingUri).toBe(`http://127.0.0.1:${host.ports[0]}`);
      expect(lines[0]).toBe(
        `MLflow server on deploy@127.0.0.1:${host.sshPort}: supervised process (no systemd)`,
      );
      const experimentId = (
        await mlflowPost(state.trackingUri, "experiments/create", { name: "kept" })
      ).experiment_id;
      expect(await remoteServerHealth(state)).toBe("serving");

      // The server runs as the service user with no secret on its command line.
      const ps = await host.inspect("ps -eo user:20,args | grep '[m]lflow server' | head -1");
      expect(ps.stdout).toMatch(
        /^mlflow\s+.*--backend-store-uri sqlite:\/\/\/\/var\/lib\/model-serving\/mlflow\/mlflow\.db/,
      );

      // A second create adopts it: the same loop and the same server process.
      const pids = () =>
        host.inspect(
          "cat /opt/model-serving/run/mlflow-supervisor.pid /opt/model-serving/run/mlflow-server.pid",
        );
      const before = (await pids()).stdout;
      await createRemoteMlflowServer(args);
      expect((await pids()).stdout).toBe(before);

      // The restart loop brings a killed server back (a new server process, serving again).
      await host.inspect("kill -KILL $(cat /opt/model-serving/run/mlflow-server.pid)");
      t = Date.now();
      let health = await remoteServerHealth(state);
      let now = (await pids()).stdout;
      while ((now === before || health !== "serving") && Date.now() - t < 120_000) {
        await new Promise((r) => setTimeout(r, 1000));
        now = (await pids()).stdout;
        health = await remoteServerHealth(state);
      }
      expect(health).toBe("serving");
      expect(now.split("\n")[0]).toBe(before.split("\n")[0]); // the same loop
      expect(now).not.toBe(before); // a new server
      process.stderr.write(`restarted by the loop in ${Date.now() - t} ms\n`);

      // The whole supervisor dead (a reboot, an OOM kill): read reports it gone; create heals it.
      await host.inspect(
        "kill -KILL -$(ps -o pgid= -p $(cat /opt/model-serving/run/mlflow-supervisor.pid) | tr -d ' ')",
      );
      await new Promise((r) => setTimeout(r, 500));
      expect(await readRemoteMlflowServer(state)).toBeUndefined();
      await createRemoteMlflowServer(args);
      expect(await experimentNamed(state.trackingUri, "kept")).toBe(experimentId);

      // delete: no process, no listener, the data stays; the next create finds it again.
      await deleteRemoteMlflowServer(state);
      expect(await serverPids()).toBe("");
      expect((await host.inspect(`ss -Hltn 'sport = :${args.port}'`)).stdout).toBe("");
      expect((await host.inspect("ls /var/lib/model-serving/mlflow")).stdout).toBe(
        "artifacts\nmlflow.db\n",
      );
      expect(await remoteServerHealth(state)).toBe("gone");
      await createRemoteMlflowServer(args);
      expect(await experimentNamed(state.trackingUri, "kept")).toBe(experimentId);
      await deleteRemoteMlflowServer(state);
    },
    10 * 60_000,
  );

  test(
    "PostgreSQL on the host (peer authentication, no password anywhere): the store survives delete",
    async () => {
      const args = argsFor(host.ports[1], { kind: "postgresql-local", database: "mlflow" });
      const t = Date.now();
      const state = await createRemoteMlflowServer(args);
      process.stderr.write(`remote MLflow (PostgreSQL) started in ${Date.now() - t} ms\n`);
      states.push(state);
      await mlflowPost(state.trackingUri, "experiments/create", { name: "in-postgres" });
      const query =
        "runuser -u postgres -- psql -XtA -d mlflow -c \"SELECT name FROM experiments WHERE name = 'in-postgres'\"";
      expect((await host.inspect(query)).stdout).toBe("in-postgres\n");
      await deleteRemoteMlflowServer(state);
      expect((await host.inspect(`ss -Hltn 'sport = :${args.port}'`)).stdout).toBe("");
      expect((await host.inspect(query)).stdout).toBe("in-postgres\n");
    },
    10 * 60_000,
  );

  test(
    "an existing PostgreSQL by DSN: the password only in the service user's 0600 pgpass file",
    async () => {
      const password = "Dsn-Pa55:word\\x";
      const sql = (q: string) => `runuser -u postgres -- psql -XtAc "${q}"`;
      await host.inspect(
        [
          sql(`CREATE ROLE dsnuser LOGIN PASSWORD 'Dsn-Pa55:word\\x'`),
          sql("CREATE DATABASE dsndb OWNER dsnuser"),
        ].join(" && "),
      );
      const dsn = `postgresql://dsnuser:${encodeURIComponent(password)}@127.0.0.1:5432/dsndb`;
      const args = argsFor(host.ports[1], { kind: "postgresql-dsn", dsn });
      const state = await createRemoteMlflowServer(args);
      states.push(state);
      await mlflowPost(state.trackingUri, "experiments/create", { name: "by-dsn" });
      const query =
        "runuser -u postgres -- psql -XtA -d dsndb -c \"SELECT name FROM experiments WHERE name = 'by-dsn'\"";
      expect((await host.inspect(query)).stdout).toBe("by-dsn\n");
      // The store URI on the command line has no password; no environment or command line has it.
      const ps = await host.inspect("ps -eo args | grep '[m]lflow server' | head -1");
      expect(ps.stdout).toContain(
        "--backend-store-uri postgresql+psycopg2://dsnuser@127.0.0.1:5432/dsndb",
      );
      // Scanned as the service user: root in the test host lacks CAP_SYS_PTRACE and reads no other
      // user's environ. The server's own PGPASSFILE shows the scan does read the server's environment.
      const scan = (pattern: string) =>
        host.inspect(
          `runuser -u mlflow -- sh -c "cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | tr '\\\\0' '\\\\n' | grep -c '${pattern}' || true"`,
        );
      expect(Number((await scan("^PGPASSFILE=")).stdout.trim())).toBeGreaterThanOrEqual(1);
      expect((await scan("[D]sn-Pa55")).stdout.trim()).toBe("0");
      expect((await host.inspect("stat -c '%a %U' /opt/model-serving/pgpass")).stdout).toBe(
        "600 mlflow\n",
      );
      await deleteRemoteMlflowServer(state);
      expect((await host.inspect(query)).stdout).toBe("by-dsn\n");
    },
    10 * 60_000,
  );

  test(
    "a server that cannot start is an error with the host's last log lines, and is stopped",
    async () => {
      // A layout whose venv was never provisioned: the loop starts, `mlflow` is not found.
      const layout = { ...DEFAULT_LAYOUT, baseDir: "/opt/ms-unprovisioned" };
      await host.inspect("install -d -m 0755 /opt/ms-unprovisioned");
      const args = {
        ...argsFor(host.ports[0], { kind: "sqlite" as const }),
        layout,
        startTimeoutSeconds: 10,
      };
      await expect(createRemoteMlflowServer(args)).rejects.toThrow(
        new RegExp(
          `^MLflow server on deploy@127\\.0\\.0\\.1:${host.sshPort} did not answer /health on port ${args.port} within 10 s \\(last status 000\\); last log lines:\\n[\\s\\S]*/opt/ms-unprovisioned/venv/bin/mlflow': No such file or directory`,
        ),
      );
      expect(
        (await host.inspect("pgrep -f [/]opt/ms-unprovisioned/mlflow-supervise.sh || true")).stdout,
      ).toBe("");
    },
    5 * 60_000,
  );
});
