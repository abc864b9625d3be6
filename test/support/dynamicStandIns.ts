import * as pulumi from "@pulumi/pulumi";

/**
 * Pulumi's closure serializer cannot run inside jest, so mock tests swap each dynamic resource class for
 * a CustomResource registered under the same type token with the same inputs. The real serialization is
 * proven by the engine tests (a real `pulumi up`).
 */
export function dynamicStandIn(typeName: string, outputs: string[]) {
  return class extends pulumi.CustomResource {
    constructor(name: string, args: Record<string, unknown>, opts?: pulumi.CustomResourceOptions) {
      const props: Record<string, unknown> = { ...args };
      for (const o of outputs) {
        props[o] ??= undefined;
      }
      super(`pulumi-nodejs:dynamic/modelserving:${typeName}`, name, props, opts);
    }
  };
}

/*
 * Ready-made `jest.mock` factories for the providers the program registers. jest hoists `jest.mock` above
 * the imports, so a factory may not close over anything from the test file; each test file calls e.g.
 *   jest.mock("../../providers/modelVersion", () =>
 *     jest.requireActual("../support/dynamicStandIns").modelVersionModule());
 * and the providers' actual modules are required here, lazily, only where the stand-in keeps their other
 * exports.
 */

/** providers/modelVersion with ModelVersion swapped for its stand-in. */
export function modelVersionModule() {
  return {
    ModelVersion: dynamicStandIn("ModelVersion", ["version", "modelUri", "runId", "storageSource"]),
  };
}

/** providers/modelReference with ModelReference swapped for its stand-in. */
export function modelReferenceModule() {
  return {
    ModelReference: dynamicStandIn("ModelReference", [
      "resolvedVersion",
      "modelUri",
      "storageSource",
      "runId",
      "servingExample",
    ]),
  };
}

/** providers/modelDeployment with ModelDeployment swapped for its stand-in. */
export function modelDeploymentModule() {
  return { ModelDeployment: dynamicStandIn("ModelDeployment", ["url", "baseUrl", "servedPort"]) };
}

/** providers/localMlflowServer with LocalMlflowServer swapped for its stand-in. */
export function localMlflowServerModule() {
  return { LocalMlflowServer: dynamicStandIn("LocalMlflowServer", ["trackingUri", "pid"]) };
}

/** providers/modelExport (its other exports kept) with ModelExport swapped for its stand-in. */
export function modelExportModule() {
  return {
    ...jest.requireActual<object>("../../providers/modelExport"),
    ModelExport: dynamicStandIn("ModelExport", ["contextDir", "contextHash", "modelUri"]),
  };
}

/** providers/azureMlTraffic (its other exports kept) with AzureMlTraffic swapped for its stand-in. */
export function azureMlTrafficModule() {
  return {
    ...jest.requireActual<object>("../../providers/azureMlTraffic"),
    AzureMlTraffic: dynamicStandIn("AzureMlTraffic", ["traffic"]),
  };
}

/** providers/localAgent with LocalAgent swapped for its stand-in. */
export function localAgentModule() {
  return { LocalAgent: dynamicStandIn("LocalAgent", ["url", "instance", "pid"]) };
}

/** providers/agentDeployment with AgentDeployment swapped for its stand-in. */
export function agentDeploymentModule() {
  return { AgentDeployment: dynamicStandIn("AgentDeployment", ["url", "pathUrl", "servedPort"]) };
}

/** providers/hostProvisioning with HostProvisioning swapped for its stand-in. */
export function hostProvisioningModule() {
  return { HostProvisioning: dynamicStandIn("HostProvisioning", ["hash"]) };
}

/** providers/remoteMlflowServer with RemoteMlflowServer swapped for its stand-in. */
export function remoteMlflowServerModule() {
  return {
    RemoteMlflowServer: dynamicStandIn("RemoteMlflowServer", [
      "trackingUri",
      "supervisor",
      "logFile",
    ]),
  };
}

/** providers/remoteAgent with RemoteAgent swapped for its stand-in. */
export function remoteAgentModule() {
  return { RemoteAgent: dynamicStandIn("RemoteAgent", ["url", "supervisor", "logFile"]) };
}
