import * as fs from "fs";
import * as path from "path";
import { z } from "zod";
import { errorMap, formatIssues } from "./issues";

// js-yaml is a dependency (package.json); its typings are not.
const yaml = require("js-yaml") as { load: (text: string) => unknown };

/**
 * Provisioning profiles are data: provisioning/profiles/<name>.yaml, one file per profile, validated
 * here (strict: an unknown key is an error that names it) and rendered by
 * providers/remote/provisionScript.ts. Package names are checked so a typo fails before anything runs
 * on a host; everything is still shell-quoted when rendered.
 */
export const PROFILES_DIR = path.resolve(__dirname, "..", "provisioning", "profiles");

/** A Debian package name (Debian policy 5.6.1). */
export const aptPackage = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9+.-]+$/,
    "must be a Debian package name (lowercase letters, digits, + - .)",
  );

/** A pip requirement: a name, optional extras and version specifiers; no URLs, options or markers. */
export const pipRequirement = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?((==|>=|<=|~=|!=|<|>)[A-Za-z0-9.*+!-]+(,(==|>=|<=|~=|!=|<|>)[A-Za-z0-9.*+!-]+)*)?$/,
    "must be a pip requirement like name==1.2.3 or name[extra]>=1 (no URLs, options or markers)",
  );

const osRelease = z
  .string()
  .regex(
    /^[a-z0-9._-]+:[0-9A-Za-z._-]+$/,
    "must be ID:VERSION_ID as in /etc/os-release, e.g. debian:12",
  );
const version = z.string().regex(/^\d+\.\d+(\.\d+)?$/, "must be a version like 3.11");

const profileFile = z
  .object({
    name: z.string().regex(/^[a-z0-9-]+$/, "must be lowercase letters, digits and -"),
    description: z.string().min(1),
    os: z.array(osRelease).min(1),
    python: z
      .object({
        executable: z.string().regex(/^[A-Za-z0-9._/-]+$/, "must be an executable name or path"),
        minVersion: version,
        pip: version.optional(),
      })
      .strict(),
    apt: z.array(aptPackage),
    pip: z
      .object({
        requirements: z.array(pipRequirement).min(1),
        /** Relative to the profile file. */
        constraintsFile: z.string().optional(),
      })
      .strict(),
    env: z
      .record(
        z.string().regex(/^[A-Z_][A-Z0-9_]*$/, "must be an upper-case variable name"),
        z.string(),
      )
      .optional(),
    postgresql: z
      .object({ apt: z.array(aptPackage).min(1), pip: z.array(pipRequirement).min(1) })
      .strict()
      .optional(),
  })
  .strict();

/** What the renderer takes (providers/remote/provisionScript.ts ProvisioningProfile). */
export interface LoadedProfile {
  name: string;
  description: string;
  os: string[];
  python: { executable: string; minVersion: string; pip?: string };
  apt: string[];
  pip: { requirements: string[]; constraints?: string };
  env?: Record<string, string>;
  postgresql?: { apt: string[]; pip: string[] };
}

/** The names of the shipped profiles (the files in provisioning/profiles/). */
export function profileNames(dir = PROFILES_DIR): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => f.slice(0, -".yaml".length))
    .sort();
}

/** Reads and validates one profile; the constraints file's content is read into it. */
export function loadProfile(name: string, dir = PROFILES_DIR): LoadedProfile {
  const names = profileNames(dir);
  if (!names.includes(name)) {
    throw new Error(
      `provisioning profile ${JSON.stringify(name)} does not exist; expected one of ${names.join(", ")}`,
    );
  }
  const file = path.join(dir, `${name}.yaml`);
  const raw = yaml.load(fs.readFileSync(file, "utf8"));
  const parsed = profileFile.safeParse(raw, { errorMap });
  if (!parsed.success) {
    throw new Error(formatIssues(parsed.error, raw, profileFile, `${file}: `).join("\n"));
  }
  const p = parsed.data;
  if (p.name !== name) {
    throw new Error(
      `${file}: name: must be the file's name ${JSON.stringify(name)} (got ${JSON.stringify(p.name)})`,
    );
  }
  const { constraintsFile, requirements } = p.pip;
  const constraints =
    constraintsFile === undefined
      ? undefined
      : fs.readFileSync(path.resolve(dir, constraintsFile), "utf8");
  return { ...p, pip: { requirements, ...(constraints === undefined ? {} : { constraints }) } };
}
