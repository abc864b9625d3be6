import { z } from "zod";
import { errorMap, formatIssues, wholeNumber } from "./issues";

/**
 * Settings of a standalone scorer on a Docker host (`targets.docker` of a model entry): the
 * one schema that the StandaloneScorer component validates its args with and that stack config can
 * validate the same key with. Strict: an unknown key is an error naming the keys accepted.
 */

/** Names the scorer image sets itself; `env` may not override them (use the dedicated fields). */
export const RESERVED_SCORER_ENV = [
  "HOST",
  "PORT",
  "MODEL_PATH",
  "SCORER_WORKERS",
  "SCORER_KEEP_ALIVE_SECONDS",
  "SCORER_MAX_BODY_BYTES",
  "SCORER_TIMEOUT_SECONDS",
];
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Docker's container name rule. */
const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/** The scorer's own settings (scorer/serve.py's SCORER_* variables), the same for every host kind. */
const scorerSettings = {
  /** Scorer workers (SCORER_WORKERS); default the CPU count the container or pod may use. */
  workers: wholeNumber(1, 256).optional(),
  /** Keep-alive of idle connections (SCORER_KEEP_ALIVE_SECONDS); default 300. */
  keepAliveSeconds: wholeNumber(1, 3600).optional(),
  /** Request body limit in bytes (SCORER_MAX_BODY_BYTES); default 6 MiB. */
  maxBodyBytes: wholeNumber(1).optional(),
  /** Scoring timeout (SCORER_TIMEOUT_SECONDS); default 55. */
  timeoutSeconds: wholeNumber(1, 3600).optional(),
  /** More environment variables of the container (not the reserved ones above). */
  env: z
    .record(z.string().regex(ENV_NAME, "must be an environment variable name"), z.string())
    .optional(),
};

/** `env` may not set what the scorer sets itself: an issue per reserved name, naming the field to use. */
function reservedEnvIssues(env: Record<string, string> | undefined, ctx: z.RefinementCtx): void {
  for (const key of Object.keys(env ?? {})) {
    if (RESERVED_SCORER_ENV.includes(key)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["env", key],
        message: `is set by the scorer itself; use ${dedicatedField(key)}`,
        params: { got: false },
      });
    }
  }
}

/** The Docker engine that builds (and for Docker, runs) the scorer. */
const dockerHostSettings = {
  /** Docker daemon: unix:///path, tcp://host:port or ssh://user@host[:port]; default DOCKER_HOST. */
  host: z
    .string()
    .regex(/^(unix|tcp|ssh|npipe):\/\/\S+$/, "must be a unix://, tcp:// or ssh:// Docker host")
    .optional(),
  /** Extra ssh options for an ssh:// host (e.g. ["-o", "StrictHostKeyChecking=yes"]). */
  sshOpts: z.array(z.string().min(1)).optional(),
};

/** `sshOpts` without an ssh:// host: an issue on `path` + sshOpts. */
function sshOptsIssues(
  t: { host?: string; sshOpts?: string[] },
  ctx: z.RefinementCtx,
  path: string[] = [],
): void {
  if (t.sshOpts && !t.host?.startsWith("ssh://")) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: [...path, "sshOpts"],
      message: "applies only to an ssh:// host",
      params: { got: false },
    });
  }
}

/** How the scorer image is built (the same for every host kind). */
const imageBuildSettings = {
  /** Base image of the build (BASE_IMAGE build arg); default the Dockerfile's public, pinned one. */
  baseImage: z.string().min(1).optional(),
  /** PEM bundle the build trusts for the package index, passed as the build secret `ca-bundle`. */
  caBundleFile: z.string().min(1).optional(),
  /** buildx builder the Docker provider builds with (it passes build secrets only through buildx). */
  buildxBuilder: z.string().min(1).optional(),
  /** Image platform, e.g. linux/amd64; default the Docker host's. */
  platform: z
    .string()
    .regex(/^[a-z0-9]+\/[a-z0-9]+(\/[a-z0-9]+)?$/, "must look like linux/amd64")
    .optional(),
};

/** A recorded `caBundleFile` needs `buildxBuilder`: an issue on `path` + caBundleFile. */
function caBundleIssues(
  t: { caBundleFile?: string; buildxBuilder?: string },
  ctx: z.RefinementCtx,
  path: string[] = [],
): void {
  if (t.caBundleFile && !t.buildxBuilder) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: [...path, "caBundleFile"],
      message: "needs buildxBuilder: the Docker provider passes build secrets only through buildx",
    });
  }
}

export const standaloneDockerSchema = z
  .object({
    ...dockerHostSettings,
    /** Host port the scorer is published on. */
    port: wholeNumber(1, 65535),
    /** Host address the port is bound to; default 127.0.0.1 (0.0.0.0 exposes it to the network). */
    bindAddress: z.string().regex(IPV4, "must be an IPv4 address such as 127.0.0.1").optional(),
    /** Host name the endpoint's URL and snippets use; default the bind address or the ssh host. */
    urlHost: z.string().min(1).optional(),
    /** Container name on the Docker host; default modelserving-<component name>. */
    containerName: z
      .string()
      .regex(
        CONTAINER_NAME,
        "must be letters, digits, '_', '.' or '-', starting with a letter or digit",
      )
      .optional(),
    /** Docker restart policy; default unless-stopped. */
    restart: z.enum(["no", "on-failure", "always", "unless-stopped"]).optional(),
    /** Memory limit in MiB. */
    memoryMb: wholeNumber(64).optional(),
    /** CPU limit (fractions allowed, e.g. 1.5); also what the scorer's default worker count follows. */
    cpus: z.number().positive("must be more than 0").optional(),
    ...imageBuildSettings,
    ...scorerSettings,
  })
  .strict()
  .superRefine((t, ctx) => {
    reservedEnvIssues(t.env, ctx);
    sshOptsIssues(t, ctx);
    caBundleIssues(t, ctx);
  });

function dedicatedField(env: string): string {
  const fields: Record<string, string> = {
    HOST: "bindAddress (the container always listens on 0.0.0.0)",
    PORT: "port (the container always listens on 8080)",
    MODEL_PATH: "nothing (the model is baked in at /opt/ml/model)",
    SCORER_WORKERS: "workers",
    SCORER_KEEP_ALIVE_SECONDS: "keepAliveSeconds",
    SCORER_MAX_BODY_BYTES: "maxBodyBytes",
    SCORER_TIMEOUT_SECONDS: "timeoutSeconds",
  };
  return fields[env];
}

export type StandaloneDockerConfig = z.infer<typeof standaloneDockerSchema>;

/** Parses the settings; every problem is one line `<where>.<key>: <why> (got <value>)`. */
export function parseStandaloneDocker(raw: unknown, where: string): StandaloneDockerConfig {
  const result = standaloneDockerSchema.safeParse(raw, { errorMap });
  if (!result.success) {
    throw new Error(
      formatIssues(result.error, raw, standaloneDockerSchema, `${where}.`).join("\n"),
    );
  }
  return result.data;
}

/** Kubernetes object names: DNS-1123 labels. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_LABEL_RULE =
  "must be a DNS label: at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit";
/** Kubernetes resource quantities (CPU "500m", "1.5"; memory "512Mi", "2G"). */
const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$/;
const quantity = z
  .string()
  .regex(QUANTITY, 'must be a Kubernetes quantity such as "500m" or "1Gi"');
const resources = z.object({ cpu: quantity.optional(), memory: quantity.optional() }).strict();

/**
 * Settings of a standalone scorer on Kubernetes (the component; `targets.kubernetes` adds `image`): a
 * Deployment of the scorer image (which must be in a registry the cluster pulls from), its Service,
 * HorizontalPodAutoscaler, PodDisruptionBudget and an optional Ingress.
 */
const kubernetesSettings = {
  /** Namespace of every object; default "default". */
  namespace: z.string().regex(DNS_LABEL, DNS_LABEL_RULE).optional(),
  /** Create the namespace (true) or use an existing one (false, the default). */
  createNamespace: z.boolean().optional(),
  /** Name of the Deployment, Service, HPA, PDB and Ingress; default the component name. */
  appName: z.string().regex(DNS_LABEL, DNS_LABEL_RULE).optional(),
  /** Replicas when there is no autoscaling; default 2. */
  replicas: wholeNumber(1, 1000).optional(),
  /** CPU/memory requests of the scorer container; default cpu 500m, memory 1Gi. */
  requests: resources.optional(),
  /** CPU/memory limits of the scorer container; default memory 2Gi (no CPU limit). */
  limits: resources.optional(),
  /** HorizontalPodAutoscaler (autoscaling/v2) on CPU utilization of the requests. */
  autoscaling: z
    .object({
      min: wholeNumber(1, 1000),
      max: wholeNumber(1, 1000),
      targetCpuPercent: wholeNumber(1, 100).optional(),
    })
    .strict()
    .optional(),
  /** Name of an existing docker-registry Secret in the namespace, for pulling the image. */
  imagePullSecret: z.string().regex(DNS_LABEL, DNS_LABEL_RULE).optional(),
  /** An Ingress in front of the Service. */
  ingress: z
    .object({
      host: z
        .string()
        .regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,}$/, "must be a DNS host name"),
      className: z.string().min(1).optional(),
      /** TLS Secret for the host; the external URL is https:// when set. */
      tlsSecretName: z.string().regex(DNS_LABEL, DNS_LABEL_RULE).optional(),
    })
    .strict()
    .optional(),
  ...scorerSettings,
};

function kubernetesIssues(
  t: {
    env?: Record<string, string>;
    autoscaling?: { min: number; max: number };
    replicas?: number;
  },
  ctx: z.RefinementCtx,
): void {
  reservedEnvIssues(t.env, ctx);
  if (t.autoscaling && t.autoscaling.max < t.autoscaling.min) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: ["autoscaling", "max"],
      message: `must be at least autoscaling.min (${t.autoscaling.min})`,
    });
  }
  if (t.autoscaling && t.replicas !== undefined) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: ["replicas"],
      message:
        "set either replicas or autoscaling, not both (the autoscaler owns the replica count)",
    });
  }
}

export const standaloneKubernetesSchema = z
  .object(kubernetesSettings)
  .strict()
  .superRefine(kubernetesIssues);

/**
 * Where the Kubernetes target's image goes: built by a Docker engine (as for `targets.docker`) and
 * pushed to `repository`, a registry the cluster pulls from; the Deployment names it by digest.
 * Credentials are the Docker engine client's own (`docker login <registry>` or a credential helper).
 */
const kubernetesImageSchema = z
  .object({
    /** Repository the image is pushed to, e.g. registry.example.com/ml/iris-scorer (no tag). */
    repository: z
      .string()
      .regex(
        /^[a-z0-9.-]+(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)+$/,
        "must be <registry>[:port]/<path> in lowercase, without a tag or digest",
      ),
    /** The registry has a self-signed certificate (skip verification on push). */
    insecureSkipVerify: z.boolean().optional(),
    ...dockerHostSettings,
    ...imageBuildSettings,
  })
  .strict()
  .superRefine((t, ctx) => {
    sshOptsIssues(t, ctx);
    caBundleIssues(t, ctx);
  });

/**
 * `targets.kubernetes` of a model entry in stack config: the component's settings plus `image`, where
 * the program pushes the scorer image for the cluster.
 */
export const kubernetesTargetSchema = z
  .object({ image: kubernetesImageSchema, ...kubernetesSettings })
  .strict()
  .superRefine(kubernetesIssues);

export type KubernetesImageConfig = z.infer<typeof kubernetesImageSchema>;
export type KubernetesTargetConfig = z.infer<typeof kubernetesTargetSchema>;

export type StandaloneKubernetesConfig = z.infer<typeof standaloneKubernetesSchema>;

/** Parses the settings; every problem is one line `<where>.<key>: <why> (got <value>)`. */
export function parseStandaloneKubernetes(raw: unknown, where: string): StandaloneKubernetesConfig {
  const result = standaloneKubernetesSchema.safeParse(raw, { errorMap });
  if (!result.success) {
    throw new Error(
      formatIssues(result.error, raw, standaloneKubernetesSchema, `${where}.`).join("\n"),
    );
  }
  return result.data;
}

/** Parses the image settings; every problem is one line `<where>.<key>: <why> (got <value>)`. */
export function parseKubernetesImage(raw: unknown, where: string): KubernetesImageConfig {
  const result = kubernetesImageSchema.safeParse(raw, { errorMap });
  if (!result.success) {
    throw new Error(formatIssues(result.error, raw, kubernetesImageSchema, `${where}.`).join("\n"));
  }
  return result.data;
}
