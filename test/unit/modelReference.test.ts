import { UNKNOWN } from "../../providers/diffKeys";
import { parseModelUri } from "../../providers/mlflow/modelUri";
import {
  diffModelReference,
  ModelReferenceState,
  referenceId,
} from "../../providers/modelReferenceCore";
import { checkModelVersion, ModelVersionArgs } from "../../providers/modelVersionCore";
import { hashSource } from "../../providers/modelSource";
import { versionArgs } from "../support/versionArgs";

// Resolution rules and diffs that need no server (the real registry: test/integration/registeredModels).

describe("model URIs", () => {
  it.each([
    ["models:/fraud/3", { kind: "version", name: "fraud", version: "3" }],
    ["models:/fraud@champion", { kind: "alias", name: "fraud", alias: "champion" }],
    ["models:/m-0123abcd", { kind: "logged", modelId: "m-0123abcd" }],
    ["runs:/abc/model", { kind: "run", runId: "abc", path: "model" }],
    ["runs:/abc/", { kind: "run", runId: "abc", path: "" }],
  ])("%s", (uri, parsed) => {
    expect(parseModelUri(uri)).toEqual(parsed);
  });

  it("leaves storage URIs alone (they are registered as their text says)", () => {
    expect(parseModelUri("s3://bucket/model")).toBeUndefined();
    expect(parseModelUri("mlflow-artifacts:/1/abc/artifacts/model")).toBeUndefined();
    expect(parseModelUri("models:/fraud/Production")).toBeUndefined();
  });
});

describe("ModelReference diff", () => {
  // An unreachable URL: a diff that needs no registry call must not make one.
  const olds: ModelReferenceState = {
    trackingUri: "http://127.0.0.1:9",
    name: "fraud",
    version: 3,
    resolvedVersion: "3",
    modelUri: "models:/fraud/3",
    storageSource: "s3://b/m",
    runId: "r",
    servingExample: "",
  };

  it("names a reference by its model and version or alias", () => {
    expect(referenceId({ name: "fraud", version: 3 })).toBe("fraud/3");
    expect(referenceId({ name: "fraud", alias: "champion" })).toBe("fraud@champion");
  });

  it("a pinned version with the same inputs has no changes and asks nothing of MLflow", async () => {
    await expect(
      diffModelReference(olds, { trackingUri: olds.trackingUri, name: "fraud", version: 3 }),
    ).resolves.toMatchObject({ changes: false });
  });

  it("another version or alias is an update, never a replace (the registry holds both)", async () => {
    const d = await diffModelReference(olds, {
      trackingUri: olds.trackingUri,
      name: "fraud",
      version: 4,
    });
    expect(d).toMatchObject({ changes: true, replaces: [] });
    const a = await diffModelReference(olds, {
      trackingUri: olds.trackingUri,
      name: "fraud",
      alias: "champion",
    });
    expect(a).toMatchObject({ changes: true, replaces: [] });
  });

  it("an alias whose server is unknown in preview is a maybe-update, resolved at up", async () => {
    const d = await diffModelReference(
      { ...olds, version: undefined, alias: "champion" },
      { trackingUri: UNKNOWN, name: "fraud", alias: "champion" },
    );
    expect(d).toMatchObject({ changes: true, replaces: [] });
  });

  it("an alias on an unreachable server keeps what is served", async () => {
    const d = await diffModelReference(
      { ...olds, version: undefined, alias: "champion" },
      { trackingUri: olds.trackingUri, name: "fraud", alias: "champion" },
    );
    expect(d).toMatchObject({ changes: false });
  }, 30_000);
});

describe("URI sources in check()", () => {
  const args = (source: string, trackingUri = "http://127.0.0.1:9"): ModelVersionArgs =>
    versionArgs(trackingUri, "fraud-prod", source);

  it("keeps a local directory's and a storage URI's hash as the program computed it", async () => {
    const s3 = args("s3://bucket/model");
    await expect(checkModelVersion(undefined, s3)).resolves.toBe(s3);
  });

  it("keeps the old hash of an unchanged URI while its server is unknown or unreachable", async () => {
    const olds = { ...args("models:/fraud@champion"), sourceHash: "sha256:resolved-before" };
    for (const news of [args("models:/fraud@champion", UNKNOWN), args("models:/fraud@champion")]) {
      await expect(checkModelVersion(olds, news)).resolves.toMatchObject({
        sourceHash: "sha256:resolved-before",
      });
    }
    // A new URI on an unreachable server: nothing to keep; create will say what is wrong.
    const moved = args("models:/fraud@challenger");
    await expect(checkModelVersion(olds, moved)).resolves.toMatchObject({
      sourceHash: hashSource("models:/fraud@challenger"),
    });
  }, 60_000);
});
