import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { repoRoot, skipReason, tempDir } from "../support/env";

// The scripts keep what belongs to this machine (the passphrase's encryptionsalt, secrets) out of the
// committed Pulumi.dev.yaml: the real Pulumi CLI, through scripts/pulumi.sh and env.sh's prepare_stack,
// in a temp copy of the project with its own cache, backend and passphrase.
function cliMissing(): string | undefined {
  const found = spawnSync("bash", ["-c", "source scripts/env.sh && command -v pulumi"], {
    cwd: repoRoot,
    encoding: "utf8",
  });
  return found.status === 0 && found.stdout.trim() !== ""
    ? undefined
    : "no Pulumi CLI (scripts/env.sh finds none): run `npm run bootstrap` first";
}
const skip = skipReason(cliMissing());
const describeCli = skip ? describe.skip : describe;

describeCli("the machine's stack settings live outside the repo", () => {
  const root = tempDir("stack-settings");
  const repo = path.join(root, "repo");
  const cache = path.join(root, "cache");
  const machineFile = path.join(cache, "stacks", "Pulumi.dev.yaml");
  const committedFile = path.join(repo, "Pulumi.dev.yaml");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    MODEL_SERVING_CACHE: cache,
    PULUMI_BACKEND_URL: `file://${path.join(cache, "state")}`,
    PULUMI_CONFIG_PASSPHRASE: "test-passphrase",
    PULUMI_HOME: path.join(cache, "pulumi-home"),
  };
  delete env.PULUMI_CONFIG_PASSPHRASE_FILE;
  delete env.MODEL_SERVING_VENV;
  const run = (script: string, ...args: string[]) =>
    execFileSync("bash", [script, ...args], { cwd: repo, env, encoding: "utf8", stdio: "pipe" });
  const prepare = () =>
    execFileSync("bash", ["-c", "source scripts/env.sh && prepare_stack dev"], {
      cwd: repo,
      env,
      encoding: "utf8",
      stdio: "pipe",
    }).trim();

  beforeAll(() => {
    fs.mkdirSync(path.join(repo, "scripts"), { recursive: true });
    fs.mkdirSync(path.join(cache, "state"), { recursive: true });
    for (const f of ["Pulumi.yaml", "Pulumi.dev.yaml"]) {
      fs.copyFileSync(path.join(repoRoot, f), path.join(repo, f));
    }
    for (const f of ["env.sh", "pulumi.sh", "stack-config.js"]) {
      fs.copyFileSync(path.join(repoRoot, "scripts", f), path.join(repo, "scripts", f));
    }
    fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(repo, "node_modules"));
    fs.symlinkSync(path.join(repoRoot, "tools"), path.join(repo, "tools"));
  });

  it("creates the stack with its salt in the machine's copy; the committed file stays as it was", () => {
    const original = fs.readFileSync(committedFile, "utf8");
    expect(prepare()).toBe(machineFile);
    expect(fs.readFileSync(committedFile, "utf8")).toBe(original);
    const machine = fs.readFileSync(machineFile, "utf8");
    expect(machine).toMatch(/^encryptionsalt: v1:\S+$/m);
    expect(original).not.toContain("encryptionsalt");
    // The copy carries the committed settings.
    expect(machine).toContain("description: Demo logistic regression on the iris data set");
    expect(fs.readdirSync(repo).sort()).toEqual(
      ["Pulumi.dev.yaml", "Pulumi.yaml", "node_modules", "scripts", "tools"].sort(),
    );
  }, 120_000);

  it("`npm run pulumi -- config set --secret` writes the machine's copy, encrypted", () => {
    const original = fs.readFileSync(committedFile, "utf8");
    run("scripts/pulumi.sh", "config", "set", "--secret", "mlflowPassword", "s3cret-pw-123");
    expect(run("scripts/pulumi.sh", "config", "get", "mlflowPassword").trim()).toBe(
      "s3cret-pw-123",
    );
    expect(fs.readFileSync(committedFile, "utf8")).toBe(original);
    const machine = fs.readFileSync(machineFile, "utf8");
    expect(machine).toMatch(/model-serving:mlflowPassword:\n\s+secure: v1:/);
    expect(machine).not.toContain("s3cret-pw-123");
  }, 120_000);

  it("follows a change of the committed file, keeping the salt and the secret", () => {
    const salt = /^encryptionsalt: (\S+)$/m.exec(fs.readFileSync(machineFile, "utf8"))![1];
    fs.writeFileSync(
      committedFile,
      fs
        .readFileSync(committedFile, "utf8")
        .replace("Demo logistic regression on the iris data set", "A changed description"),
    );
    const models = JSON.parse(run("scripts/pulumi.sh", "config", "get", "models", "--json"));
    expect(JSON.parse(models.value)[0].description).toBe("A changed description");
    const machine = fs.readFileSync(machineFile, "utf8");
    expect(machine).toContain(`encryptionsalt: ${salt}`);
    expect(run("scripts/pulumi.sh", "config", "get", "mlflowPassword").trim()).toBe(
      "s3cret-pw-123",
    );
    expect(fs.readFileSync(committedFile, "utf8")).not.toContain("encryptionsalt");
  }, 120_000);
});
