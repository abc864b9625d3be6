import * as pulumi from "@pulumi/pulumi";
import type { TokenCredential } from "@azure/identity";
import type { SecretClientOptions } from "@azure/keyvault-secrets";

/**
 * A secret of Azure Key Vault read at program time (preview and up) with the official SDK
 * (`@azure/keyvault-secrets` SecretClient, `@azure/identity` DefaultAzureCredential: environment, workload
 * or managed identity, az CLI …). azure-native's `keyvault.getSecret` returns the secret's properties,
 * never its value, so it cannot hand over an SSH key. The value only ever travels as a secret Output.
 */
export interface AzureKeyVaultSecretRef {
  /** The vault's URL, `https://<vault>.vault.azure.net`. */
  readonly vaultUrl: string;
  /** The secret's name. */
  readonly name: string;
  /** A version of the secret (default: its current version). */
  readonly version?: string;
}

/** How a read reaches Azure (tests: a loopback vault); the program passes nothing. */
export interface KeyVaultReadOptions {
  credential?: TokenCredential;
  clientOptions?: SecretClientOptions;
}

function where(ref: AzureKeyVaultSecretRef): string {
  const version = ref.version === undefined ? "" : ` version ${ref.version}`;
  return `Azure Key Vault ${ref.vaultUrl}: secret "${ref.name}"${version}`;
}

/** The error of a failed read, naming the vault and the secret (never a value). */
export function keyVaultError(ref: AzureKeyVaultSecretRef, err: unknown): Error {
  const e = err as { statusCode?: number; code?: string; name?: string; message?: string };
  const detail = (e.message ?? String(err)).split("\n")[0];
  if (e.statusCode === 404) {
    return new Error(`${where(ref)} was not found (404 ${e.code ?? "NotFound"}): ${detail}`);
  }
  if (e.statusCode === 401 || e.statusCode === 403) {
    return new Error(
      `${where(ref)}: access denied (${e.statusCode} ${e.code ?? "Forbidden"}); the identity needs the "Key Vault Secrets User" role or a get-secret access policy: ${detail}`,
    );
  }
  if (e.name === "CredentialUnavailableError" || e.name === "AuthenticationError") {
    return new Error(
      `${where(ref)}: no Azure credential could get a token (az login, AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET or a managed identity): ${detail}`,
    );
  }
  return new Error(`${where(ref)}: cannot be read: ${detail}`);
}

/** The secret's value; a clear error naming the vault and the secret when it cannot be read. */
export async function readAzureKeyVaultSecret(
  ref: AzureKeyVaultSecretRef,
  options: KeyVaultReadOptions = {},
): Promise<string> {
  const { SecretClient } =
    require("@azure/keyvault-secrets") as typeof import("@azure/keyvault-secrets");
  const { DefaultAzureCredential } = require("@azure/identity") as typeof import("@azure/identity");
  const client = new SecretClient(
    ref.vaultUrl,
    options.credential ?? new DefaultAzureCredential(),
    { retryOptions: { maxRetries: 1 }, ...options.clientOptions },
  );
  let value: string | undefined;
  try {
    value = (await client.getSecret(ref.name, { version: ref.version })).value;
  } catch (err) {
    throw keyVaultError(ref, err);
  }
  if (value === undefined || value.trim() === "") {
    throw new Error(`${where(ref)} has an empty value; store the private key's text in it`);
  }
  return value;
}

/** The secret as a secret Output (read during preview too, like a data source). */
export function azureKeyVaultSecret(
  ref: pulumi.Input<AzureKeyVaultSecretRef>,
  options: KeyVaultReadOptions = {},
): pulumi.Output<string> {
  return pulumi.secret(
    pulumi.output(ref).apply((r) => readAzureKeyVaultSecret(r as AzureKeyVaultSecretRef, options)),
  );
}
