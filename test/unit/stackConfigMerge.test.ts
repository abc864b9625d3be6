import * as fs from "fs";
import * as path from "path";
import { tempDir } from "../support/env";

// scripts/stack-config.js: the machine's copy of a stack's settings, merged from the committed file.
const { merge, sync } = require("../../scripts/stack-config.js") as {
  merge: (committed: object, machine: object | undefined, base: object | undefined) => object;
  sync: (where: { root: string; cache: string; stack: string }) => string;
};

const committed = {
  config: { "model-serving:mlflow": { port: 5000 }, "model-serving:models": [{ name: "iris" }] },
};
const salt = "v1:abc=:v1:def:ghi==";
const secret = { secure: "v1:xyz" };

describe("the machine's stack settings", () => {
  it("start as the committed file", () => {
    expect(merge(committed, undefined, undefined)).toEqual(committed);
  });

  it("keep the machine's salt and secrets when the committed file changes", () => {
    const machine = {
      encryptionsalt: salt,
      config: { ...committed.config, "model-serving:mlflowPassword": secret },
    };
    const changed = {
      config: { ...committed.config, "model-serving:mlflow": { port: 5100 } },
    };
    expect(merge(changed, machine, committed)).toEqual({
      encryptionsalt: salt,
      config: {
        "model-serving:mlflow": { port: 5100 },
        "model-serving:models": [{ name: "iris" }],
        "model-serving:mlflowPassword": secret,
      },
    });
  });

  it("keep a key the machine changed, follow the committed file for the others", () => {
    const machine = {
      encryptionsalt: salt,
      config: { ...committed.config, "model-serving:mlflow": { port: 6000 } },
    };
    const changed = { config: { "model-serving:mlflow": { port: 5100 } } };
    // models was removed in the committed file; mlflow was changed on both sides: the machine wins.
    expect(merge(changed, machine, committed)).toEqual({
      encryptionsalt: salt,
      config: { "model-serving:mlflow": { port: 6000 } },
    });
  });

  it("take over a salt older scripts wrote into the committed file", () => {
    expect(
      merge({ ...committed, encryptionsalt: salt }, { config: committed.config }, committed),
    ).toEqual({ ...committed, encryptionsalt: salt });
  });
});

describe("syncing the machine's copy", () => {
  it("moves a salt older scripts wrote into the checkout, leaving the rest byte for byte", () => {
    const root = tempDir("sync-root");
    const cache = tempDir("sync-cache");
    fs.writeFileSync(path.join(root, "Pulumi.yaml"), "name: model-serving\nruntime: nodejs\n");
    const clean = "# kept comment\nconfig:\n  model-serving:mlflow:\n    port: 5000\n";
    fs.writeFileSync(path.join(root, "Pulumi.dev.yaml"), `${clean}encryptionsalt: ${salt}\n`);
    const file = sync({ root, cache, stack: "dev" });
    expect(file).toBe(path.join(cache, "stacks", "Pulumi.dev.yaml"));
    expect(fs.readFileSync(path.join(root, "Pulumi.dev.yaml"), "utf8")).toBe(clean);
    expect(fs.readFileSync(file, "utf8")).toBe(
      `encryptionsalt: ${salt}\nconfig:\n  model-serving:mlflow:\n    port: 5000\n`,
    );
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    // Nothing changes on the next run.
    const before = fs.statSync(file).mtimeMs;
    sync({ root, cache, stack: "dev" });
    expect(fs.statSync(file).mtimeMs).toBe(before);
    expect(fs.readFileSync(path.join(root, "Pulumi.dev.yaml"), "utf8")).toBe(clean);
  });
});
