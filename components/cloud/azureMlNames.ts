/**
 * Pure helpers of the Azure ML component: names, versions and hashes that decide what Azure sees
 * (and so what is replaced or re-applied). Tested directly in test/unit/cloud/azureMlEndpoint.test.ts.
 */
import * as crypto from "crypto";

/** ISO 8601 duration for a millisecond count, as Azure ML expects (PT5S, PT0.5S). */
export function isoDuration(ms: number): string {
  return `PT${ms / 1000}S`;
}

/**
 * Names of the resources a created workspace needs. Key vaults (90 days) and workspaces (14 days)
 * stay soft-deleted after a destroy and keep their names, so the suffix covers the project and stack
 * (two stacks never collide) and `generation` (raise it for a destroy-then-up without a purge).
 */
export function workspaceResourceNames(p: {
  project: string;
  stack: string;
  workspaceName: string;
  endpointName: string;
  generation?: number;
}): { storageAccount: string; keyVault: string } {
  const base = p.workspaceName
    .toLowerCase()
    .replace(/[^a-z0-9]/g, "")
    .slice(0, 12);
  const suffix = shortHash(
    p.project,
    p.stack,
    p.workspaceName,
    p.endpointName,
    String(p.generation ?? 0),
  );
  return { storageAccount: `${base}st${suffix}`, keyVault: `${base}-kv-${suffix}` };
}

/** Environment version of an image: its digest, plus the suffix that makes each creation unique. */
export function environmentVersionFor(imageUri: string, suffix?: string): string {
  const digest = /@sha256:([0-9a-f]{64})$/.exec(imageUri);
  if (!digest) {
    throw new Error(
      `AzureMlEndpoint: imageUri must be pinned by digest (repo@sha256:...), got ${JSON.stringify(imageUri)}`,
    );
  }
  const version = `sha256-${digest[1].slice(0, 16)}`;
  return suffix === undefined ? version : `${version}-${suffix}`;
}

/**
 * What the endpoint's own PUT sends (the OnlineEndpoint resource's inputs). Any such PUT resets the
 * traffic split, so the traffic resource re-applies it whenever this hash changes.
 */
export function endpointSpecHash(spec: {
  endpointName: string;
  location: string;
  authMode: string;
  description: string;
  identity: { type: string; userAssignedIdentities?: string[] };
  tags?: Record<string, string>;
}): string {
  return crypto.createHash("sha256").update(stableJson(spec)).digest("hex").slice(0, 16);
}

export function nonEmpty(env: Record<string, string>): Record<string, string> | undefined {
  return Object.keys(env).length > 0 ? env : undefined;
}

/** JSON with object keys sorted at every level, so equal specs hash equally. */
function stableJson(v: unknown): string {
  if (Array.isArray(v)) {
    return `[${v.map(stableJson).join(",")}]`;
  }
  if (v !== null && typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => a.localeCompare(b));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${stableJson(x)}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

function shortHash(...parts: string[]): string {
  return crypto.createHash("sha256").update(parts.join("\0")).digest("hex").slice(0, 8);
}
