import { createMlflowClient } from "../../providers/mlflow/client";
import { MlflowError } from "../../providers/mlflow/errors";
import * as registry from "../../providers/mlflow/registry";
import { MlflowServerState } from "../../providers/mlflowServerCore";
import {
  createModelVersion,
  deleteModelVersion,
  ModelVersionArgs,
  readModelVersion,
  updateModelVersion,
} from "../../providers/modelVersionCore";
import { hashSource } from "../../providers/modelSource";
import { demoModel, freePort, missingMlflow } from "../support/env";
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
    await deleteModelVersion(created.outs);
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
