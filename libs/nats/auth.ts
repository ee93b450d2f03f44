/**
 * NATS users, one per role (nats-roles.conf says what each may do), and the
 * file of their passwords: made on first start, mode 0600, read by every
 * mapflow process that connects.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, readFileSync } from "node:fs";
import { PermissionViolationError } from "@nats-io/transport-node";
import { BadInputError } from "../errors.ts";
import { secretFile } from "../files/secret.ts";

export const ROLES = ["admin", "coordinator", "projector", "worker", "api"] as const;
export type Role = (typeof ROLES)[number];

/** Every role's password. */
export type Credentials = Readonly<Record<Role, string>>;

/** What one connection authenticates with: a role's user, or another a deployment's own config defines. */
export type NatsAuth = { readonly user: string; readonly pass: string };

/** Its name in a data dir (`<data>/nats/credentials.json`) or a cluster's dir. */
export const CREDENTIALS_FILE = "credentials.json";

/** The environment variable nats-roles.conf reads a role's password from. */
export function passwordVariable(role: Role): string {
  return `MAPFLOW_NATS_${role.toUpperCase()}_PASSWORD`;
}

/**
 * The nats-server process's environment for these credentials. nats-server
 * parses a variable's value as a config value (a password starting with a
 * digit would not parse), so each is given as a quoted string.
 */
export function serverEnv(credentials: Credentials): Record<string, string> {
  return Object.fromEntries(ROLES.map((role) => [passwordVariable(role), `"${credentials[role]}"`]));
}

/** What a quoted config string can hold as it is: no quote, backslash or control character. */
const PASSWORD = /^[^"\\\x00-\x1f]{12,}$/;

export function authFor(credentials: Credentials, role: Role): NatsAuth {
  return { user: role, pass: credentials[role] };
}

/** The server's refusal behind an error: a publish or subscribe this user may not make (a request wraps it as its cause). */
export function refusal(err: unknown): PermissionViolationError | undefined {
  for (let e = err; e instanceof Error; e = e.cause) if (e instanceof PermissionViolationError) return e;
  return undefined;
}

function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** Reads a credentials file, saying what is wrong with it and how to get a good one. */
export function readCredentials(file: string): Credentials {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new BadInputError(`cannot read the NATS credentials file ${file} (${(err as Error).message}); pass the one the stack made (<data>/nats/${CREDENTIALS_FILE}) or set MAPFLOW_NATS_USER and MAPFLOW_NATS_PASSWORD`);
  }
  return parseCredentials(file, text);
}

/** `file`'s text as credentials, saying what is wrong with it and how to get a good one. */
function parseCredentials(file: string, text: string): Credentials {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new BadInputError(`cannot read the NATS credentials file ${file} (${(err as Error).message}); pass the one the stack made (<data>/nats/${CREDENTIALS_FILE}) or set MAPFLOW_NATS_USER and MAPFLOW_NATS_PASSWORD`);
  }
  const entries = typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? Object.entries(parsed) : [];
  const missing = ROLES.filter((role) => typeof (parsed as Record<string, unknown> | null)?.[role] !== "string");
  const bad = ROLES.filter((role) => !missing.includes(role) && !PASSWORD.test((parsed as Record<string, string>)[role]!));
  if (bad.length > 0) throw new BadInputError(`the NATS credentials file ${file} has passwords nats-server cannot take for ${bad.join(", ")}: use 12 or more characters, without quotes, backslashes or control characters`);
  const unknown = entries.map(([k]) => k).filter((k) => !isRole(k));
  if (missing.length > 0 || unknown.length > 0) {
    throw new BadInputError(`the NATS credentials file ${file} must map each of ${ROLES.join(", ")} to a password${missing.length ? `; missing: ${missing.join(", ")}` : ""}${unknown.length ? `; unknown: ${unknown.join(", ")}` : ""}`);
  }
  return parsed as Credentials;
}

/**
 * The credentials in `file`, made (random, one per role) when it does not
 * exist yet. Written with mode 0600 and `wx`, so two processes starting at
 * once cannot both write one; a file others may read is tightened.
 */
export function loadOrCreateCredentials(file: string): Credentials {
  const kept = secretFile(file, () => `${JSON.stringify(Object.fromEntries(ROLES.map((role) => [role, randomBytes(24).toString("hex")])), null, 2)}\n`);
  if (kept.openToOthers) chmodSync(file, 0o600);
  return parseCredentials(file, kept.text);
}
