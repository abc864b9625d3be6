import * as pulumi from "@pulumi/pulumi";
import { mockRecorder } from "../support/mockRecorder";

jest.mock("../../providers/localMlflowServer", () =>
  jest.requireActual("../support/dynamicStandIns").localMlflowServerModule(),
);

// The MlflowServer component during a preview in which its server is being updated: the engine then
// returns no outputs for the server, so the server's own `trackingUri` is unknown. The component's
// URL must stay known (else every ModelVersion previews as changed) and still depend on the server.
const { registrations, record } = mockRecorder();
pulumi.runtime.setMocks(
  {
    newResource(args) {
      record(args);
      // Like a preview of an update: the engine knows none of the dynamic resource's outputs.
      const state = args.type.endsWith(":LocalMlflowServer") ? {} : args.inputs;
      return { id: `${args.name}-id`, state };
    },
    call: (args) => args.inputs,
  },
  "model-serving",
  "mockstack",
  true,
);

import { MlflowServer } from "../../components/mlflowServer";

/** An Output's known-ness, value and the resources it depends on (Pulumi's internals). */
async function inspect<T>(o: pulumi.Output<T>) {
  const impl = o as unknown as {
    isKnown: Promise<boolean>;
    promise(): Promise<T>;
    allResources(): Promise<Set<pulumi.Resource>>;
  };
  return {
    known: await impl.isKnown,
    value: await impl.promise(),
    resources: [...(await impl.allResources())],
  };
}

describe("MlflowServer trackingUri during preview", () => {
  it("is known from host and port while the server's own output is unknown", async () => {
    const mlflow = new MlflowServer("mlflow", {
      mode: "local",
      host: "127.0.0.1",
      port: 5123,
      dataDir: "/data/mlflow",
      mlflowBin: "/venv/bin/mlflow",
    });
    const uri = await inspect(mlflow.trackingUri);
    expect({ known: uri.known, value: uri.value }).toEqual({
      known: true,
      value: "http://127.0.0.1:5123",
    });
    // Whatever uses the URL still waits for the server (the dependency travels with the Output).
    const urns = await Promise.all(uri.resources.map(async (r) => (await inspect(r.urn)).value));
    expect(urns).toEqual(
      expect.arrayContaining([expect.stringMatching(/LocalMlflowServer::mlflow-server$/)]),
    );
    expect(registrations.map((r) => r.type)).toContain(
      "pulumi-nodejs:dynamic/modelserving:LocalMlflowServer",
    );
    expect(await inspect(mlflow.registryId)).toMatchObject({
      known: true,
      value: "local:/data/mlflow",
    });
  });

  it("is the configured URL for an existing server, whose registry is that URL", async () => {
    const mlflow = new MlflowServer("shared", {
      mode: "existing",
      trackingUri: "https://mlflow.example.internal/",
    });
    expect((await inspect(mlflow.registryId)).value).toBe("https://mlflow.example.internal");
  });
});
