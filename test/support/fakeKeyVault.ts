import { execFileSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as https from "https";
import type { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";

/** What the fake vault holds for one secret name: versions (the last is current), or a 403. */
export type FakeSecret = { versions: Record<string, string> } | { forbidden: true };

/**
 * Azure Key Vault's GET /secrets/{name}/{version?} on a loopback TLS server (a self-signed certificate
 * made here with openssl), with the vault's challenge auth (401 + WWW-Authenticate first, then a
 * bearer token), and an App Service managed identity endpoint (IDENTITY_ENDPOINT/IDENTITY_HEADER) on
 * plain loopback http that issues the only token the vault accepts. Every vault request is recorded.
 */
export async function fakeKeyVault(secrets: Record<string, FakeSecret>): Promise<{
  vaultUrl: string;
  identityEndpoint: string;
  identityHeader: string;
  /** The vault's certificate (PEM), to trust in the client's TLS options. */
  ca: string;
  requests: { method: string; path: string; authorized: boolean }[];
  tokenRequests: { resource: string }[];
  close: () => Promise<void>;
}> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fake-kv-"));
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      path.join(dir, "key.pem"),
      "-out",
      path.join(dir, "cert.pem"),
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
    ],
    { stdio: "pipe" },
  );
  const key = fs.readFileSync(path.join(dir, "key.pem"), "utf8");
  const ca = fs.readFileSync(path.join(dir, "cert.pem"), "utf8");
  fs.rmSync(dir, { recursive: true, force: true });

  const token = `kv-token-${process.pid}-${Date.now()}`;
  const identityHeader = `identity-header-${process.pid}`;
  const requests: { method: string; path: string; authorized: boolean }[] = [];
  const tokenRequests: { resource: string }[] = [];

  const identity = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (req.headers["x-identity-header"] !== identityHeader) {
      res.writeHead(400, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "invalid_request", error_description: "bad header" }));
      return;
    }
    const resource = url.searchParams.get("resource") ?? "";
    tokenRequests.push({ resource });
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        access_token: token,
        expires_on: String(Math.floor(Date.now() / 1000) + 3600),
        resource,
        token_type: "Bearer",
      }),
    );
  });

  let vaultUrl = "";
  const vault = https.createServer({ key, cert: ca }, (req, res) => {
    const url = new URL(req.url ?? "/", "https://127.0.0.1");
    const authorized = req.headers.authorization === `Bearer ${token}`;
    requests.push({ method: req.method ?? "", path: url.pathname, authorized });
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
      res.end(JSON.stringify(body));
    };
    req.resume();
    if (!authorized) {
      reply(
        401,
        {
          error: {
            code: "Unauthorized",
            message: "AKV10000: Request is missing a Bearer or PoP token.",
          },
        },
        {
          "www-authenticate": `Bearer authorization="https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001", resource="https://vault.azure.net"`,
        },
      );
      return;
    }
    const m = /^\/secrets\/([A-Za-z0-9-]+)(?:\/([A-Za-z0-9]*))?\/?$/.exec(url.pathname);
    if (req.method !== "GET" || m === null) {
      reply(400, {
        error: { code: "BadParameter", message: `unexpected ${req.method} ${url.pathname}` },
      });
      return;
    }
    const [, name, wanted] = m;
    const known = secrets[name];
    if (known !== undefined && "forbidden" in known) {
      reply(403, {
        error: {
          code: "Forbidden",
          message: `The user, group or application 'appid=00000000;oid=00000000' does not have secrets get permission on key vault 'fake-vault;location=westeurope'.`,
          innererror: { code: "AccessDenied" },
        },
      });
      return;
    }
    const versions = known === undefined ? [] : Object.keys(known.versions);
    const version = wanted === undefined || wanted === "" ? versions[versions.length - 1] : wanted;
    if (known === undefined || version === undefined || !(version in known.versions)) {
      reply(404, {
        error: {
          code: "SecretNotFound",
          message: `A secret with (name/id) ${name}${wanted ? `/${wanted}` : ""} was not found in this key vault.`,
        },
      });
      return;
    }
    reply(200, {
      value: known.versions[version],
      id: `${vaultUrl}/secrets/${name}/${version}`,
      attributes: {
        enabled: true,
        created: 1_700_000_000,
        updated: 1_700_000_000,
        recoveryLevel: "Recoverable+Purgeable",
      },
      tags: {},
    });
  });

  await new Promise<void>((resolve) => identity.listen(0, "127.0.0.1", resolve));
  await new Promise<void>((resolve) => vault.listen(0, "127.0.0.1", resolve));
  vaultUrl = `https://127.0.0.1:${(vault.address() as AddressInfo).port}`;
  return {
    vaultUrl,
    identityEndpoint: `http://127.0.0.1:${(identity.address() as AddressInfo).port}/msi/token`,
    identityHeader,
    ca,
    requests,
    tokenRequests,
    close: async () => {
      vault.closeAllConnections();
      identity.closeAllConnections();
      await Promise.all([
        new Promise((r) => vault.close(r)),
        new Promise((r) => identity.close(r)),
      ]);
    },
  };
}
