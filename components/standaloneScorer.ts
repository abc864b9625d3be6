import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { EndpointEntry } from "./endpoint";
import { declareScorerBuild, dockerHostProvider, type ScorerSourceArgs } from "./scorerBuild";
import { standaloneInvocationsUrl, standaloneSnippets } from "./snippets/standalone";
import { parseStandaloneDocker, type StandaloneDockerConfig } from "../config/standaloneTargets";

/** The scorer image's container port (SageMaker's and Azure ML's contract; scorer/Dockerfile). */
export const SCORER_CONTAINER_PORT = 8080;
/** The container health check: serve.py pings its own /ping (the image has no curl). */
export const SCORER_HEALTHCHECK = {
  tests: ["CMD", "python", "/opt/scorer/serve.py", "ping"],
  interval: "10s",
  timeout: "5s",
  retries: 3,
  // Workers load the model before /ping answers; a big model takes a while.
  startPeriod: "120s",
};
/** How long `pulumi up` waits for the container to be healthy. */
export const SCORER_WAIT_TIMEOUT_SECONDS = 300;

export interface StandaloneScorerArgs extends ScorerSourceArgs {
  /** The Docker host and container settings (config/standaloneTargets.ts), validated here. */
  readonly docker: StandaloneDockerConfig;
  /** Request body of the generated snippets. */
  readonly sampleBody: unknown;
}

/** `host` of ssh://user@host:port, tcp://host:port; undefined for unix sockets. */
export function dockerHostName(host: string | undefined): string | undefined {
  const m = host?.match(/^(?:ssh|tcp):\/\/(?:[^@/]*@)?(\[[^\]]+\]|[^:/]+)/);
  return m ? m[1].replace(/^\[|\]$/g, "") : undefined;
}

/** The host name clients use: urlHost, else a specific bind address, else the Docker host's name. */
export function scorerUrlHost(cfg: StandaloneDockerConfig): string {
  const bind = cfg.bindAddress ?? "127.0.0.1";
  return cfg.urlHost ?? (bind !== "0.0.0.0" ? bind : (dockerHostName(cfg.host) ?? "127.0.0.1"));
}

/** The container's environment as Docker's KEY=VALUE list: the SCORER_* settings, then `env`. */
export function scorerEnvs(
  cfg: Pick<
    StandaloneDockerConfig,
    "workers" | "keepAliveSeconds" | "maxBodyBytes" | "timeoutSeconds" | "env"
  >,
): string[] {
  const settings: [string, number | undefined][] = [
    ["SCORER_WORKERS", cfg.workers],
    ["SCORER_KEEP_ALIVE_SECONDS", cfg.keepAliveSeconds],
    ["SCORER_MAX_BODY_BYTES", cfg.maxBodyBytes],
    ["SCORER_TIMEOUT_SECONDS", cfg.timeoutSeconds],
  ];
  return [
    ...settings.filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`),
    ...Object.entries(cfg.env ?? {})
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}=${v}`),
  ];
}

/**
 * A registered model version as a REST endpoint on a Docker host: the model exported into a build
 * context on this machine (ModelExport), the scorer image built from it by the Docker host
 * (`docker.RemoteImage`: unlike `docker.Image` it passes build secrets, and the image stays on the host,
 * no registry needed), and a container publishing the scorer's port with a restart policy, a health
 * check on /ping, limits and environment. The container runs the image by its id (sha256), so a new
 * image replaces the container. `docker.host` may be ssh://: the context is sent from this machine.
 */
export class StandaloneScorer extends pulumi.ComponentResource {
  /** Scoring URL: http://<host>:<port>/invocations. */
  public readonly url: pulumi.Output<string>;
  /** The image's id on the Docker host (sha256:...), content-addressed. */
  public readonly imageId: pulumi.Output<string>;
  /** The container's name on the Docker host. */
  public readonly containerName: pulumi.Output<string>;
  /** The stack output entry: url, modelUri, version, curl, python. */
  public readonly endpoint: pulumi.Output<EndpointEntry>;

  constructor(name: string, args: StandaloneScorerArgs, opts?: pulumi.ComponentResourceOptions) {
    const cfg = parseStandaloneDocker(args.docker, `StandaloneScorer ${name}: docker`);
    super("modelserving:docker:StandaloneScorer", name, {}, opts);

    const provider = dockerHostProvider(name, cfg, this);
    const childOpts: pulumi.CustomResourceOptions = provider
      ? { parent: this, provider }
      : { parent: this };
    const { exported, image } = declareScorerBuild(
      name,
      { ...args, repository: pulumi.interpolate`modelserving/${args.modelName}` },
      cfg,
      this,
      childOpts,
    );

    const containerName = cfg.containerName ?? `modelserving-${name}`;
    const container = new docker.Container(
      `${name}-container`,
      {
        name: containerName,
        image: image.imageId,
        ports: [
          {
            internal: SCORER_CONTAINER_PORT,
            external: cfg.port,
            ip: cfg.bindAddress ?? "127.0.0.1",
            protocol: "tcp",
          },
        ],
        restart: cfg.restart ?? "unless-stopped",
        memory: cfg.memoryMb,
        cpus: cfg.cpus === undefined ? undefined : String(cfg.cpus),
        envs: scorerEnvs(cfg),
        healthcheck: SCORER_HEALTHCHECK,
        // `up` returns once the health check passes, or fails naming the container.
        wait: true,
        waitTimeout: SCORER_WAIT_TIMEOUT_SECONDS,
        mustRun: true,
        // uvicorn finishes in-flight requests on SIGTERM.
        destroyGraceSeconds: 30,
        labels: [{ label: "model-serving.component", value: name }],
      },
      childOpts,
    );

    const url = standaloneInvocationsUrl(scorerUrlHost(cfg), cfg.port);
    this.url = pulumi.output(url);
    this.imageId = image.imageId;
    this.containerName = container.name;
    this.endpoint = pulumi
      .all([exported.modelUri, pulumi.output(args.modelVersion), container.id])
      .apply(([modelUri, version]) => ({
        target: "docker",
        url,
        modelUri,
        version,
        ...standaloneSnippets(url, args.sampleBody),
      }));
    this.registerOutputs({
      url: this.url,
      imageId: this.imageId,
      containerName: this.containerName,
      endpoint: this.endpoint,
    });
  }
}
