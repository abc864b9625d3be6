import { withSsh } from "../ssh/client";
import { buildCommand } from "../ssh/command";
import { SshConnection } from "../ssh/connection";
import { ProvisionArgs, provisionOutcome, renderProvisioning } from "./provisionScript";

export interface ProvisionResult {
  changed: boolean;
  hash: string;
  /** The script's progress lines (`provision: …`), for the log. */
  log: string[];
}

/** The command that runs a provisioning script read from stdin, as root (sudo -n for a sudo user). */
export function provisionCommand(sshUser: string): string {
  return buildCommand(sshUser, { argv: ["sh", "-s"], asRoot: true });
}

/**
 * Provisions the host over SSH: the rendered script goes on stdin of `sh -s` as root. Idempotent (the
 * script's own fast path). Rejects with the script's last output lines when it fails.
 */
export async function provisionHost(
  conn: SshConnection,
  args: ProvisionArgs,
  options: { timeoutMs?: number } = {},
): Promise<ProvisionResult> {
  const { script } = renderProvisioning(args);
  const result = await withSsh(conn, (ssh) =>
    ssh.run(provisionCommand(conn.user), {
      stdin: script,
      timeoutMs: options.timeoutMs ?? 20 * 60_000,
      what: `provisioning (profile ${args.profile.name})`,
    }),
  );
  const outcome = provisionOutcome(result.stdout);
  if (!outcome) {
    throw new Error(
      `ssh ${conn.user}@${conn.host}:${conn.port}: provisioning (profile ${args.profile.name}) ended without its last line:\n${result.stdout.slice(-2000)}`,
    );
  }
  return { ...outcome, log: result.stdout.split("\n").filter((l) => l.startsWith("provision: ")) };
}
