import * as crypto from "crypto";

/**
 * The pinned host key: either the server's public key line (`ssh-ed25519 AAAA… [comment]`, as in
 * /etc/ssh/ssh_host_ed25519_key.pub or `ssh-keyscan`) or its OpenSSH fingerprint (`SHA256:…`, as
 * `ssh-keygen -lf` prints). The server's key is compared with it before any authentication; anything
 * else is refused (there is no "accept new key").
 */
export interface HostKeyPin {
  /** The key's algorithm when the pin is a full key line (restricts what the server is asked for). */
  type?: string;
  /** `SHA256:<unpadded base64>` of the key blob. */
  fingerprint: string;
}

/** `SHA256:…` of an SSH public key blob, exactly as OpenSSH prints it (unpadded base64). */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${crypto.createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

const KEY_TYPES = [
  "ssh-ed25519",
  "ssh-rsa",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
];

/** Parses a pin; the error names what was wrong (a pin is public, so quoting it is fine). */
export function parseHostKeyPin(pin: string): HostKeyPin {
  const text = pin.trim();
  const fp = /^SHA256:([A-Za-z0-9+/]{43})=?$/.exec(text);
  if (fp) {
    return { fingerprint: `SHA256:${fp[1]}` };
  }
  const [type, b64] = text.split(/\s+/);
  if (!KEY_TYPES.includes(type) || b64 === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) {
    throw new Error(
      `hostKey ${JSON.stringify(pin)} is neither a public key line ("ssh-ed25519 AAAA…") nor a ` +
        `SHA256 fingerprint ("SHA256:…", from ssh-keygen -lf)`,
    );
  }
  const blob = Buffer.from(b64, "base64");
  // The blob starts with its own type name (uint32 length + name): a line whose parts disagree is a typo.
  const nameLength = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  const embedded = nameLength > 0 ? blob.subarray(4, 4 + nameLength).toString("latin1") : "";
  if (embedded !== type) {
    throw new Error(
      `hostKey ${JSON.stringify(pin)}: the key data is not a ${type} key (it says ${JSON.stringify(embedded)})`,
    );
  }
  return { type, fingerprint: fingerprintOf(blob) };
}

/** The host key algorithms to offer for a pin: only the pinned type when known (so the server shows
 * the key that was pinned rather than another of its keys). */
export function hostKeyAlgorithms(pin: HostKeyPin): string[] | undefined {
  if (pin.type === undefined) {
    return undefined;
  }
  return pin.type === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [pin.type];
}
