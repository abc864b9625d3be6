import { isEnvName, shJoin, shQuote } from "./quote";

/**
 * Remote command lines, built from parts and quoted once. Non-secret environment only: a value in a
 * command line is visible in the remote host's process list, so secrets travel on stdin or in 0600 files.
 */
export interface RemoteCommand {
  /** The program and its arguments, or a script for `sh -c` (`script`), not both. */
  argv?: readonly string[];
  script?: string;
  /** Working directory (`cd` first; the command fails when it is missing). */
  cwd?: string;
  /** Non-secret variables set for the command only. */
  env?: Readonly<Record<string, string>>;
  /** Run as root: `sudo -n` when the SSH user is not root, nothing when it is. */
  asRoot?: boolean;
  /** Run as this (service) user: `sudo -n -u <user>` (as root, too: root reaches it through sudo). */
  asUser?: string;
}

/** True for the SSH user that needs no sudo for root work. */
export function isRoot(sshUser: string): boolean {
  return sshUser === "root";
}

/** The command line to send for `cmd` when logged in as `sshUser`. */
export function buildCommand(sshUser: string, cmd: RemoteCommand): string {
  if ((cmd.argv === undefined) === (cmd.script === undefined)) {
    throw new Error("buildCommand: set exactly one of argv and script");
  }
  if (cmd.asRoot && cmd.asUser !== undefined) {
    throw new Error("buildCommand: set at most one of asRoot and asUser");
  }
  const envParts = Object.entries(cmd.env ?? {}).map(([name, value]) => {
    if (!isEnvName(name)) {
      throw new Error(`buildCommand: invalid environment variable name ${JSON.stringify(name)}`);
    }
    return `${name}=${value}`;
  });
  // The innermost part: what runs once the user is right.
  let inner = cmd.script ?? shJoin(cmd.argv as readonly string[]);
  if (envParts.length > 0) {
    inner = cmd.script
      ? `${shJoin(["env", ...envParts, "sh", "-c", cmd.script])}`
      : `${shJoin(["env", ...envParts])} ${inner}`;
  }
  if (cmd.cwd !== undefined) {
    // Not `cd && …`: a script's later statements would still run after a failed cd.
    inner = `cd ${shQuote(cmd.cwd)} || exit 1\n${inner}`;
  }
  const needsShell = cmd.cwd !== undefined || cmd.script !== undefined;
  if (cmd.asUser !== undefined) {
    return `${shJoin(["sudo", "-n", "-H", "-u", cmd.asUser, "--", "sh", "-c", inner])}`;
  }
  if (cmd.asRoot && !isRoot(sshUser)) {
    return needsShell ? shJoin(["sudo", "-n", "--", "sh", "-c", inner]) : `sudo -n -- ${inner}`;
  }
  return inner;
}
