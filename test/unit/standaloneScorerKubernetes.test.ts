/* eslint-disable @typescript-eslint/no-explicit-any -- mock registrations are untyped JSON */
import * as pulumi from "@pulumi/pulumi";
import { mockRecorder, value } from "../support/mockRecorder";

const { registrations, record, settle, of, one } = mockRecorder();
pulumi.runtime.setMocks(
  {
    newResource(args) {
      record(args);
      return { id: `${args.name}-id`, state: { ...args.inputs } };
    },
    call: () => ({}),
  },
  "model-serving",
  "kubernetes",
  false,
);

import { StandaloneScorerKubernetes } from "../../components/standaloneScorerKubernetes";
import { standaloneSnippets } from "../../components/snippets/standalone";

const IMAGE = `123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris@sha256:${"d".repeat(64)}`;
const BODY = { instances: [[5.1, 3.5, 1.4, 0.2]] };
const base = { image: IMAGE, modelUri: "models:/iris/3", modelVersion: "3", sampleBody: BODY };
const LABELS = {
  "app.kubernetes.io/name": "modelserving-scorer",
  "app.kubernetes.io/instance": "iris",
};
const probe = (periodSeconds: number, failureThreshold: number) => ({
  httpGet: { path: "/ping", port: "http" },
  periodSeconds,
  timeoutSeconds: 5,
  failureThreshold,
});

describe("StandaloneScorerKubernetes (mocks)", () => {
  beforeEach(() => registrations.splice(0));

  test("Deployment, Service, HPA, PDB and Ingress with exactly these specs", async () => {
    const scorer = new StandaloneScorerKubernetes("iris", {
      ...base,
      kubernetes: {
        namespace: "scoring",
        createNamespace: true,
        autoscaling: { min: 2, max: 6, targetCpuPercent: 60 },
        requests: { cpu: "1" },
        limits: { memory: "3Gi" },
        imagePullSecret: "ecr-pull",
        ingress: { host: "iris.example.com", className: "nginx", tlsSecretName: "iris-tls" },
        timeoutSeconds: 30,
      },
    });
    const endpoint = await value(scorer.endpoint);
    await settle();
    expect(
      of("iris")
        .map((r) => r.type)
        .sort(),
    ).toEqual([
      "kubernetes:apps/v1:Deployment",
      "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
      "kubernetes:core/v1:Namespace",
      "kubernetes:core/v1:Service",
      "kubernetes:networking.k8s.io/v1:Ingress",
      "kubernetes:policy/v1:PodDisruptionBudget",
    ]);
    const metadata = { name: "iris", namespace: "scoring", labels: LABELS };
    const deployment = one("iris", "kubernetes:apps/v1:Deployment").inputs;
    expect(deployment.metadata).toEqual(metadata);
    expect(deployment.spec).toEqual({
      selector: { matchLabels: LABELS },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels: LABELS },
        spec: {
          imagePullSecrets: [{ name: "ecr-pull" }],
          securityContext: { runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001 },
          terminationGracePeriodSeconds: 40,
          containers: [
            {
              name: "scorer",
              image: IMAGE,
              args: ["serve"],
              ports: [{ name: "http", containerPort: 8080 }],
              env: [{ name: "SCORER_TIMEOUT_SECONDS", value: "30" }],
              resources: {
                requests: { cpu: "1", memory: "1Gi" },
                limits: { memory: "3Gi" },
              },
              startupProbe: probe(5, 60),
              readinessProbe: probe(5, 2),
              livenessProbe: probe(10, 3),
              lifecycle: { preStop: { exec: { command: ["sleep", "5"] } } },
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
            },
          ],
        },
      },
    });
    expect(one("iris", "kubernetes:core/v1:Service").inputs.spec).toEqual({
      type: "ClusterIP",
      selector: LABELS,
      ports: [{ name: "http", port: 80, targetPort: "http", protocol: "TCP" }],
    });
    expect(one("iris", "kubernetes:autoscaling/v2:HorizontalPodAutoscaler").inputs.spec).toEqual({
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "iris" },
      minReplicas: 2,
      maxReplicas: 6,
      metrics: [
        {
          type: "Resource",
          resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 60 } },
        },
      ],
    });
    expect(one("iris", "kubernetes:policy/v1:PodDisruptionBudget").inputs.spec).toEqual({
      maxUnavailable: 1,
      selector: { matchLabels: LABELS },
    });
    expect(one("iris", "kubernetes:networking.k8s.io/v1:Ingress").inputs.spec).toEqual({
      ingressClassName: "nginx",
      tls: [{ hosts: ["iris.example.com"], secretName: "iris-tls" }],
      rules: [
        {
          host: "iris.example.com",
          http: {
            paths: [
              {
                path: "/",
                pathType: "Prefix",
                backend: { service: { name: "iris", port: { name: "http" } } },
              },
            ],
          },
        },
      ],
    });
    expect(await value(scorer.inClusterUrl)).toBe(
      "http://iris.scoring.svc.cluster.local/invocations",
    );
    expect(endpoint).toEqual({
      target: "kubernetes",
      url: "https://iris.example.com/invocations",
      modelUri: "models:/iris/3",
      version: "3",
      ...standaloneSnippets("https://iris.example.com/invocations", BODY),
    });
  });

  test("defaults: 2 replicas, no HPA, no ingress, namespace default (not created)", async () => {
    const scorer = new StandaloneScorerKubernetes("iris", { ...base, kubernetes: {} });
    const endpoint = await value(scorer.endpoint);
    await settle();
    expect(
      of("iris")
        .map((r) => r.type)
        .sort(),
    ).toEqual([
      "kubernetes:apps/v1:Deployment",
      "kubernetes:core/v1:Service",
      "kubernetes:policy/v1:PodDisruptionBudget",
    ]);
    const deployment = one("iris", "kubernetes:apps/v1:Deployment").inputs;
    expect(deployment.spec.replicas).toBe(2);
    expect(deployment.metadata.namespace).toBe("default");
    expect(deployment.spec.template.spec.imagePullSecrets).toBeUndefined();
    expect(endpoint.url).toBe("http://iris.default.svc.cluster.local/invocations");
    expect(await value(scorer.externalUrl)).toBeUndefined();
  });

  test("settings are validated first; messages name key and value", () => {
    const bad =
      (kubernetes: unknown, name = "iris") =>
      () =>
        new StandaloneScorerKubernetes(name, { ...base, kubernetes: kubernetes as any });
    expect(bad({ autoscaling: { min: 4, max: 2 } })).toThrow(
      "StandaloneScorerKubernetes iris: kubernetes.autoscaling.max: must be at least autoscaling.min (4) (got 2)",
    );
    expect(bad({ replicas: 3, autoscaling: { min: 1, max: 2 } })).toThrow(
      "StandaloneScorerKubernetes iris: kubernetes.replicas: set either replicas or autoscaling, not both (the autoscaler owns the replica count) (got 3)",
    );
    expect(bad({ namespace: "Scoring" })).toThrow(
      `StandaloneScorerKubernetes iris: kubernetes.namespace: must be a DNS label: at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit (got "Scoring")`,
    );
    expect(bad({ requests: { cpu: "half" } })).toThrow(
      'StandaloneScorerKubernetes iris: kubernetes.requests.cpu: must be a Kubernetes quantity such as "500m" or "1Gi" (got "half")',
    );
    expect(bad({ env: { SCORER_WORKERS: "2" } })).toThrow(
      "StandaloneScorerKubernetes iris: kubernetes.env.SCORER_WORKERS: is set by the scorer itself; use workers",
    );
    expect(bad({}, "Iris_Prod")).toThrow(
      'StandaloneScorerKubernetes Iris_Prod: kubernetes.appName is required when the component name is not a DNS label (got "Iris_Prod")',
    );
    expect(registrations).toEqual([]);
  });
});

describe("the example stack Pulumi.kubernetes.yaml", () => {
  test("its targets.kubernetes is valid settings (without the image, which the program pushes): HPA and Ingress, https external URL", async () => {
    const yaml = require("js-yaml");
    const fs = require("fs");
    const path = require("path");
    const stack = yaml.load(
      fs.readFileSync(path.resolve(__dirname, "../../Pulumi.kubernetes.yaml"), "utf8"),
    );
    const { image, ...settings } = stack.config["model-serving:models"][0].targets.kubernetes;
    expect(image).toEqual({
      repository: "registry.example.com/ml/iris-scorer",
      platform: "linux/amd64",
    });
    const scorer = new StandaloneScorerKubernetes("iris", { ...base, kubernetes: settings });
    expect(await value(scorer.externalUrl)).toBe("https://iris.ml.example.com/invocations");
    expect(await value(scorer.inClusterUrl)).toBe(
      "http://iris.scoring.svc.cluster.local/invocations",
    );
  });
});
