import { readAzureKeyVaultSecret } from "../../components/azureKeyVaultKey";
import { fakeKeyVault } from "../support/fakeKeyVault";

// The real SecretClient and DefaultAzureCredential (App Service managed identity from
// IDENTITY_ENDPOINT/IDENTITY_HEADER) against a loopback vault over TLS. The vault's host is 127.0.0.1,
// not *.vault.azure.net, so the challenge's resource check is switched off for it; its self-signed
// certificate is trusted through the client's TLS options.
const KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const OLD_KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nb2xkIGtleQ==\n-----END OPENSSH PRIVATE KEY-----\n";

let vault: Awaited<ReturnType<typeof fakeKeyVault>>;
const saved: Record<string, string | undefined> = {};
const ENV = [
  "IDENTITY_ENDPOINT",
  "IDENTITY_HEADER",
  "AZURE_CLIENT_ID",
  "AZURE_TENANT_ID",
  "AZURE_CLIENT_SECRET",
  "AZURE_FEDERATED_TOKEN_FILE",
  "AZURE_TOKEN_CREDENTIALS",
  "MSI_ENDPOINT",
];

beforeAll(async () => {
  vault = await fakeKeyVault({
    "mlflow-host-ssh-key": { versions: { "0a1b2c": OLD_KEY, "3d4e5f": KEY } },
    "locked-key": { forbidden: true },
    "empty-key": { versions: { "111": "  " } },
  });
  for (const k of ENV) {
    saved[k] = process.env[k];
    delete process.env[k];
  }
  process.env.IDENTITY_ENDPOINT = vault.identityEndpoint;
  process.env.IDENTITY_HEADER = vault.identityHeader;
});

afterAll(async () => {
  for (const k of ENV) {
    if (saved[k] === undefined) {
      delete process.env[k];
    } else {
      process.env[k] = saved[k];
    }
  }
  await vault?.close();
});

const clientOptions = () => ({
  tlsOptions: { ca: vault.ca },
  disableChallengeResourceVerification: true,
});

describe("an SSH key held in Azure Key Vault (real SDK, loopback vault)", () => {
  it("reads the current version through the challenge and a managed identity token", async () => {
    const value = await readAzureKeyVaultSecret(
      { vaultUrl: vault.vaultUrl, name: "mlflow-host-ssh-key" },
      { clientOptions: clientOptions() },
    );
    expect(value).toBe(KEY);
    // First the unauthenticated challenge, then the same GET with the identity's token.
    expect(vault.requests.slice(0, 2)).toEqual([
      { method: "GET", path: "/secrets/mlflow-host-ssh-key/", authorized: false },
      { method: "GET", path: "/secrets/mlflow-host-ssh-key/", authorized: true },
    ]);
    expect(vault.tokenRequests[0]).toEqual({ resource: "https://vault.azure.net" });
  });

  it("reads a pinned version", async () => {
    const value = await readAzureKeyVaultSecret(
      { vaultUrl: vault.vaultUrl, name: "mlflow-host-ssh-key", version: "0a1b2c" },
      { clientOptions: clientOptions() },
    );
    expect(value).toBe(OLD_KEY);
    expect(vault.requests[vault.requests.length - 1]).toEqual({
      method: "GET",
      path: "/secrets/mlflow-host-ssh-key/0a1b2c",
      authorized: true,
    });
  });

  it("names the vault and the secret when the secret is missing", async () => {
    await expect(
      readAzureKeyVaultSecret(
        { vaultUrl: vault.vaultUrl, name: "no-such-key" },
        { clientOptions: clientOptions() },
      ),
    ).rejects.toThrow(
      new Error(
        `Azure Key Vault ${vault.vaultUrl}: secret "no-such-key" was not found (404 SecretNotFound): A secret with (name/id) no-such-key was not found in this key vault.`,
      ),
    );
    await expect(
      readAzureKeyVaultSecret(
        { vaultUrl: vault.vaultUrl, name: "mlflow-host-ssh-key", version: "ffff" },
        { clientOptions: clientOptions() },
      ),
    ).rejects.toThrow(
      `Azure Key Vault ${vault.vaultUrl}: secret "mlflow-host-ssh-key" version ffff was not found (404 SecretNotFound)`,
    );
  });

  it("names the vault, the secret and the missing permission on a 403", async () => {
    await expect(
      readAzureKeyVaultSecret(
        { vaultUrl: vault.vaultUrl, name: "locked-key" },
        { clientOptions: clientOptions() },
      ),
    ).rejects.toThrow(
      new Error(
        `Azure Key Vault ${vault.vaultUrl}: secret "locked-key": access denied (403 Forbidden); the identity needs the "Key Vault Secrets User" role or a get-secret access policy: The user, group or application 'appid=00000000;oid=00000000' does not have secrets get permission on key vault 'fake-vault;location=westeurope'.`,
      ),
    );
  });

  it("refuses an empty secret", async () => {
    await expect(
      readAzureKeyVaultSecret(
        { vaultUrl: vault.vaultUrl, name: "empty-key" },
        { clientOptions: clientOptions() },
      ),
    ).rejects.toThrow(
      new Error(
        `Azure Key Vault ${vault.vaultUrl}: secret "empty-key" has an empty value; store the private key's text in it`,
      ),
    );
  });

  it("says which vault and secret when the certificate is not trusted", async () => {
    await expect(
      readAzureKeyVaultSecret(
        { vaultUrl: vault.vaultUrl, name: "mlflow-host-ssh-key" },
        { clientOptions: { disableChallengeResourceVerification: true } },
      ),
    ).rejects.toThrow(
      new RegExp(
        `^Azure Key Vault ${vault.vaultUrl.replace(/\./g, "\\.")}: secret "mlflow-host-ssh-key": cannot be read: .*self.signed`,
      ),
    );
  });
});
