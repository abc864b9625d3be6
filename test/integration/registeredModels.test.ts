import {
  createModelReference,
  diffModelReference,
  readModelReference,
  updateModelReference,
} from "../../providers/modelReferenceCore";
import { MlflowServerState } from "../../providers/mlflowServerCore";
import {
  checkModelVersion,
  createModelVersion,
  deleteModelVersion,
  diffModelVersion,
  ModelVersionArgs,
} from "../../providers/modelVersionCore";
import { createMlflowClient } from "../../providers/mlflow/client";
import * as registry from "../../providers/mlflow/registry";
import { demoModel, missingMlflow, skipReason } from "../support/env";
import { hashSource } from "../../providers/modelSource";
import { versionArgs } from "../support/versionArgs";
import { startTestServer, stopTestServer } from "../support/mlflowServer";
import { mlflowPython, Registered, registrySnapshot } from "../support/registryClient";

// A registry written by MLflow's own Python client, not by this project: references resolve and
// follow it without changing it, and URI sources re-register when what they point to changes.
const skip = skipReason(missingMlflow());
if (skip) {
  console.warn(`skipping registered-model integration tests: ${skip}`);
}
const describeReal = skip ? describe.skip : describe;

describeReal("serving what MLflow's own client registered", () => {
  let server: MlflowServerState | undefined;
  let uri: string;
  let v1: Registered;
  let v2: Registered;

  beforeAll(async () => {
    server = await startTestServer();
    uri = server.trackingUri;
    v1 = await mlflowPython<Registered>(uri, "register", "fraud", demoModel(1.0));
    v2 = await mlflowPython<Registered>(uri, "register", "fraud", demoModel(0.01));
    await mlflowPython(uri, "alias", "fraud", "champion", "1");
  }, 300_000);
  afterAll(() => stopTestServer(server), 60_000);

  it("an alias reference resolves, follows a moved alias, and leaves the registry as it was", async () => {
    const before = await registrySnapshot(uri, "fraud");
    const args = { trackingUri: uri, name: "fraud", alias: "champion" };
    const created = await createModelReference(args);
    expect(created.id).toBe("fraud@champion");
    expect(created.outs).toMatchObject({ resolvedVersion: "1", modelUri: "models:/fraud/1" });
    // The version's own serving example (logged by MLflow with the input example), one row of it.
    const example = JSON.parse(created.outs.servingExample);
    expect(example.dataframe_split.data).toHaveLength(1);
    expect(await diffModelReference(created.outs, args)).toMatchObject({ changes: false });

    await mlflowPython(uri, "alias", "fraud", "champion", "2");
    // Plain `up`: the diff sees the move (an update, never a replace) ...
    expect(await diffModelReference(created.outs, args)).toEqual(
      expect.objectContaining({ changes: true, replaces: [] }),
    );
    // ... and `refresh` records it.
    const refreshed = await readModelReference(created.outs);
    expect(refreshed).toMatchObject({ resolvedVersion: "2", modelUri: "models:/fraud/2" });
    const updated = await updateModelReference(created.outs, args);
    expect(updated.resolvedVersion).toBe(v2.version);

    await mlflowPython(uri, "alias", "fraud", "champion", "1");
    const after = await registrySnapshot(uri, "fraud");
    expect(after).toEqual(before);
  }, 120_000);

  it("a version reference pins one version; missing ones are errors that name them", async () => {
    const pinned = await createModelReference({ trackingUri: uri, name: "fraud", version: 2 });
    expect(pinned).toMatchObject({ id: "fraud/2", outs: { resolvedVersion: "2" } });
    await expect(
      createModelReference({ trackingUri: uri, name: "fraud", alias: "nope" }),
    ).rejects.toThrow(`registered: alias "nope" of model "fraud" does not exist in ${uri}`);
    await expect(
      createModelReference({ trackingUri: uri, name: "fraud", version: 99 }),
    ).rejects.toThrow(`registered: version 99 of model "fraud" does not exist in ${uri}`);
    await expect(
      createModelReference({ trackingUri: uri, name: "nosuchmodel", version: 1 }),
    ).rejects.toThrow(`registered: version 1 of model "nosuchmodel" does not exist`);
    // A reference whose alias is gone reads as gone (the next up then names the reason).
    expect(
      await readModelReference({
        ...pinned.outs,
        alias: "nope",
        version: undefined,
      }),
    ).toBeUndefined();
  }, 120_000);

  describe("URI sources", () => {
    const sourceArgs = (name: string, source: string): ModelVersionArgs =>
      versionArgs(uri, name, source, { owner: `model-serving/test/${name}` });

    it("models:/name@alias registers the version the alias names, and again when it moves", async () => {
      const args = await checkModelVersion(
        undefined,
        sourceArgs("fraud-prod", "models:/fraud@champion"),
      );
      expect(args.sourceHash).not.toBe(hashSource("models:/fraud@champion"));
      const first = await createModelVersion(args);
      const client = createMlflowClient({ trackingUri: uri });
      const registered = await registry.getModelVersion(client, "fraud-prod", first.outs.version);
      const source1 = await registry.getModelVersion(client, "fraud", "1");
      expect(registered?.source).toBe(source1?.source);

      // Same alias, same target: no change. Alias moved: the same text now replaces.
      const again = await checkModelVersion(
        first.outs,
        sourceArgs("fraud-prod", "models:/fraud@champion"),
      );
      expect(diffModelVersion(first.outs, again)).toMatchObject({ changes: false });
      await mlflowPython(uri, "alias", "fraud", "champion", "2");
      try {
        const moved = await checkModelVersion(
          first.outs,
          sourceArgs("fraud-prod", "models:/fraud@champion"),
        );
        expect(diffModelVersion(first.outs, moved).replaces).toEqual(["sourceHash"]);
        const second = await createModelVersion(moved);
        expect(second.outs.version).not.toBe(first.outs.version);
        expect(
          (await registry.getModelVersion(client, "fraud-prod", second.outs.version))?.source,
        ).toBe((await registry.getModelVersion(client, "fraud", "2"))?.source);
        await deleteModelVersion(first.outs);
        await deleteModelVersion(second.outs);
      } finally {
        await mlflowPython(uri, "alias", "fraud", "champion", "1");
      }
    }, 120_000);

    it("an MLflow 3 logged model (models:/m-<id>) and its runs:/ URI register with their lineage", async () => {
      for (const source of [`models:/${v1.model_id}`, `runs:/${v1.run_id}/model`]) {
        const name = source.startsWith("runs:") ? "fraud-from-run" : "fraud-from-logged";
        const created = await createModelVersion(
          await checkModelVersion(undefined, sourceArgs(name, source)),
        );
        const client = createMlflowClient({ trackingUri: uri });
        const v = await registry.getModelVersion(client, name, created.outs.version);
        // Registered from the logged model itself, with its run: MLflow's own lineage.
        expect(v).toMatchObject({
          status: "READY",
          source: `models:/${v1.model_id}`,
          run_id: v1.run_id,
        });
        await deleteModelVersion(created.outs);
      }
      await expect(
        checkModelVersion(undefined, sourceArgs("x", "models:/m-0000000000000000deadbeef")),
      ).rejects.toThrow(
        `source: logged model m-0000000000000000deadbeef (models:/m-0000000000000000deadbeef) does not exist in ${uri}`,
      );
    }, 120_000);
  });
});
