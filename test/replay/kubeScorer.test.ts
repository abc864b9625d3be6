/* eslint-disable @typescript-eslint/no-explicit-any -- recorded inputs and API payloads are untyped JSON */
/**
 * The StandaloneScorerKubernetes component's recorded manifests, applied to a real Kubernetes API server
 * (test/replay/kubeEnv.ts): server-side dry-run with strict field validation, then for real, and what
 * the server defaulted is read back. A selector that does not match the pod labels is rejected, as a
 * cluster would.
 */
import * as pulumi from "@pulumi/pulumi";
import { skipReason } from "../support/env";
import { mockRecorder } from "../support/mockRecorder";
import { KUBE_VERSION, kubeMissingReason, startKubeApi, type KubeApi } from "./kubeEnv";
import { createObject, manifest, readObject } from "./kubeReplay";

const { registrations, record, settle } = mockRecorder();
pulumi.runtime.setMocks(
  {
    newResource(args) {
      record(args);
      return { id: `${args.name}-id`, state: { ...args.inputs } };
    },
    call: () => ({}),
  },
  "model-serving",
  "replay-kube",
  false,
);

import { StandaloneScorerKubernetes } from "../../components/standaloneScorerKubernetes";

const why = skipReason(kubeMissingReason());
const describeReal = why ? describe.skip : describe;
const IMAGE = `registry.example.com/iris@sha256:${"d".repeat(64)}`;

describeReal(
  `StandaloneScorerKubernetes manifests on a real kube-apiserver v${KUBE_VERSION}`,
  () => {
    let api: KubeApi;
    let manifests: any[];

    beforeAll(async () => {
      api = await startKubeApi();
      new StandaloneScorerKubernetes("iris", {
        image: IMAGE,
        modelUri: "models:/iris/1",
        modelVersion: "1",
        sampleBody: { instances: [[5.1, 3.5, 1.4, 0.2]] },
        kubernetes: {
          namespace: "scoring",
          createNamespace: true,
          autoscaling: { min: 2, max: 5 },
          imagePullSecret: "registry-pull",
          ingress: { host: "iris.example.com", className: "nginx", tlsSecretName: "iris-tls" },
          workers: 1,
        },
      });
      await settle();
      const order = ["Namespace", "Deployment", "Service", "HorizontalPodAutoscaler"];
      manifests = registrations
        .filter((r) => r.type.startsWith("kubernetes:"))
        .map((r) => manifest(r.inputs))
        .sort((a, b) => {
          const ia = order.indexOf(a.kind);
          const ib = order.indexOf(b.kind);
          return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
        });
    }, 45 * 60_000);

    afterAll(async () => {
      await api?.stop();
    }, 60_000);

    test("every recorded manifest passes server-side dry-run with strict field validation", async () => {
      expect(manifests.map((m) => m.kind).sort()).toEqual([
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Namespace",
        "PodDisruptionBudget",
        "Service",
      ]);
      // The namespace must exist before a dry-run of the objects in it can be admitted.
      const ns = manifests.find((m) => m.kind === "Namespace");
      const dry = await createObject(api, ns, true);
      expect([dry.status, dry.body?.message]).toEqual([201, undefined]);
      expect((await createObject(api, ns, false)).status).toBe(201);
      for (const m of manifests.filter((x) => x.kind !== "Namespace")) {
        const res = await createObject(api, m, true);
        expect([m.kind, res.status, res.body?.message]).toEqual([m.kind, 201, undefined]);
      }
    });

    test("created for real; the server's defaults read back", async () => {
      for (const m of manifests.filter((x) => x.kind !== "Namespace")) {
        const res = await createObject(api, m, false);
        expect([m.kind, res.status, res.body?.message]).toEqual([m.kind, 201, undefined]);
      }
      const deployment = await readObject(
        api,
        manifests.find((m) => m.kind === "Deployment"),
      );
      expect(deployment.spec.strategy).toEqual({
        type: "RollingUpdate",
        rollingUpdate: { maxUnavailable: 0, maxSurge: 1 },
      });
      expect(deployment.spec.replicas).toBe(1); // defaulted; the HPA owns it (min 2) once controllers run
      expect(deployment.spec.progressDeadlineSeconds).toBe(600);
      const container = deployment.spec.template.spec.containers[0];
      expect(container.imagePullPolicy).toBe("IfNotPresent");
      expect(container.readinessProbe.httpGet).toEqual({
        path: "/ping",
        port: "http",
        scheme: "HTTP",
      });
      expect(container.livenessProbe.successThreshold).toBe(1);
      expect(container.env).toEqual([{ name: "SCORER_WORKERS", value: "1" }]);
      const service = await readObject(
        api,
        manifests.find((m) => m.kind === "Service"),
      );
      expect(service.spec.clusterIP).toMatch(/^10\.96\./);
      expect(service.spec.sessionAffinity).toBe("None");
      const hpa = await readObject(
        api,
        manifests.find((m) => m.kind === "HorizontalPodAutoscaler"),
      );
      expect(hpa.spec.metrics[0].resource.target.averageUtilization).toBe(70);
      const pdb = await readObject(
        api,
        manifests.find((m) => m.kind === "PodDisruptionBudget"),
      );
      expect(pdb.spec.maxUnavailable).toBe(1);
    });

    test("a selector that does not match the pod labels is rejected; so is an unknown field", async () => {
      const deployment = structuredClone(manifests.find((m) => m.kind === "Deployment"));
      deployment.metadata.name = "iris-mismatch";
      deployment.spec.selector.matchLabels = { "app.kubernetes.io/instance": "other" };
      const mismatch = await createObject(api, deployment, true);
      expect(mismatch.status).toBe(422);
      expect(mismatch.body.message).toContain("`selector` does not match template `labels`");
      const unknown = structuredClone(manifests.find((m) => m.kind === "Deployment"));
      unknown.metadata.name = "iris-unknown";
      unknown.spec.template.spec.containers[0].readinesProbe = {};
      const strict = await createObject(api, unknown, true);
      expect(strict.status).toBe(400);
      expect(strict.body.message).toContain(
        'unknown field "spec.template.spec.containers[0].readinesProbe"',
      );
    });
  },
);
