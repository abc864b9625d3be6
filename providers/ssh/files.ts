import type { SshSession } from "./client";
import { buildCommand } from "./command";
import { shQuote } from "./quote";

/**
 * Files written on the remote host through the command's stdin (no sftp subsystem needed, and the same
 * path works through `sudo -n`): the content never appears on a command line, the file is created 0600
 * under umask 077 before anything is written, then chmod/chown'd and renamed into place atomically.
 */
export interface RemoteFile {
  path: string;
  content: string | Buffer;
  /** Octal mode, e.g. "0600" (the default) or "0644". */
  mode?: string;
  /** `user[:group]` to chown to (needs root). */
  owner?: string;
  /** Write as root (through sudo when the SSH user is not root). */
  asRoot?: boolean;
}

/** The shell script that writes stdin to `file.path` (exported for the unit tests). */
export function writeFileScript(file: Omit<RemoteFile, "content">): string {
  const mode = file.mode ?? "0600";
  if (!/^0?[0-7]{3}$/.test(mode)) {
    throw new Error(`writeFileScript: mode ${JSON.stringify(mode)} is not an octal mode like 0600`);
  }
  if (!file.path.startsWith("/")) {
    throw new Error(`writeFileScript: path ${JSON.stringify(file.path)} is not absolute`);
  }
  const target = shQuote(file.path);
  const tmp = shQuote(`${file.path}.tmp`);
  return [
    "set -e",
    "umask 077",
    `mkdir -p "$(dirname ${target})"`,
    `cat > ${tmp}`,
    `chmod ${mode} ${tmp}`,
    ...(file.owner ? [`chown ${shQuote(file.owner)} ${tmp}`] : []),
    `mv -f ${tmp} ${target}`,
  ].join("\n");
}

/** Writes one file on the host; rejects with the remote error (naming the target and path). */
export async function writeRemoteFile(
  ssh: SshSession,
  sshUser: string,
  file: RemoteFile,
): Promise<void> {
  const script = writeFileScript(file);
  await ssh.run(buildCommand(sshUser, { script, asRoot: file.asRoot }), {
    stdin: file.content,
    what: `writing ${file.path}`,
  });
}
