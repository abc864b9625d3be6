import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { EndpointEntry } from "./endpoint";
import { standaloneSnippets } from "./snippets/standalone";
import { SCORER_CONTAINER_PORT, scorerEnvs } from "./standaloneScorer";
import {
  parseStandaloneKubernetes,
  type StandaloneKubernetesConfig,
} from "../config/standaloneTargets";

/** The scorer image's non-root uid (scorer/Dockerfile, target standalone). */
export const SCORER_UID = 10001;

export interface StandaloneScorerKubernetesArgs {
  /** The scorer image, digest-pinned (repo@sha256:...), in a registry the cluster pulls from. */
  readonly image: pulumi.Input<string>;
  /** `models:/<name>/<version>` the image serves (for the endpoint entry). */
  readonly modelUri: pulumi.Input<string>;
  /** The model version (for the endpoint entry). */
  readonly modelVersion: pulumi.Input<string>;
  /** The Kubernetes settings (config/standaloneTargets.ts), validated here. */
  readonly kubernetes: StandaloneKubernetesConfig;
  /** Request body of the generated snippets. */
  readonly sampleBody: unknown;
}

/** The container's env as Kubernetes EnvVars, from the same list the Docker target uses. */
export function scorerEnvVars(cfg: StandaloneKubernetesConfig): { name: string; value: string }[] {
  return scorerEnvs(cfg).map((kv) => {
    const i = kv.indexOf("=");
    return { name: kv.slice(0, i), value: kv.slice(i + 1) };
  });
}

/**
 * A scorer image on Kubernetes: Deployment (probes on /ping, resources, rolling update that never
 * drops below the desired count: maxUnavailable 0), Service, HorizontalPodAutoscaler (autoscaling/v2)
 * or a fixed replica count, PodDisruptionBudget, optional Ingress. Every object gets a fixed name
 * (`appName`) so the in-cluster URL is stable; pass a `provider` in opts for a specific cluster.
 */
export class StandaloneScorerKubernetes extends pulumi.ComponentResource {
  /** http://<service>.<namespace>.svc.cluster.local/invocations */
  public readonly inClusterUrl: pulumi.Output<string>;
  /** The Ingress URL (https when TLS is set), or undefined without an ingress. */
  public readonly externalUrl: pulumi.Output<string | undefined>;
  /** The stack output entry; its url and snippets use the external URL when there is one. */
  public readonly endpoint: pulumi.Output<EndpointEntry>;

  constructor(
    name: string,
    args: StandaloneScorerKubernetesArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    const cfg = parseStandaloneKubernetes(
      args.kubernetes,
      `StandaloneScorerKubernetes ${name}: kubernetes`,
    );
    const appName = cfg.appName ?? name;
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(appName)) {
      throw new Error(
        `StandaloneScorerKubernetes ${name}: kubernetes.appName is required when the component name is not a DNS label (got ${JSON.stringify(appName)})`,
      );
    }
    super("modelserving:kubernetes:StandaloneScorer", name, {}, opts);
    const namespaceName = cfg.namespace ?? "default";
    const dependsOn: pulumi.Resource[] = [];
    if (cfg.createNamespace) {
      dependsOn.push(
        new k8s.core.v1.Namespace(
          `${name}-namespace`,
          { metadata: { name: namespaceName } },
          { parent: this },
        ),
      );
    }
    const childOpts = { parent: this, dependsOn };
    const labels = {
      "app.kubernetes.io/name": "modelserving-scorer",
      "app.kubernetes.io/instance": appName,
    };
    const metadata = { name: appName, namespace: namespaceName, labels };
    const probe = (periodSeconds: number, failureThreshold: number) => ({
      httpGet: { path: "/ping", port: "http" },
      periodSeconds,
      timeoutSeconds: 5,
      failureThreshold,
    });

    new k8s.apps.v1.Deployment(
      `${name}-deployment`,
      {
        metadata,
        spec: {
          replicas: cfg.autoscaling ? undefined : (cfg.replicas ?? 2),
          selector: { matchLabels: labels },
          strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
          template: {
            metadata: { labels },
            spec: {
              imagePullSecrets: cfg.imagePullSecret ? [{ name: cfg.imagePullSecret }] : undefined,
              securityContext: {
                runAsNonRoot: true,
                runAsUser: SCORER_UID,
                runAsGroup: SCORER_UID,
              },
              // uvicorn finishes in-flight requests on SIGTERM; the preStop pause lets the Service
              // stop routing to the pod first.
              terminationGracePeriodSeconds: 40,
              containers: [
                {
                  name: "scorer",
                  image: args.image,
                  args: ["serve"],
                  ports: [{ name: "http", containerPort: SCORER_CONTAINER_PORT }],
                  env: scorerEnvVars(cfg),
                  resources: {
                    requests: { cpu: "500m", memory: "1Gi", ...cfg.requests },
                    limits: { memory: "2Gi", ...cfg.limits },
                  },
                  // The model loads before /ping answers: up to 5 minutes.
                  startupProbe: probe(5, 60),
                  readinessProbe: probe(5, 2),
                  livenessProbe: probe(10, 3),
                  lifecycle: { preStop: { exec: { command: ["sleep", "5"] } } },
                  securityContext: {
                    allowPrivilegeEscalation: false,
                    capabilities: { drop: ["ALL"] },
                  },
                },
              ],
            },
          },
        },
      },
      childOpts,
    );

    new k8s.core.v1.Service(
      `${name}-service`,
      {
        metadata,
        spec: {
          type: "ClusterIP",
          selector: labels,
          ports: [{ name: "http", port: 80, targetPort: "http", protocol: "TCP" }],
        },
      },
      childOpts,
    );

    if (cfg.autoscaling) {
      new k8s.autoscaling.v2.HorizontalPodAutoscaler(
        `${name}-hpa`,
        {
          metadata,
          spec: {
            scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: appName },
            minReplicas: cfg.autoscaling.min,
            maxReplicas: cfg.autoscaling.max,
            metrics: [
              {
                type: "Resource",
                resource: {
                  name: "cpu",
                  target: {
                    type: "Utilization",
                    averageUtilization: cfg.autoscaling.targetCpuPercent ?? 70,
                  },
                },
              },
            ],
          },
        },
        childOpts,
      );
    }

    // One pod at a time may be evicted (node drains), never all of them.
    new k8s.policy.v1.PodDisruptionBudget(
      `${name}-pdb`,
      { metadata, spec: { maxUnavailable: 1, selector: { matchLabels: labels } } },
      childOpts,
    );

    let externalUrl: string | undefined;
    if (cfg.ingress) {
      const ing = cfg.ingress;
      new k8s.networking.v1.Ingress(
        `${name}-ingress`,
        {
          metadata,
          spec: {
            ingressClassName: ing.className,
            tls: ing.tlsSecretName
              ? [{ hosts: [ing.host], secretName: ing.tlsSecretName }]
              : undefined,
            rules: [
              {
                host: ing.host,
                http: {
                  paths: [
                    {
                      path: "/",
                      pathType: "Prefix",
                      backend: { service: { name: appName, port: { name: "http" } } },
                    },
                  ],
                },
              },
            ],
          },
        },
        childOpts,
      );
      externalUrl = `${ing.tlsSecretName ? "https" : "http"}://${ing.host}/invocations`;
    }

    const inClusterUrl = `http://${appName}.${namespaceName}.svc.cluster.local/invocations`;
    const url = externalUrl ?? inClusterUrl;
    this.inClusterUrl = pulumi.output(inClusterUrl);
    this.externalUrl = pulumi.output(externalUrl);
    this.endpoint = pulumi
      .all([pulumi.output(args.modelUri), pulumi.output(args.modelVersion)])
      .apply(([modelUri, version]) => ({
        target: "kubernetes",
        url,
        modelUri,
        version,
        ...standaloneSnippets(url, args.sampleBody),
      }));
    this.registerOutputs({
      inClusterUrl: this.inClusterUrl,
      externalUrl: this.externalUrl,
      endpoint: this.endpoint,
    });
  }
}
