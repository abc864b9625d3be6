/**
 * Dynamic provider methods are serialized by Pulumi's closure serializer and run in another process.
 * Jest cannot host that serializer, so this test compiles the providers, serializes them in plain
 * node exactly as pulumi.dynamic.Resource does (runtime.serializeFunction(() => provider)), checks
 * that only builtin modules and axios are captured, then loads the serialized text in a fresh node
 * process and runs the providers from it (ModelExport create/diff/delete with a stand-in mlflow CLI).
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const ROOT = path.resolve(__dirname, "../../..");
let out: string;

beforeAll(() => {
  out = fs.mkdtempSync(path.join(os.tmpdir(), "provider-serialization-"));
  execFileSync(
    path.join(ROOT, "node_modules/.bin/tsc"),
    [
      "--outDir",
      out,
      "--rootDir",
      ROOT,
      "--module",
      "commonjs",
      "--target",
      "es2022",
      "--esModuleInterop",
      "--skipLibCheck",
      "--strict",
      "--types",
      "node",
      path.join(ROOT, "providers/modelExport.ts"),
      path.join(ROOT, "providers/azureMlTraffic.ts"),
      path.join(ROOT, "components/cloud/sagemakerVariantGuard.ts"),
      path.join(ROOT, "components/cloud/uniqueSuffix.ts"),
      path.join(ROOT, "components/cloud/sagemakerCapacity.ts"),
    ],
    { stdio: "pipe" },
  );
}, 60_000);
afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

function node(script: string): string {
  const file = path.join(out, `script-${Math.random().toString(36).slice(2)}.js`);
  fs.writeFileSync(file, script);
  return execFileSync(process.execPath, [file], {
    env: { ...process.env, NODE_PATH: path.join(ROOT, "node_modules") },
    encoding: "utf8",
  });
}

test("providers serialize capturing only builtins, axios, @azure/identity and the SageMaker SDK, and run from the serialized text", () => {
  const serialized = JSON.parse(
    node(`
      const pulumi = require("@pulumi/pulumi");
      const fs = require("fs");
      (async () => {
        const result = {};
        for (const [file, name] of [["providers/modelExport", "modelExportProvider"], ["providers/azureMlTraffic", "trafficProvider"], ["components/cloud/sagemakerVariantGuard", "variantGuardProvider"], ["components/cloud/uniqueSuffix", "uniqueSuffixProvider"], ["components/cloud/sagemakerCapacity", "capacityProvider"]]) {
          const provider = require(${JSON.stringify(out)} + "/" + file + ".js")[name];
          const sf = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: false });
          const target = ${JSON.stringify(out)} + "/" + name + ".serialized.js";
          fs.writeFileSync(target, sf.text);
          result[name] = { target, exportName: sf.exportName, requires: [...new Set(sf.text.match(/require\\("[^"]+"\\)/g))].sort() };
        }
        console.log(JSON.stringify(result));
      })().catch((e) => { console.error(e); process.exit(1); });
    `),
  );
  expect(serialized.modelExportProvider.requires).toEqual([
    'require("child_process")',
    'require("crypto")',
    'require("fs")',
    'require("path")',
  ]);
  // The ARM token comes from @azure/identity (required by name, resolved in the provider process).
  expect(serialized.trafficProvider.requires).toEqual([
    'require("@azure/identity")',
    'require("axios")',
  ]);
  expect(serialized.variantGuardProvider.requires).toEqual([]);
  expect(serialized.uniqueSuffixProvider.requires).toEqual(['require("crypto")']);
  expect(serialized.capacityProvider.requires).toEqual(['require("@aws-sdk/client-sagemaker")']);

  const mlflow = path.join(out, "mlflow");
  fs.writeFileSync(mlflow, '#!/bin/sh\nmkdir -p "$6" && echo "flavors: {}" > "$6/MLmodel"\n', {
    mode: 0o755,
  });
  const result = JSON.parse(
    node(`
      (async () => {
        const me = require(${JSON.stringify(serialized.modelExportProvider.target)}).${serialized.modelExportProvider.exportName}();
        const inputs = { modelName: "iris", modelVersion: "3", trackingUri: "http://127.0.0.1:1", mlflowBin: ${JSON.stringify(mlflow)},
          scorerDir: ${JSON.stringify(path.join(ROOT, "scorer"))}, scorerHash: "h", contextRoot: ${JSON.stringify(path.join(out, "contexts"))} };
        const created = await me.create(inputs);
        const diff = await me.diff(created.id, created.outs, { ...inputs, modelVersion: "4" });
        const files = require("fs").readdirSync(created.outs.contextDir).sort();
        await me.delete(created.id, created.outs);
        const traffic = require(${JSON.stringify(serialized.trafficProvider.target)}).${serialized.trafficProvider.exportName}();
        const tdiff = await traffic.diff("id", { traffic: { blue: 100 }, endpointSpecHash: "a" }, { traffic: { blue: 50, green: 50 }, endpointSpecHash: "a" });
        const guard = require(${JSON.stringify(serialized.variantGuardProvider.target)}).${serialized.variantGuardProvider.exportName}();
        const unique = require(${JSON.stringify(serialized.uniqueSuffixProvider.target)}).${serialized.uniqueSuffixProvider.exportName}();
        const drawn = (await unique.create({ keepers: "k" })).outs.suffix;
        const gcheck = await guard.check({ endpointName: "e", instanceType: "a", autoscaled: true }, { endpointName: "e", instanceType: "b", autoscaled: true });
        // SageMakerCapacity from its serialized text, against a DescribeEndpoint stand-in on loopback.
        const http = require("http");
        const sm = http.createServer((req, res) => {
          req.resume();
          req.on("end", () => {
            res.writeHead(200, { "content-type": "application/x-amz-json-1.1" });
            res.end(JSON.stringify({ EndpointName: "iris", EndpointArn: "arn:aws:sagemaker:eu-west-1:1:endpoint/iris", EndpointConfigName: "c",
              EndpointStatus: "InService", CreationTime: 1, LastModifiedTime: 1, ProductionVariants: [{ VariantName: "AllTraffic", DesiredInstanceCount: 4 }] }));
          });
        });
        await new Promise((r) => sm.listen(0, "127.0.0.1", r));
        Object.assign(process.env, { AWS_ENDPOINT_URL_SAGEMAKER: "http://127.0.0.1:" + sm.address().port, AWS_ACCESS_KEY_ID: "AKIDEXAMPLE",
          AWS_SECRET_ACCESS_KEY: "not-a-secret", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" });
        const capacity = require(${JSON.stringify(serialized.capacityProvider.target)}).${serialized.capacityProvider.exportName}();
        const read = (await capacity.create({ region: "eu-west-1", endpointName: "iris", variantName: "AllTraffic", initialCount: 1, minInstances: 1, maxInstances: 8, rollKey: "k" })).outs.instanceCount;
        sm.close();
        console.log(JSON.stringify({ id: created.id, files, diff, gone: !require("fs").existsSync(created.outs.contextDir), tdiff, refused: gcheck.failures.map((f) => f.property), suffix: /^[0-9a-f]{8}$/.test(drawn), read }));
      })().catch((e) => { console.error(e); process.exit(1); });
    `),
  );
  expect(result).toEqual({
    id: "iris/3",
    files: [".dockerignore", "Dockerfile", "model", "requirements.txt", "serve.py"],
    diff: { changes: true, replaces: ["modelVersion"], deleteBeforeReplace: false },
    gone: true,
    tdiff: { changes: true, replaces: [], deleteBeforeReplace: false },
    refused: ["instanceType"],
    suffix: true,
    read: 4,
  });
}, 60_000);
