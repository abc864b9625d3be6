/* eslint-disable @typescript-eslint/no-explicit-any -- recorded inputs are untyped JSON */
import { connect, type ExecResult } from "../../providers/ssh/client";

/**
 * A recorded `command:remote:Command` performed for real: what pulumi-command's provider does on create
 * (dial `connection` over SSH with its pinned host key and private key, run `create` in one session
 * with `stdin`, `environment` as the session's variables), over ssh2 here since the provider's plugin
 * cannot be installed. Secret inputs arrive wrapped in Pulumi's secret signature and are unwrapped.
 * The provider fails a create whose command exits non-zero; so does `replayCreate`.
 */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

function unwrap(v: any): any {
  return v !== null && typeof v === "object" && SECRET_SIG in v ? unwrap(v.value) : v;
}

export interface CommandReplay extends ExecResult {
  /** The provider's error text for a failed create (undefined when it exited 0). */
  failure?: string;
}

export async function replayCreate(inputs: Record<string, any>): Promise<CommandReplay> {
  const c = unwrap(inputs.connection);
  const create = unwrap(inputs.create) as string;
  const env = (unwrap(inputs.environment) ?? {}) as Record<string, string>;
  const ssh = await connect({
    host: c.host,
    port: c.port ?? 22,
    user: c.user,
    privateKey: c.privateKey,
    ...(c.privateKeyPassword === undefined ? {} : { passphrase: c.privateKeyPassword }),
    hostKey: c.hostKey,
  });
  try {
    // The provider sets the variables on the session (sshd's AcceptEnv); a prefix has the same effect
    // on a host that accepts them, and the preflight records none.
    const prefix = Object.entries(env)
      .map(([k, v]) => `${k}='${v.replace(/'/g, `'\\''`)}' `)
      .join("");
    const result = await ssh.exec(
      prefix === "" ? create : `${prefix}sh -c '${create.replace(/'/g, `'\\''`)}'`,
      {
        stdin: unwrap(inputs.stdin),
        timeoutMs: 120_000,
      },
    );
    return result.code === 0
      ? result
      : {
          ...result,
          failure: `Process exited with status ${result.code}: ${result.stderr.trim()}`,
        };
  } finally {
    ssh.close();
  }
}
