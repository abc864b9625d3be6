import { createMlflowClient } from "../../providers/mlflow/client";
import * as registry from "../../providers/mlflow/registry";
import { MlflowServerState } from "../../providers/mlflowServerCore";
import { createModelVersion, deleteModelVersion } from "../../providers/modelVersionCore";
import { hashSource } from "../../providers/modelSource";
import { demoModel, missingMlflow } from "../support/env";
import { errorText } from "../support/errorText";
import { startTestServer, stopTestServer } from "../support/mlflowServer";

// A real MLflow server running the basic-auth app (`mlflow server --app-name basic-auth`).
const skip = missingMlflow();
if (skip) {
  console.warn(`skipping basic-auth integration tests: ${skip}`);
}
const describeReal = skip ? describe.skip : describe;
const PASSWORD = "auth-test-Pa55word!";

describeReal("MLflow with basic auth", () => {
  let server: MlflowServerState | undefined;
  beforeAll(async () => {
    server = await startTestServer({ username: "admin", password: PASSWORD });
  }, 180_000);
  afterAll(() => stopTestServer(server), 60_000);

  it("accepts good credentials for a whole registration", async () => {
    const source = demoModel(1.0);
    const auth = { username: "admin", password: PASSWORD };
    const created = await createModelVersion({
      trackingUri: server!.trackingUri,
      auth,
      name: "iris-auth",
      source,
      sourceHash: hashSource(source),
      aliases: ["champion"],
      tags: {},
      description: "",
      registration: 1,
      experimentName: "model-serving",
      readyTimeoutSeconds: 60,
    });
    expect(created.id).toBe("iris-auth/1");
    await deleteModelVersion(created.outs);
  }, 120_000);

  it("rejects bad and missing credentials with a typed 401 that hides the password", async () => {
    for (const creds of [{ username: "admin", password: "wrong-password" }, {}]) {
      const client = createMlflowClient({ trackingUri: server!.trackingUri, auth: creds }, {});
      const err = await registry.getRegisteredModel(client, "iris").catch((e) => e);
      expect(err).toMatchObject({
        errorCode: "UNAUTHENTICATED",
        status: 401,
        method: "GET",
        path: "/api/2.0/mlflow/registered-models/get",
      });
      // Message, stack, hidden properties (the HTTP request) and cause, not only enumerable fields.
      expect(errorText(err)).toContain("UNAUTHENTICATED");
      expect(errorText(err)).not.toContain("wrong-password");
      expect(errorText(err)).not.toContain(Buffer.from("admin:wrong-password").toString("base64"));
    }
  }, 60_000);
});
