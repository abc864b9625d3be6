import * as fs from "fs";
import * as path from "path";
import {
  EngineStack,
  filesContaining,
  filesUnder,
  groupsUsing,
  whyEngineCannotRun,
} from "../support/engineStack";
import { demoModel, freePort, IRIS_ROW, postJson, repoRoot } from "../support/env";

// Secrets audit on the real engine: the MLflow password is secret config of a stack whose local MLflow
// server runs with basic auth. After preview, up, refresh, an update and destroy (all with --diff, which
// prints inputs), the password is in no file of the backend (state, backups, history), no stack output,
// no captured engine output, no server log and no server command line. exportStack() decrypts secrets,
// so the backend is read as it is on disk. Canary credentials in the engine's environment reach no
// process of any server the stack starts (/proc/<pid>/environ).
const skip = whyEngineCannotRun();
if (skip) {
  console.warn(`skipping the secrets audit: ${skip}`);
}
const describeEngine = skip ? describe.skip : describe;

const PASSWORD = "Audit-Secret-7f3e9c1b";
const needles = [
  PASSWORD,
  Buffer.from(`admin:${PASSWORD}`).toString("base64"), // a Basic auth header
  encodeURIComponent(PASSWORD).replace(/-/g, "%2D"),
];

// Canaries in the engine's environment (the Automation API runs the CLI with this process's environment;
// PULUMI_CONFIG_PASSPHRASE is the stacks' own): none may reach a server the stack starts.
const CANARIES: Record<string, string> = {
  PULUMI_ACCESS_TOKEN: "pul-canary-3b1f0e",
  AWS_SECRET_ACCESS_KEY: "aws-canary-9d2c4a",
  AWS_SESSION_TOKEN: "aws-session-canary-5e7f",
  AZURE_CLIENT_SECRET: "azure-canary-1a8b",
  ARM_CLIENT_SECRET: "arm-canary-6c0d",
  GOOGLE_OAUTH_ACCESS_TOKEN: "gcp-canary-2f9e",
  GITHUB_TOKEN: "gh-canary-7a3c",
};
const PASSPHRASE = "e2e-passphrase"; // test/support/engineStack.ts

/** pid -> environment, of every process in `pgids` (servers and all their children). */
function environments(pgids: number[]): Map<number, string> {
  const found = new Map<number, string>();
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      const pgid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
      if (pgids.includes(pgid)) {
        found.set(Number(pid), fs.readFileSync(`/proc/${pid}/environ`, "utf8"));
      }
    } catch {
      // gone
    }
  }
  return found;
}

describeEngine("secrets audit", () => {
  let engine: EngineStack;
  let modelPort: number;
  const saved: Record<string, string | undefined> = {};

  afterAll(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) {
        delete process.env[k];
      } else {
        process.env[k] = v;
      }
    }
  });

  beforeAll(async () => {
    for (const [k, v] of Object.entries(CANARIES)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
    modelPort = await freePort();
    engine = await EngineStack.create({
      prefix: "secrets",
      mlflow: { mode: "local", port: await freePort() },
      models: [
        { name: "iris", source: demoModel(1.0), aliases: ["champion"], serve: { port: modelPort } },
      ],
      password: PASSWORD,
    });
  }, 120_000);

  afterAll(async () => {
    await engine?.cleanup();
  }, 300_000);

  function expectNowhere(where: string, haystack: string) {
    for (const needle of needles) {
      expect({ where, found: haystack.includes(needle) }).toEqual({ where, found: false });
    }
  }

  function auditDisk() {
    expect(filesUnder(engine.backend).length).toBeGreaterThan(0);
    for (const needle of needles) {
      expect(filesContaining(engine.backend, needle)).toEqual([]);
    }
    const stackYaml = fs.readFileSync(
      path.join(repoRoot, `Pulumi.${engine.stackName}.yaml`),
      "utf8",
    );
    expect(stackYaml).toMatch(/mlflowPassword:\s+secure: /);
    expectNowhere("stack yaml", stackYaml);
  }

  it("keeps the MLflow password out of state, history, outputs, engine output and logs", async () => {
    const { stack } = engine;
    await stack.preview(engine.opts({ diff: true }));
    const up = await stack.up(engine.opts({ diff: true }));
    expectNowhere("up outputs", JSON.stringify(up.outputs));
    expect(await postJson(`http://127.0.0.1:${modelPort}/invocations`, IRIS_ROW)).toMatchObject({
      status: 200,
    });

    // The servers got it (basic auth works) but not on their command lines, and not in their logs.
    const servers = groupsUsing(engine.cache);
    expect(servers.length).toBeGreaterThanOrEqual(2);

    // No operator secret reaches any process of any server (MLflow server, model server, their workers).
    const envs = environments(servers);
    expect(envs.size).toBeGreaterThanOrEqual(3);
    for (const [pid, environ] of envs) {
      const names = environ.split("\0").map((kv) => kv.split("=")[0]);
      for (const [name, value] of Object.entries({
        ...CANARIES,
        PULUMI_CONFIG_PASSPHRASE: PASSPHRASE,
      })) {
        expect({ pid, name, found: environ.includes(value) || names.includes(name) }).toEqual({
          pid,
          name,
          found: false,
        });
      }
      expect({
        pid,
        pulumi: names.filter((n) => /^(PULUMI_|AWS_|AZURE_|ARM_|GOOGLE_)/.test(n)),
      }).toEqual({
        pid,
        pulumi: [],
      });
    }
    // No server holds the MLflow password in its environment: the MLflow server's is in its 0600 ini,
    // the model server fetched its model with MLflow's credentials file in a home of its own (HOME),
    // removed once it answered. The reads above looked at the right environments: the ini's path and
    // that HOME are in them.
    const all = [...envs.values()];
    expect(all.some((e) => e.includes("MLFLOW_AUTH_CONFIG_PATH="))).toBe(true);
    for (const [pid, e] of envs) {
      expect({ pid, password: e.includes(PASSWORD) }).toEqual({ pid, password: false });
    }
    const homes = all
      .map((e) => /(?:^|\0)HOME=([^\0]*)\0/.exec(e)?.[1] ?? "")
      .filter((h) => h.includes(`${path.sep}homes${path.sep}model-server-`));
    expect(homes.length).toBeGreaterThanOrEqual(1);
    for (const home of homes) {
      expect({ home, exists: fs.existsSync(home) }).toEqual({ home, exists: false });
    }
    // The canaries did reach the engine: the CLI runs with this process's environment.
    expect(process.env.PULUMI_ACCESS_TOKEN).toBe(CANARIES.PULUMI_ACCESS_TOKEN);
    for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
      try {
        const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
        expectNowhere(`command line of ${pid}`, cmd);
      } catch {
        // gone
      }
    }
    const ini = path.join(engine.dataDir, "basic_auth.ini");
    expect(fs.statSync(ini).mode & 0o777).toBe(0o600);
    const logFiles = filesUnder(engine.cache)
      .filter((f) => f.endsWith(".log"))
      .map((f) => path.join(engine.cache, f));
    expect(logFiles.length).toBeGreaterThanOrEqual(2);
    for (const f of logFiles) {
      expectNowhere(f, fs.readFileSync(f, "utf8"));
    }

    await stack.refresh(engine.opts());
    await stack.setConfig("model-serving:models", {
      value: JSON.stringify([
        {
          name: "iris",
          source: demoModel(1.0),
          aliases: ["champion", "audited"],
          serve: { port: modelPort },
        },
      ]),
    });
    await stack.preview(engine.opts({ diff: true }));
    const update = await stack.up(engine.opts({ diff: true }));
    expect(update.summary.resourceChanges).toMatchObject({ update: 1 });
    const outputs = await stack.outputs();
    expect(Object.keys(outputs).sort()).toEqual(
      expect.arrayContaining(["endpoints", "mlflowTrackingUri", "modelUris"]),
    );
    expectNowhere("stack outputs", JSON.stringify(outputs));
    auditDisk();

    await stack.destroy(engine.opts());
    auditDisk();
    expect(engine.logs.length).toBeGreaterThan(20);
    expectNowhere("engine output", engine.logs.join("\n"));
    // The audit would have caught it: the secret really went through these runs (sanity check on the
    // needle, so this test cannot pass by looking in the wrong place).
    expect(engine.logs.join("\n")).toContain("[secret]");
  }, 600_000);
});
