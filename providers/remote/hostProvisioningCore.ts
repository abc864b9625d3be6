import { containsUnknown, UNKNOWN } from "../diffKeys";
import { withSsh } from "../ssh/client";
import { buildCommand } from "../ssh/command";
import { describe, SshConnection } from "../ssh/connection";
import { shQuote } from "../ssh/quote";
import { provisionHost } from "./provision";
import { ProvisionArgs, renderProvisioning } from "./provisionScript";

/**
 * Core of the HostProvisioning dynamic provider: a provisioning profile applied to a host over SSH
 * (provision.ts, provisionScript.ts).
 *
 * Contract
 * - id: `<host>:<sshPort><baseDir>` (one layout on one host).
 * - replace: another host, SSH port or layout (serviceUser, baseDir, dataDir).
 * - update in place: a changed rendered script (profile, extra apt/pip packages, postgresql) re-runs it
 *   (idempotent: only missing apt packages, pip pins into the same venv); a changed connection (user,
 *   key, passphrase, host key pin) or timeout is only recorded.
 * - create: runs the script; an already provisioned host with the same script is the fast path (~0.2 s).
 * - read: the host's stamp (<baseDir>/provisioned.sha256) must hold the state's hash; otherwise (wiped,
 *   re-provisioned by hand with something else) the provisioning is gone, so refresh + up re-runs it.
 *   An unreachable host is an error (refresh fails, naming user@host:port), never "gone".
 * - delete: changes nothing on the host: the packages, the service user, the venv, the stamp and
 *   MLflow's data stay (other stacks may use them; a later create is the fast path).
 * - Secrets: `connection` (the private key, passphrase) is a secret input and a secret output
 *   (additionalSecretOutputs); it never reaches a command line, the script or a log line.
 */
export interface HostProvisioningArgs extends ProvisionArgs {
  /** Secret (the private key). */
  connection: SshConnection;
  /** Deadline of one provisioning run (apt + pip), seconds. */
  timeoutSeconds: number;
}

export interface HostProvisioningState extends HostProvisioningArgs {
  /** sha256 of the rendered script, as the host's stamp records it. */
  hash: string;
}

export function provisioningId(args: Pick<HostProvisioningArgs, "connection" | "layout">): string {
  return `${args.connection.host}:${args.connection.port}${args.layout.baseDir}`;
}

/** The hash the script for these inputs has, or UNKNOWN while an input is not known (preview). */
export function scriptHashOf(args: Partial<HostProvisioningArgs>): string {
  const parts = [
    args.profile,
    args.layout,
    args.extraApt,
    args.extraPip,
    args.postgresql,
    args.postgresqlClient,
  ];
  if (containsUnknown(parts) || args.profile === undefined || args.layout === undefined) {
    return UNKNOWN;
  }
  return renderProvisioning(args as ProvisionArgs).hash;
}

/** check(): what would fail the script's rendering fails before anything runs. */
export function checkProvisioning(
  news: Partial<HostProvisioningArgs>,
): { property: string; reason: string }[] {
  if (containsUnknown(news) || news.profile === undefined || news.layout === undefined) {
    return [];
  }
  try {
    renderProvisioning(news as ProvisionArgs);
    return [];
  } catch (err) {
    return [{ property: "profile", reason: (err as Error).message }];
  }
}

export function diffProvisioning(olds: HostProvisioningState, news: HostProvisioningArgs) {
  const target = (a: Partial<HostProvisioningArgs>) =>
    containsUnknown(a.connection)
      ? UNKNOWN
      : JSON.stringify([a.connection?.host, a.connection?.port]);
  const replaces: string[] = [];
  if (target(news) !== UNKNOWN && target(olds) !== target(news)) {
    replaces.push("connection");
  }
  if (
    !containsUnknown(news.layout) &&
    JSON.stringify(olds.layout) !== JSON.stringify(news.layout)
  ) {
    replaces.push("layout");
  }
  const hash = scriptHashOf(news);
  const changes =
    replaces.length > 0 ||
    hash !== olds.hash ||
    containsUnknown(news.connection) ||
    JSON.stringify(olds.connection) !== JSON.stringify(news.connection) ||
    olds.timeoutSeconds !== news.timeoutSeconds;
  return { changes, replaces, deleteBeforeReplace: false };
}

export async function createProvisioning(
  args: HostProvisioningArgs,
  log: (msg: string) => void = () => undefined,
): Promise<HostProvisioningState> {
  const started = Date.now();
  const result = await provisionHost(args.connection, args, {
    timeoutMs: args.timeoutSeconds * 1000,
  });
  for (const line of result.log) {
    log(line);
  }
  log(
    `${describe(args.connection)}: profile ${args.profile.name} ` +
      `${result.changed ? "applied" : "already applied"} in ${Date.now() - started} ms`,
  );
  return { ...args, hash: result.hash };
}

/** update: the script again when it changed (its own fast path otherwise), else only recorded. */
export async function updateProvisioning(
  olds: HostProvisioningState,
  news: HostProvisioningArgs,
  log: (msg: string) => void = () => undefined,
): Promise<HostProvisioningState> {
  if (scriptHashOf(news) === olds.hash) {
    return { ...news, hash: olds.hash };
  }
  return createProvisioning(news, log);
}

function stampFile(state: Pick<HostProvisioningArgs, "layout">): string {
  return `${state.layout.baseDir}/provisioned.sha256`;
}

/** For `read`: the state while the host's stamp holds its hash, undefined otherwise. */
export async function readProvisioning(
  state: HostProvisioningState,
): Promise<HostProvisioningState | undefined> {
  const out = await withSsh(state.connection, (ssh) =>
    ssh.run(buildCommand(state.connection.user, { argv: ["sh", "-s"], asRoot: true }), {
      stdin: `cat ${shQuote(stampFile(state))} 2>/dev/null || true`,
      what: "reading the provisioning stamp",
    }),
  );
  return out.stdout.trim() === state.hash ? state : undefined;
}

/** Nothing on the host is removed (see the contract). */
export async function deleteProvisioning(): Promise<void> {
  return undefined;
}
