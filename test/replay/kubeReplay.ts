/* eslint-disable @typescript-eslint/no-explicit-any -- API payloads are untyped JSON */
import type { MockInputs } from "../support/mockRecorder";
import type { KubeApi } from "./kubeEnv";

/**
 * Replays recorded `kubernetes:*` registrations on a real API server: each recorded object is POSTed
 * as the provider would create it, first with server-side dry-run and strict field validation (an
 * unknown or duplicate field is an error, not a warning), then for real; what the server stored (its
 * defaults included) is read back.
 */

/** The REST collection of a kind (the kinds the scorer components declare; others fail loudly). */
export function collectionPath(apiVersion: string, kind: string, namespace?: string): string {
  const plural: Record<string, string> = {
    Namespace: "namespaces",
    Deployment: "deployments",
    Service: "services",
    HorizontalPodAutoscaler: "horizontalpodautoscalers",
    PodDisruptionBudget: "poddisruptionbudgets",
    Ingress: "ingresses",
    Secret: "secrets",
  };
  if (!plural[kind]) {
    throw new Error(`kube replay: no REST mapping for kind ${kind}`);
  }
  const group = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  return kind === "Namespace"
    ? `${group}/${plural[kind]}`
    : `${group}/namespaces/${namespace ?? "default"}/${plural[kind]}`;
}

/** The manifest of a recorded registration: its inputs as the API takes them. */
export function manifest(inputs: MockInputs): MockInputs {
  const { apiVersion, kind, metadata, ...rest } = inputs;
  return { apiVersion, kind, metadata, ...rest };
}

export async function createObject(
  api: KubeApi,
  obj: MockInputs,
  dryRun: boolean,
): Promise<{ status: number; body: any }> {
  const query = `fieldValidation=Strict${dryRun ? "&dryRun=All" : ""}`;
  return api.request(
    "POST",
    `${collectionPath(obj.apiVersion, obj.kind, obj.metadata?.namespace)}?${query}`,
    obj,
  );
}

export async function readObject(api: KubeApi, obj: MockInputs): Promise<any> {
  const res = await api.request(
    "GET",
    `${collectionPath(obj.apiVersion, obj.kind, obj.metadata?.namespace)}/${obj.metadata.name}`,
  );
  if (res.status !== 200) {
    throw new Error(
      `kube replay: GET ${obj.kind} ${obj.metadata.name}: ${res.status} ${JSON.stringify(res.body)}`,
    );
  }
  return res.body;
}
