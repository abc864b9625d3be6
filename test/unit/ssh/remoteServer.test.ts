import { execFileSync } from "child_process";
import {
  healthProbeScript,
  postgresSetupScript,
  remoteServerId,
  startScript,
  stopScript,
  supervisorRunningScript,
  trackingUriOf,
} from "../../../providers/remote/mlflowServerCore";
import {
  backendStoreUri,
  RemoteServerSpec,
  serverArgv,
  supervisorScript,
  systemdUnit,
} from "../../../providers/remote/mlflowServerUnits";
import { DEFAULT_LAYOUT } from "../../../providers/remote/provisionScript";

const spec: RemoteServerSpec = {
  layout: DEFAULT_LAYOUT,
  bindHost: "0.0.0.0",
  port: 5000,
  publicHost: "mlflow.example.com",
  backendStore: { kind: "sqlite" },
};
const pg: RemoteServerSpec = {
  ...spec,
  backendStore: { kind: "postgresql-local", database: "mlflow" },
};

describe("the remote MLflow server's pieces", () => {
  test("the mlflow server command line: data dir stores, served artifacts, the public host allowed", () => {
    expect(serverArgv(spec)).toEqual([
      "/opt/model-serving/venv/bin/mlflow",
      "server",
      "--host",
      "0.0.0.0",
      "--port",
      "5000",
      "--backend-store-uri",
      "sqlite:////var/lib/model-serving/mlflow/mlflow.db",
      "--artifacts-destination",
      "/var/lib/model-serving/mlflow/artifacts",
      "--serve-artifacts",
      "--workers",
      "1",
      "--allowed-hosts",
      "mlflow.example.com,mlflow.example.com:5000,localhost,localhost:5000,127.0.0.1,127.0.0.1:5000",
    ]);
  });

  test("PostgreSQL on the host is reached by peer auth over its socket, with the psycopg2 driver named", () => {
    expect(backendStoreUri(pg)).toBe(
      "postgresql+psycopg2://mlflow@/mlflow?host=/var/run/postgresql",
    );
    expect(serverArgv(pg).join(" ")).not.toMatch(/password/i);
  });

  test("the systemd unit runs it as the service user and restarts it", () => {
    const unit = systemdUnit(spec);
    expect(unit.split("\n")).toEqual(
      expect.arrayContaining([
        "User=mlflow",
        "Group=mlflow",
        "WorkingDirectory=/var/lib/model-serving/mlflow",
        "EnvironmentFile=-/opt/model-serving/profile.env",
        `ExecStart=${serverArgv(spec).join(" ")}`,
        "Environment=MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false",
        "Restart=always",
        "RestartSec=2",
        "KillMode=control-group",
        "WantedBy=multi-user.target",
      ]),
    );
  });

  test("every script is valid sh, for both supervisors and both stores", () => {
    const scripts = [supervisorScript(spec), healthProbeScript(5000)];
    for (const s of [spec, pg]) {
      for (const sup of ["systemd", "process"] as const) {
        scripts.push(startScript(s, sup), stopScript(s, sup), supervisorRunningScript(s, sup));
        scripts.push(postgresSetupScript(s, sup));
      }
    }
    for (const script of scripts) {
      expect(() => execFileSync("sh", ["-n"], { input: script })).not.toThrow();
    }
  });

  test("the restart loop: pidfile first, restarts after exit, TERM stops the server and removes the pidfiles", () => {
    const script = supervisorScript(spec);
    expect(script.split("\n").slice(2, 4)).toEqual([
      "echo $$ > /opt/model-serving/run/mlflow-supervisor.pid",
      "if [ -s /opt/model-serving/profile.env ]; then set -a; . /opt/model-serving/profile.env; set +a; fi",
    ]);
    expect(script).toContain(
      `trap 'kill -TERM -"$child" 2>/dev/null; wait "$child" 2>/dev/null; kill -KILL -"$child" 2>/dev/null; rm -f /opt/model-serving/run/mlflow-supervisor.pid /opt/model-serving/run/mlflow-server.pid; exit 0' TERM INT`,
    );
    // Each server runs in a group of its own, killed whole when it exits (no orphaned worker keeps the port).
    expect(script).toContain(
      `  setsid env MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false ${serverArgv(spec).join(" ")} &\n  child=$!\n`,
    );
    expect(script).toContain(
      '  wait "$child"\n  code=$?\n  kill -KILL -"$child" 2>/dev/null\n  echo "supervisor: mlflow server exited ($code); restarting in 2 s"\n  sleep 2\ndone',
    );
  });

  test("ids and URIs", () => {
    expect(remoteServerId(spec)).toBe("mlflow.example.com:5000");
    expect(trackingUriOf(spec)).toBe("http://mlflow.example.com:5000");
    expect(trackingUriOf({ publicHost: "fd00::1", port: 5000 })).toBe("http://[fd00::1]:5000");
  });

  test("PostgreSQL setup only for a store on the host; it creates role and database when missing", () => {
    expect(postgresSetupScript(spec, "process")).toBe("");
    const script = postgresSetupScript(pg, "process");
    expect(script).toContain("runuser -u postgres -- createuser mlflow");
    expect(script).toContain("runuser -u postgres -- createdb -O mlflow mlflow");
    expect(postgresSetupScript(pg, "systemd")).toContain("systemctl enable --now postgresql");
  });
});
