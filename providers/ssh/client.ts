import type { Client, ClientChannel, ConnectConfig } from "ssh2";
import { describe, SshConnection } from "./connection";
import { fingerprintOf, hostKeyAlgorithms, parseHostKeyPin } from "./hostKey";
import { shQuote } from "./quote";
import { buildCommand } from "./command";

/**
 * One SSH session over ssh2 (a kept library, not the `ssh` binary): connect with a private key and a
 * pinned host key, run commands with stdin and a deadline, write files. Every error names
 * `user@host:port` and never contains the key or passphrase.
 */
export interface ExecResult {
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Written to the command's stdin, then EOF. How secrets reach a remote command. */
  stdin?: string | Buffer;
  /** Deadline for the whole command (default 120 s): on expiry the remote command's process group is
   * sent TERM, then KILL (withRemoteDeadline), and the call rejects. */
  timeoutMs?: number;
}

/** An SSH failure, classified so callers can react (and tests can assert) without parsing text. */
export class SshError extends Error {
  constructor(
    message: string,
    readonly kind: "host-key" | "auth" | "key" | "connect" | "timeout" | "exec",
  ) {
    super(message);
    this.name = "SshError";
  }
}

export interface SshSession {
  readonly target: string;
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
  /** exec, then an error (naming the target, the exit code and stderr's last lines) unless it exits 0. */
  run(command: string, options?: ExecOptions & { what?: string }): Promise<ExecResult>;
  close(): void;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 20_000;
const DEFAULT_EXEC_TIMEOUT_MS = 120_000;

/** The last `n` non-empty lines of a command's output, for error messages. */
export function lastLines(text: string, n = 15): string {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .slice(-n)
    .join("\n");
}

/** Connects and authenticates; rejects with an SshError (host key first: nothing is sent to a host
 * whose key does not match the pin). */
export async function connect(
  conn: SshConnection,
  options: { connectTimeoutMs?: number } = {},
): Promise<SshSession> {
  const ssh2 = await import("ssh2");
  const target = describe(conn);
  const pin = parseHostKeyPin(conn.hostKey);
  const parsed = ssh2.utils.parseKey(conn.privateKey, conn.passphrase);
  if (parsed instanceof Error || (Array.isArray(parsed) && parsed.length === 0)) {
    // ssh2's message says what is wrong (format, missing or wrong passphrase), never the key itself.
    const why = parsed instanceof Error ? parsed.message : "no key found";
    throw new SshError(`ssh ${target}: the private key cannot be used: ${why}`, "key");
  }
  const client: Client = new ssh2.Client();
  let presented: string | undefined;
  const config: ConnectConfig = {
    host: conn.host,
    port: conn.port,
    username: conn.user,
    privateKey: conn.privateKey,
    passphrase: conn.passphrase,
    readyTimeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    tryKeyboard: false,
    hostVerifier: (key: Buffer) => {
      presented = fingerprintOf(key);
      return presented === pin.fingerprint;
    },
  };
  const algorithms = hostKeyAlgorithms(pin);
  if (algorithms) {
    config.algorithms = { serverHostKey: algorithms as never };
  }
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error & { level?: string }) => {
      client.end();
      reject(classify(err));
    };
    const classify = (err: Error & { level?: string }): SshError => {
      if (presented !== undefined && presented !== pin.fingerprint) {
        return new SshError(
          `ssh ${target}: host key mismatch: the server presented ${presented}, the pinned key is ` +
            `${pin.fingerprint}; refusing to connect (update hostKey only if you know why it changed)`,
          "host-key",
        );
      }
      if (err.level === "client-authentication") {
        return new SshError(
          `ssh ${target}: authentication failed: the server did not accept the private key for user ${conn.user}`,
          "auth",
        );
      }
      if (err.level === "client-timeout") {
        return new SshError(
          `ssh ${target}: no SSH handshake within ${config.readyTimeout} ms`,
          "timeout",
        );
      }
      return new SshError(`ssh ${target}: cannot connect: ${err.message}`, "connect");
    };
    client.once("ready", () => {
      client.removeListener("error", fail);
      resolve();
    });
    client.once("error", fail);
    try {
      client.connect(config);
    } catch (err) {
      fail(err as Error);
    }
  });
  // Errors after the handshake (a dropped connection) surface through the pending exec.
  client.on("error", () => undefined);
  return session(client, target);
}

/**
 * The remote side enforces the deadline: OpenSSH's sshd does not deliver signal requests to a session
 * without a terminal, and closing the channel leaves a process that neither reads nor writes running.
 * GNU `timeout` runs the command in its own process group, sends TERM to the group (sudo relays it to
 * its command), then KILL 5 s later; it exits 124 when it fired.
 */
export function withRemoteDeadline(command: string, timeoutMs: number): string {
  const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
  return `timeout -k 5 ${seconds} sh -c ${shQuote(command)}`;
}

const TIMEOUT_EXIT = 124;

function session(client: Client, target: string): SshSession {
  const exec = (command: string, options: ExecOptions = {}): Promise<ExecResult> =>
    new Promise((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
      const started = Date.now();
      const timedOut = () =>
        new SshError(
          `ssh ${target}: the command did not finish within ${timeoutMs} ms: ${firstWords(command)}`,
          "timeout",
        );
      client.exec(
        withRemoteDeadline(command, timeoutMs),
        (err: Error | undefined, stream: ClientChannel) => {
          if (err) {
            reject(new SshError(`ssh ${target}: cannot start a command: ${err.message}`, "exec"));
            return;
          }
          const out: Buffer[] = [];
          const errOut: Buffer[] = [];
          let settled = false;
          // A backstop for a host that does not answer at all (the remote deadline did not end it).
          const timer = setTimeout(() => {
            settled = true;
            stream.close();
            reject(timedOut());
          }, timeoutMs + 15_000);
          stream.on("data", (d: Buffer) => out.push(d));
          stream.stderr.on("data", (d: Buffer) => errOut.push(d));
          stream.on("close", (code: number | null, signal?: string) => {
            clearTimeout(timer);
            if (settled) {
              return;
            }
            settled = true;
            if (code === TIMEOUT_EXIT && Date.now() - started >= timeoutMs - 50) {
              reject(timedOut());
              return;
            }
            resolve({
              code: code ?? null,
              signal: signal ?? undefined,
              stdout: Buffer.concat(out).toString("utf8"),
              stderr: Buffer.concat(errOut).toString("utf8"),
            });
          });
          stream.end(options.stdin ?? "");
        },
      );
    });
  return {
    target,
    exec,
    async run(command, options = {}) {
      const result = await exec(command, options);
      if (result.code !== 0) {
        const how = result.code === null ? `signal ${result.signal ?? "?"}` : `exit ${result.code}`;
        const tail = lastLines(`${result.stderr}\n${result.code === 0 ? "" : result.stdout}`);
        throw new SshError(
          `ssh ${target}: ${options.what ?? firstWords(command)} failed (${how})${tail ? `:\n${tail}` : ""}`,
          "exec",
        );
      }
      return result;
    },
    close: () => client.end(),
  };
}

/** A command's start, for messages (commands carry no secrets, but scripts are long). */
function firstWords(command: string): string {
  const line = command.split("\n")[0];
  return line.length > 80 ? `${line.slice(0, 77)}...` : line;
}

/** Runs `fn` with a fresh session and always closes it. */
export async function withSsh<T>(
  conn: SshConnection,
  fn: (ssh: SshSession) => Promise<T>,
  options: { connectTimeoutMs?: number } = {},
): Promise<T> {
  const ssh = await connect(conn, options);
  try {
    return await fn(ssh);
  } finally {
    ssh.close();
  }
}

/** Runs a shell script as root (through sudo when `sshUser` is not root): `sh -s` with the script
 * on stdin, so nothing of it is on a command line; an error names `what` unless it exits 0. */
export function runScriptAsRoot(
  ssh: SshSession,
  sshUser: string,
  script: string,
  what: string,
  timeoutMs?: number,
): Promise<ExecResult> {
  return ssh.run(buildCommand(sshUser, { argv: ["sh", "-s"], asRoot: true }), {
    stdin: script,
    what,
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
  });
}
