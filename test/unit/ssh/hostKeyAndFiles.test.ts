import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  fingerprintOf,
  hostKeyAlgorithms,
  parseHostKeyPin,
  writeFileScript,
} from "../../../providers/ssh";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ms-hostkey-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

let keys = 0;
function keygen(type: string): { line: string; fingerprint: string } {
  const file = path.join(dir, `key-${type}-${keys++}`);
  execFileSync("ssh-keygen", ["-q", "-t", type, "-N", "", "-C", "test host", "-f", file]);
  const line = fs.readFileSync(`${file}.pub`, "utf8").trim();
  const fingerprint = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", `${file}.pub`], {
    encoding: "utf8",
  }).split(" ")[1];
  return { line, fingerprint };
}

describe("host key pin", () => {
  test.each(["ed25519", "rsa", "ecdsa"])("%s: our fingerprint is ssh-keygen's", (type) => {
    const { line, fingerprint } = keygen(type);
    const blob = Buffer.from(line.split(" ")[1], "base64");
    expect(fingerprintOf(blob)).toBe(fingerprint);
    expect(parseHostKeyPin(line).fingerprint).toBe(fingerprint);
    expect(parseHostKeyPin(fingerprint)).toEqual({ fingerprint });
  });

  test("a key line pins its algorithm; a fingerprint lets the server choose", () => {
    const { line } = keygen("ed25519");
    expect(hostKeyAlgorithms(parseHostKeyPin(line))).toEqual(["ssh-ed25519"]);
    const rsa = keygen("rsa");
    expect(hostKeyAlgorithms(parseHostKeyPin(rsa.line))).toEqual([
      "rsa-sha2-512",
      "rsa-sha2-256",
      "ssh-rsa",
    ]);
    expect(hostKeyAlgorithms(parseHostKeyPin(rsa.fingerprint))).toBeUndefined();
  });

  test("malformed pins are refused with the reason", () => {
    expect(() => parseHostKeyPin("AAAAC3NzaC1lZDI1NTE5")).toThrow(
      'hostKey "AAAAC3NzaC1lZDI1NTE5" is neither a public key line ("ssh-ed25519 AAAA…") nor a SHA256 fingerprint ("SHA256:…", from ssh-keygen -lf)',
    );
    expect(() => parseHostKeyPin("MD5:12:34")).toThrow("is neither a public key line");
    const rsa = keygen("rsa").line.split(" ")[1];
    expect(() => parseHostKeyPin(`ssh-ed25519 ${rsa}`)).toThrow(
      `hostKey "ssh-ed25519 ${rsa}": the key data is not a ssh-ed25519 key (it says "ssh-rsa")`,
    );
  });
});

describe("writeFileScript", () => {
  test("creates 0600 under umask 077 before writing, then renames into place", () => {
    expect(writeFileScript({ path: "/etc/mlflow/my secret.ini", owner: "mlflow:mlflow" })).toBe(
      [
        "set -e",
        "umask 077",
        `mkdir -p "$(dirname '/etc/mlflow/my secret.ini')"`,
        "cat > '/etc/mlflow/my secret.ini.tmp'",
        "chmod 0600 '/etc/mlflow/my secret.ini.tmp'",
        "chown mlflow:mlflow '/etc/mlflow/my secret.ini.tmp'",
        "mv -f '/etc/mlflow/my secret.ini.tmp' '/etc/mlflow/my secret.ini'",
      ].join("\n"),
    );
  });

  test("runs for real: the content comes from stdin, the mode is applied", () => {
    const target = path.join(dir, "sub dir", "f.txt");
    execFileSync("sh", ["-c", writeFileScript({ path: target, mode: "0640" })], { input: "a'b\n" });
    expect(fs.readFileSync(target, "utf8")).toBe("a'b\n");
    expect((fs.statSync(target).mode & 0o777).toString(8)).toBe("640");
  });

  test("bad modes and relative paths are refused", () => {
    expect(() => writeFileScript({ path: "/x", mode: "rw" })).toThrow(
      'writeFileScript: mode "rw" is not an octal mode like 0600',
    );
    expect(() => writeFileScript({ path: "x" })).toThrow(
      'writeFileScript: path "x" is not absolute',
    );
  });
});
