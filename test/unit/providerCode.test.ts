import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as path from "path";
import { providerCode, withProviderKept } from "../../providers/providerCode";
import { repoRoot, tempDir } from "../support/env";

// The dynamic providers' serialized methods (stored in the state, inputs and outputs of every resource)
// load their core from the installed package @model-serving/code instead of carrying a copy of it.
// Needs that package built (`npm run bootstrap`, which `npm test` runs first).
const build = require("../../scripts/provider-code.js") as {
  PACKAGE: string;
  ENTRIES: string[];
  problem(root?: string): string | undefined;
  build(root?: string): string;
  sourceKey(root?: string): string;
  packageDir(root?: string): string;
};
const requireFromString = require("require-from-string") as (code: string) => {
  handler(): pulumi.dynamic.ResourceProvider;
};

const serialized: Record<string, string> = {};
pulumi.runtime.setMocks(
  {
    newResource(args) {
      if (typeof args.inputs.__provider === "string") {
        serialized[args.type.split(":").pop()!] = args.inputs.__provider;
      }
      return { id: `${args.name}-id`, state: args.inputs };
    },
    call: (args) => args.inputs,
  },
  "project",
  "stack",
  false,
  "organization",
);

beforeAll(async () => {
  const { ModelVersion } = await import("../../providers/modelVersion");
  const { ModelDeployment } = await import("../../providers/modelDeployment");
  const { LocalMlflowServer } = await import("../../providers/localMlflowServer");
  const { ScoreWorkflowResource } = await import("../../providers/scoreWorkflow");
  new ModelVersion("v", {
    trackingUri: "http://127.0.0.1:5000",
    name: "m",
    source: "/tmp",
    sourceHash: "sha256:1",
    aliases: [],
    tags: {},
    description: "",
    registration: 1,
    experimentName: "e",
    readyTimeoutSeconds: 1,
  });
  new ModelDeployment("d", {
    mode: "local",
    modelUri: "models:/m/1",
    trackingUri: "http://127.0.0.1:5000",
    host: "127.0.0.1",
    portRangeStart: 5001,
    mlflowBin: "/bin/true",
    runDir: "/tmp",
    startTimeoutSeconds: 1,
  });
  new LocalMlflowServer("s", {
    mlflowBin: "/bin/true",
    host: "127.0.0.1",
    port: 5000,
    dataDir: "/tmp",
    startTimeoutSeconds: 1,
  });
  new ScoreWorkflowResource("w", {
    agentUrl: "http://127.0.0.1:5100",
    token: "unit-agent-token-1234567890",
    workflowId: "w",
    modelUri: "models:/m/1",
    input: "/in.csv",
    inputFormat: "csv",
    output: "/out.csv",
    outputFormat: "csv",
    batchSize: 1,
    maxConcurrentRuns: 1,
    timeoutSeconds: 1,
    executeOnUp: true,
  });
  for (let i = 0; i < 600 && Object.keys(serialized).length < 4; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
}, 60_000);

describe("serialized dynamic providers", () => {
  test.each(["ModelVersion", "ModelDeployment", "LocalMlflowServer", "ScoreWorkflow"])(
    "%s carries a few KB that name the installed core, not a copy of the core",
    (type) => {
      const text = serialized[type];
      expect(text).toBeDefined();
      // Was 37-45 KB each when the serializer inlined the cores and everything they import.
      expect(text.length).toBeLessThan(5000);
      expect(text).toContain("@model-serving/code/");
      for (const inlined of ["createMlflowClient", "axios", "reservePort", "diffByKeys"]) {
        expect(text).not.toContain(inlined);
      }
    },
  );

  test("the serialized ModelVersion provider runs the built core, as the provider process does", async () => {
    expect(build.problem()).toBeUndefined();
    // The dynamic-provider process evaluates the text with require-from-string in the project folder.
    expect(process.cwd()).toBe(repoRoot);
    const provider = requireFromString(serialized.ModelVersion).handler();
    const olds = { name: "m", trackingUri: "http://x", sourceHash: "sha256:1", registration: 1 };
    await expect(provider.diff!("m/1", olds, { ...olds, sourceHash: "sha256:2" })).resolves.toEqual(
      expect.objectContaining({ changes: true, replaces: ["sourceHash"] }),
    );
    await expect(provider.diff!("m/1", olds, { ...olds })).resolves.toEqual(
      expect.objectContaining({ changes: false }),
    );
  });

  test("the serialized ScoreWorkflow provider runs the built core: diff and check", async () => {
    const provider = requireFromString(serialized.ScoreWorkflow).handler();
    const olds = {
      workflowId: "w",
      agentUrl: "http://a:5100",
      token: "t",
      modelUri: "models:/m/1",
      executeOnUp: true,
      executedFor: "",
    };
    await expect(
      provider.diff!("w", olds, { ...olds, agentUrl: "http://b:5100" }),
    ).resolves.toEqual(expect.objectContaining({ changes: true, replaces: [] }));
    await expect(provider.diff!("w", olds, { ...olds, workflowId: "v" })).resolves.toEqual(
      expect.objectContaining({ replaces: ["workflowId"] }),
    );
    await expect(provider.check!(olds, { ...olds, batchSize: 0 })).resolves.toEqual(
      expect.objectContaining({
        failures: [
          {
            property: "batchSize",
            reason: "batchSize: must be a whole number from 1 to 1000000 (got 0)",
          },
        ],
      }),
    );
  });
});

describe("the provider code package", () => {
  test("a missing core names the package and what to run", () => {
    expect(() => providerCode("providers/notACore")).toThrow(
      `model-serving's provider code @model-serving/code/providers/notACore is not installed under ` +
        `${process.cwd()}/node_modules: run \`npm run bootstrap\` in the project (it builds the ` +
        "package from providers/) and retry",
    );
  });

  test("every core the providers load is an entry of the package", () => {
    const named = new Set<string>();
    const wrappers = fs
      .readdirSync(path.join(repoRoot, "providers"))
      .filter((f) => f.endsWith(".ts"));
    for (const file of wrappers) {
      const text = fs.readFileSync(path.join(repoRoot, "providers", file), "utf8");
      for (const [, core] of text.matchAll(/providerCode<Core>\("([^"]+)"\)/g)) {
        named.add(core);
      }
    }
    expect([...named].sort()).toEqual([...build.ENTRIES].sort());
  });

  test("a build is current until a source changes; missing and stale builds are refused", () => {
    const root = tempDir("provider-code");
    for (const rel of [
      "providers",
      "config/modelSource.ts",
      "config/serverEnv.ts",
      "scripts/provider-code.js",
    ]) {
      fs.cpSync(path.join(repoRoot, rel), path.join(root, rel), { recursive: true });
    }
    fs.mkdirSync(path.join(root, "node_modules"));
    fs.symlinkSync(
      path.join(repoRoot, "node_modules", "typescript"),
      path.join(root, "node_modules", "typescript"),
    );
    const fix = "run `npm run bootstrap` (or `node scripts/provider-code.js`)";
    const dir = build.packageDir(root);
    expect(build.problem(root)).toBe(
      `the providers' code is not built (${dir} is missing): ${fix}`,
    );
    const key = build.build(root);
    expect(build.problem(root)).toBeUndefined();
    expect(fs.existsSync(path.join(dir, "providers", "modelVersionCore.js"))).toBe(true);
    fs.appendFileSync(path.join(root, "providers", "diffKeys.ts"), "\n// changed\n");
    expect(build.problem(root)).toBe(
      `the providers' code in ${dir} is stale (built from sources ${key}, the checkout has ` +
        `${build.sourceKey(root)}): ${fix}`,
    );
    fs.rmSync(root, { recursive: true, force: true });
  });

  test("a core that imports from outside the package fails the build, naming the import", () => {
    const root = tempDir("provider-code-leak");
    for (const rel of [
      "providers",
      "config/modelSource.ts",
      "config/serverEnv.ts",
      "scripts/provider-code.js",
    ]) {
      fs.cpSync(path.join(repoRoot, rel), path.join(root, rel), { recursive: true });
    }
    fs.mkdirSync(path.join(root, "node_modules"));
    fs.symlinkSync(
      path.join(repoRoot, "node_modules", "typescript"),
      path.join(root, "node_modules", "typescript"),
    );
    fs.appendFileSync(
      path.join(root, "providers", "diffKeys.ts"),
      '\nimport { loadStackConfig } from "../config/load";\nexport const x = loadStackConfig;\n',
    );
    expect(() => build.build(root)).toThrow(
      `providers/diffKeys.ts imports "../config/load", which is not part of ${build.PACKAGE} ` +
        "(providers,config/modelSource.ts,config/serverEnv.ts)",
    );
    fs.rmSync(root, { recursive: true, force: true });
  });
});

describe("withProviderKept", () => {
  test("a partial state gets the inputs' serialized provider; other errors are left as they are", () => {
    const inputs = { __provider: "exports.handler = ...", name: "x" };
    const partial = Object.assign(new Error("run failed"), {
      id: "wf",
      properties: { name: "x", lastExecutionStatus: "failed" },
      reasons: ["run failed"],
    });
    expect(withProviderKept(partial, inputs)).toBe(partial);
    expect(partial.properties).toEqual({
      name: "x",
      lastExecutionStatus: "failed",
      __provider: "exports.handler = ...",
    });
    const plain = new Error("refused");
    expect(withProviderKept(plain, inputs)).toBe(plain);
    expect(plain).not.toHaveProperty("properties");
  });
});
