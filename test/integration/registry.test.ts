import * as fs from "fs";
import * as path from "path";
import { createMlflowClient } from "../../providers/mlflow/client";
import { MlflowError } from "../../providers/mlflow/errors";
import * as registry from "../../providers/mlflow/registry";
import {
  MlflowServerState,
  startMlflowServer,
  stopMlflowServer,
} from "../../providers/mlflowServerCore";
import {
  createModelVersion,
  deleteModelVersion,
  diffModelVersion,
  ModelVersionArgs,
  readModelVersion,
  TAG_CLAIM,
  updateModelVersion,
} from "../../providers/modelVersionCore";
import { hashSource } from "../../providers/modelSource";
import { demoModel, freePort, mlflowBin, missingMlflow, tempDir } from "../support/env";
import { startTestServer, stopTestServer } from "../support/mlflowServer";

// Model version registration against a real `mlflow server` on loopback.
const skip = missingMlflow();
if (skip) {
  console.warn(`skipping registry integration tests: ${skip}`);
}
const describeReal = skip ? describe.skip : describe;

describeReal("model version registration on a real MLflow server", () => {
  let server: MlflowServerState | undefined;
  let args: ModelVersionArgs;

  beforeAll(async () => {
    server = await startTestServer();
    const source = demoModel(1.0);
    args = {
      trackingUri: server.trackingUri,
      registryId: `local:${server.dataDir}`,
      owner: "model-serving/test/iris-version",
      name: "iris",
      source,
      sourceHash: hashSource(source),
      aliases: ["champion"],
      tags: { owner: "platform" },
      description: "demo",
      registration: 1,
      experimentName: "model-serving",
      readyTimeoutSeconds: 60,
    };
  }, 180_000);
  afterAll(() => stopTestServer(server), 60_000);

  it("registers, adopts on a second create, updates, reads and deletes", async () => {
    const client = createMlflowClient({ trackingUri: args.trackingUri });
    const first = await createModelVersion(args);
    expect(first.id).toBe("iris/1");
    expect(first.outs).toMatchObject({ version: "1", modelUri: "models:/iris/1" });
    expect(first.outs.storageSource).toMatch(/^mlflow-artifacts:\/.+\/artifacts\/model$/);
    const v1 = await registry.getModelVersion(client, "iris", "1");
    expect(v1).toMatchObject({ status: "READY", aliases: ["champion"], description: "demo" });

    // A create that repeats (e.g. after an interrupted `up`) finds the same version, no duplicate.
    const again = await createModelVersion(args);
    expect(again.id).toBe("iris/1");
    expect(await registry.searchModelVersions(client, "iris")).toHaveLength(1);

    // Re-registering the same source (counter bumped) makes version 2; the alias moves to it.
    const second = await createModelVersion({ ...args, registration: 2 });
    expect(second.id).toBe("iris/2");
    expect((await registry.getModelVersion(client, "iris", "2"))?.aliases).toEqual(["champion"]);

    // Updates in place: aliases, tags, description.
    const updated = await updateModelVersion(second.outs, {
      ...args,
      registration: 2,
      aliases: ["challenger"],
      tags: { owner: "ml" },
      description: "second",
    });
    const v2 = await registry.getModelVersion(client, "iris", "2");
    expect(v2?.aliases).toEqual(["challenger"]);
    expect(v2?.description).toBe("second");
    expect(v2?.tags).toEqual(expect.arrayContaining([{ key: "owner", value: "ml" }]));
    expect(await readModelVersion(updated)).toMatchObject({
      aliases: ["challenger"],
      description: "second",
    });

    // Only the repeated create's state survives an interrupted up, and it owns (claims) version 1.
    // Deleting version 1 keeps the model (version 2 remains); deleting twice is fine.
    await deleteModelVersion(again.outs);
    await deleteModelVersion(again.outs);
    expect(await readModelVersion(again.outs)).toBeUndefined();
    expect(await registry.getRegisteredModel(client, "iris")).toBeDefined();

    // The last version goes: the model this project created goes with it.
    await deleteModelVersion(updated);
    expect(await registry.getRegisteredModel(client, "iris")).toBeUndefined();
  }, 180_000);

  it("keeps a version adopted through another tracking URI when the old resource is deleted", async () => {
    const first = await createModelVersion({ ...args, name: "iris-moved" });
    // The same registry reached by another URI: the replacement adopts the version, then Pulumi
    // deletes the replaced resource.
    const viaLocalhost = args.trackingUri.replace("127.0.0.1", "localhost");
    const second = await createModelVersion({
      ...args,
      name: "iris-moved",
      trackingUri: viaLocalhost,
    });
    expect(second.id).toBe(first.id);
    await deleteModelVersion(first.outs);
    expect(await readModelVersion(second.outs)).toMatchObject({ version: first.outs.version });
    await deleteModelVersion(second.outs);
    expect(await readModelVersion(second.outs)).toBeUndefined();
  }, 120_000);

  it("reports a version deleted out of band as gone", async () => {
    const created = await createModelVersion({ ...args, name: "iris-oob" });
    const client = createMlflowClient({ trackingUri: args.trackingUri });
    await registry.deleteModelVersion(client, "iris-oob", created.outs.version);
    expect(await readModelVersion(created.outs)).toBeUndefined();
    const logs: string[] = [];
    await deleteModelVersion(created.outs, (m) => logs.push(m));
    expect(logs).toEqual([
      `iris-oob version 1 is already gone from ${args.trackingUri}; nothing to delete`,
    ]);
    // The model this project created is left empty: it goes too.
    expect(await registry.getRegisteredModel(client, "iris-oob")).toBeUndefined();
  }, 120_000);

  it("keeps a registered model it did not create", async () => {
    const client = createMlflowClient({ trackingUri: args.trackingUri });
    await registry.ensureRegisteredModel(client, "team-model", {});
    const created = await createModelVersion({ ...args, name: "team-model" });
    await deleteModelVersion(created.outs);
    expect(await registry.getRegisteredModel(client, "team-model")).toBeDefined();
  }, 120_000);

  it("registers from runs:/ and models:/ URIs", async () => {
    const base = await createModelVersion({ ...args, name: "iris-base", aliases: [] });
    const fromModel = await createModelVersion({
      ...args,
      name: "iris-copy",
      source: "models:/iris-base/1",
      sourceHash: hashSource("models:/iris-base/1"),
      aliases: [],
    });
    expect(fromModel.outs.storageSource).toBe(base.outs.storageSource);
    const fromRun = await createModelVersion({
      ...args,
      name: "iris-run",
      source: `runs:/${base.outs.runId}/model`,
      sourceHash: hashSource(`runs:/${base.outs.runId}/model`),
      aliases: [],
    });
    expect(fromRun.outs).toMatchObject({
      runId: base.outs.runId,
      storageSource: base.outs.storageSource,
    });
  }, 120_000);

  it("rejects an alias MLflow refuses, keeping the version it registered", async () => {
    const err = await createModelVersion({ ...args, name: "iris-alias", aliases: ["v9"] }).catch(
      (e) => e,
    );
    expect(err.message).toMatch(/alias/i);
    expect(err).toMatchObject({ id: "iris-alias/1", properties: { version: "1" } });
  }, 120_000);

  it("never deletes a version that carries an alias this stack did not set", async () => {
    const client = createMlflowClient({ trackingUri: args.trackingUri });
    const created = await createModelVersion({ ...args, name: "iris-aliased" });
    // Someone else points their own aliases at our version.
    await registry.setAlias(client, "iris-aliased", "prod", created.outs.version);
    await registry.setAlias(client, "iris-aliased", "canary", created.outs.version);
    const logs: string[] = [];
    await deleteModelVersion(created.outs, (m) => logs.push(m));
    expect(logs).toEqual([
      'keeping iris-aliased version 1 in the registry: it carries aliases "canary", "prod" ' +
        "that this stack did not set",
    ]);
    expect(await registry.getModelVersion(client, "iris-aliased", "1")).toMatchObject({
      status: "READY",
    });
    expect(await readModelVersion(created.outs)).toMatchObject({ version: "1" });

    // One foreign alias is enough; once it is gone, the version is ours to delete.
    await registry.deleteAliasIfOwned(client, "iris-aliased", "canary", "1");
    logs.length = 0;
    await deleteModelVersion(created.outs, (m) => logs.push(m));
    expect(logs).toEqual([
      'keeping iris-aliased version 1 in the registry: it carries alias "prod" that this stack ' +
        "did not set",
    ]);
    await registry.deleteAliasIfOwned(client, "iris-aliased", "prod", "1");
    await deleteModelVersion(created.outs, (m) => logs.push(m));
    expect(await registry.getModelVersion(client, "iris-aliased", "1")).toBeUndefined();
  }, 120_000);

  it("never deletes or adopts a version another stack claimed", async () => {
    const client = createMlflowClient({ trackingUri: args.trackingUri });
    const ours = await createModelVersion({ ...args, name: "iris-claimed" });
    // Another stack registering the same source does not take our version: it registers its own.
    const theirs = await createModelVersion({
      ...args,
      name: "iris-claimed",
      owner: "other-project/prod/iris-version",
      aliases: [],
    });
    expect([ours.outs.version, theirs.outs.version]).toEqual(["1", "2"]);
    expect(await readModelVersion(ours.outs)).toMatchObject({ version: "1" });

    // A claim taken over by another stack: our delete leaves the version alone, and refresh (read)
    // no longer reports it as ours.
    await registry.setModelVersionTag(
      client,
      "iris-claimed",
      "1",
      TAG_CLAIM,
      "other-project/prod/iris-version 1234",
    );
    const logs: string[] = [];
    await deleteModelVersion(ours.outs, (m) => logs.push(m));
    expect(logs).toEqual([
      "keeping iris-claimed version 1 in the registry: it is claimed by " +
        "other-project/prod/iris-version (tag model_serving.claim)",
    ]);
    expect(await registry.getModelVersion(client, "iris-claimed", "1")).toBeDefined();
    expect(await readModelVersion(ours.outs)).toBeUndefined();

    // Their delete removes their own version 2, not ours.
    await deleteModelVersion(theirs.outs);
    expect(await registry.getModelVersion(client, "iris-claimed", "2")).toBeUndefined();
    expect(await registry.getModelVersion(client, "iris-claimed", "1")).toBeDefined();
  }, 120_000);

  it("names the field when the source is not a model directory", async () => {
    await expect(createModelVersion({ ...args, source: "/nonexistent/model" })).rejects.toThrow(
      'source: model directory "/nonexistent/model" does not exist',
    );
  });
});

describe("an MLflow server that is down", () => {
  it("gives a typed UNREACHABLE error", async () => {
    const trackingUri = `http://127.0.0.1:${await freePort()}`; // nothing listens there
    const client = createMlflowClient({ trackingUri, retries: 1 });
    const err = await registry.getRegisteredModel(client, "iris").catch((e) => e);
    expect(err).toBeInstanceOf(MlflowError);
    expect(err).toMatchObject({
      errorCode: "UNREACHABLE",
      message: `MLflow at ${trackingUri} is unreachable (ECONNREFUSED) on GET /api/2.0/mlflow/registered-models/get`,
    });
  });

  it("keeps a version in state on refresh while the server is unreachable", async () => {
    const trackingUri = `http://127.0.0.1:${await freePort()}`;
    const state = {
      trackingUri,
      name: "iris",
      source: "runs:/r/model",
      sourceHash: "sha256:x",
      aliases: [],
      tags: {},
      description: "",
      registration: 1,
      experimentName: "model-serving",
      readyTimeoutSeconds: 10,
      version: "1",
      modelUri: "models:/iris/1",
      runId: "r",
      storageSource: "mlflow-artifacts:/0/r/artifacts/model",
    };
    await expect(readModelVersion(state)).resolves.toBe(state);
  }, 60_000);
});

describeReal("a new, empty registry at the same URL (mlflow.dataDir changed)", () => {
  const servers: MlflowServerState[] = [];
  const root = tempDir("mlflow-registries");
  afterAll(async () => {
    for (const s of servers) {
      await stopMlflowServer(s);
    }
    fs.rmSync(root, { recursive: true, force: true });
  }, 60_000);

  async function serve(port: number, dir: string): Promise<MlflowServerState> {
    const s = await startMlflowServer({
      mlflowBin,
      host: "127.0.0.1",
      port,
      dataDir: path.join(root, dir),
      startTimeoutSeconds: 120,
    });
    servers.push(s);
    return s;
  }

  it("replaces, re-registers, and the old version's delete touches nothing there", async () => {
    const port = await freePort();
    const first = await serve(port, "first");
    const source = demoModel(1.0);
    const args: ModelVersionArgs = {
      trackingUri: first.trackingUri,
      registryId: `local:${first.dataDir}`,
      owner: "model-serving/test/iris-version",
      name: "iris",
      source,
      sourceHash: hashSource(source),
      aliases: ["champion"],
      tags: {},
      description: "",
      registration: 1,
      experimentName: "model-serving",
      readyTimeoutSeconds: 60,
    };
    const v1 = await createModelVersion(args);
    const v2 = await createModelVersion({ ...args, registration: 2 });
    expect([v1.outs.version, v2.outs.version]).toEqual(["1", "2"]);

    // The same URL now serves another data directory: a new, empty registry.
    await stopMlflowServer(servers.shift()!);
    const second = await serve(port, "second");
    expect(second.trackingUri).toBe(first.trackingUri);
    const moved = { ...args, registration: 2, registryId: `local:${second.dataDir}` };
    expect(diffModelVersion(v2.outs, moved)).toEqual({
      changes: true,
      replaces: ["registryId"],
      deleteBeforeReplace: false,
    });
    // Refresh sees the version is not there.
    expect(await readModelVersion(v2.outs)).toBeUndefined();

    // Someone registers "iris" by hand in the new registry: version 1 there is theirs.
    const client = createMlflowClient({ trackingUri: second.trackingUri });
    const run = await registry.createRun(
      client,
      await registry.ensureExperiment(client, "by-hand"),
      "by-hand",
      {},
    );
    await registry.ensureRegisteredModel(client, "iris", {});
    await registry.createModelVersion(client, {
      name: "iris",
      source: `${run.artifactUri}/model`,
      runId: run.runId,
      tags: {},
    });
    // The replacement registers anew (version 2 in the new registry).
    const replacement = await createModelVersion(moved);
    expect(replacement.outs).toMatchObject({ version: "2", registryId: `local:${second.dataDir}` });

    // Pulumi then deletes the replaced resources (old state, same URL): nothing in the new registry
    // is theirs, so nothing is deleted.
    const logs: string[] = [];
    await deleteModelVersion(v2.outs, (m) => logs.push(m));
    await deleteModelVersion(v1.outs, (m) => logs.push(m));
    expect(logs).toEqual([
      "keeping iris version 2 in the registry: the resource that replaced this one claimed it " +
        "(tag model_serving.claim)",
      "keeping iris version 1 in the registry: it is not the version this resource registered " +
        "(another source)",
    ]);
    const versions = await registry.searchModelVersions(client, "iris");
    expect(versions.map((v) => v.version).sort()).toEqual(["1", "2"]);
    expect(await readModelVersion(replacement.outs)).toMatchObject({ version: "2" });

    // A version number the new registry does not have: a no-op that says so.
    logs.length = 0;
    await deleteModelVersion({ ...v2.outs, version: "7" }, (m) => logs.push(m));
    expect(logs).toEqual([
      `iris version 7 is already gone from ${second.trackingUri}; nothing to delete`,
    ]);
    expect(await registry.getRegisteredModel(client, "iris")).toBeDefined();
  }, 300_000);
});
