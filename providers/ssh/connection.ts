/**
 * How to reach a host over SSH. `privateKey` and `passphrase` are secrets: they are handed to ssh2 in
 * memory and never appear in an error, a log line or a remote command line.
 */
export interface SshConnection {
  host: string;
  /** 22 by default in config. */
  port: number;
  user: string;
  /** OpenSSH or PEM private key text. Secret. */
  privateKey: string;
  /** Secret. */
  passphrase?: string;
  /** The server's public key line or SHA256 fingerprint (providers/ssh/hostKey.ts). */
  hostKey: string;
}

/** `user@host:port`: how errors and logs name a connection (never with the key). */
export function describe(conn: Pick<SshConnection, "host" | "port" | "user">): string {
  return `${conn.user}@${conn.host}:${conn.port}`;
}
