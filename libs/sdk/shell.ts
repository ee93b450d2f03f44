/**
 * Shell tasks, checked when the DAG is defined: every name that reaches the
 * command's environment is a valid variable name, and no secret is written
 * into the DAG. Literal arguments become part of the registered spec (kept
 * in the event log, shown by the UI and `mapflow dags show`), and `env`
 * values sit in the DAG file, so a name that looks like a secret's is
 * refused there and pointed to `secretEnv`, whose values come from the
 * worker's environment at run time.
 */
import { DagDefinitionError } from "../errors.ts";
import { isSecretName } from "../secrets/index.ts";
import { isRef, type MappingInput } from "./builder.ts";
import type { Operator, ShellOptions } from "./types.ts";

export type ShellOperator = Extract<Operator, { kind: "shell" }>;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** The worker sets these to the try's ids (MAPFLOW_RUN_ID, …), after everything else. */
const RESERVED_PREFIX = "MAPFLOW_";

/** A name the shell can read as `$NAME`. */
export function isEnvName(name: string): boolean {
  return ENV_NAME.test(name);
}

export const ENV_NAME_RULE = "letters, digits and '_', not starting with a digit";

function envName(id: string, what: string, name: string): void {
  if (!isEnvName(name)) throw new DagDefinitionError(`shell task '${id}': ${what} '${name}' is not an environment variable name (${ENV_NAME_RULE})`);
  if (name.startsWith(RESERVED_PREFIX)) throw new DagDefinitionError(`shell task '${id}': ${what} '${name}' uses the reserved prefix ${RESERVED_PREFIX}; the worker sets those to the try's ids`);
}

const useSecretEnv = (name: string) => `name it in secretEnv: ["${name}"] and set it in the workers' environment instead`;

/** The shell operator for `shell(id, options)`, its options checked. */
export function shellOperator(id: string, options: Pick<ShellOptions, "cwd" | "env" | "secretEnv" | "inheritEnv">): ShellOperator {
  const { cwd, env, secretEnv, inheritEnv } = options;
  if (cwd !== undefined && (typeof cwd !== "string" || cwd === "")) throw new DagDefinitionError(`shell task '${id}': cwd must be a directory path, got ${JSON.stringify(cwd)}`);
  if (inheritEnv !== undefined && typeof inheritEnv !== "boolean") throw new DagDefinitionError(`shell task '${id}': inheritEnv must be true or false`);
  if (env !== undefined && (typeof env !== "object" || env === null || Array.isArray(env))) throw new DagDefinitionError(`shell task '${id}': env must be an object of variable names and string values`);
  for (const [name, value] of Object.entries(env ?? {})) {
    envName(id, "env", name);
    if (typeof value !== "string") throw new DagDefinitionError(`shell task '${id}': env ${name} must be a string, got ${typeof value}`);
    if (isSecretName(name)) {
      throw new DagDefinitionError(`shell task '${id}': env ${name} looks like a secret, and a value written in the DAG file is kept in source control and on every worker; ${useSecretEnv(name)}`);
    }
  }
  if (secretEnv !== undefined && (!Array.isArray(secretEnv) || !secretEnv.every((n) => typeof n === "string"))) {
    throw new DagDefinitionError(`shell task '${id}': secretEnv must be a list of environment variable names, e.g. ["API_KEY"]`);
  }
  for (const [i, name] of (secretEnv ?? []).entries()) {
    envName(id, "secretEnv", name);
    if (secretEnv!.indexOf(name) !== i) throw new DagDefinitionError(`shell task '${id}': secretEnv names ${name} twice`);
    if (env && Object.hasOwn(env, name)) throw new DagDefinitionError(`shell task '${id}': ${name} is in both env and secretEnv; a secret's value comes only from the worker's environment`);
  }
  // Only what was given, so a shell task that sets none of these keeps its DAG version.
  return {
    kind: "shell",
    ...(cwd !== undefined ? { cwd } : {}),
    ...(env !== undefined ? { env: { ...env } } : {}),
    ...(secretEnv?.length ? { secretEnv: [...secretEnv] } : {}),
    ...(inheritEnv ? { inheritEnv } : {}),
  };
}

/** One argument a shell task is given: its name reaches the command, and a literal secret would reach the log. */
function checkArg(id: string, operator: ShellOperator, name: string, value: unknown): void {
  if (name === "command") return checkCommand(id, value);
  envName(id, "argument", name);
  if (operator.secretEnv?.includes(name)) throw new DagDefinitionError(`shell task '${id}': argument ${name} would replace the secret of that name (secretEnv); give it another name`);
  if (isSecretName(name) && !isRef(value)) {
    throw new DagDefinitionError(
      `shell task '${id}': argument ${name} looks like a secret, and its value would be written into the DAG's registered spec (kept in the event log, shown by the UI and 'mapflow dags show'); ${useSecretEnv(name)}`,
    );
  }
}

/** A literal command, wherever it is given, is a string; one an upstream's output brings is checked when the try runs. */
function checkCommand(id: string, command: unknown): void {
  if (typeof command !== "string" && !isRef(command)) {
    throw new DagDefinitionError(`shell task '${id}': command must be a string (a shell command line), got ${command === null ? "null" : typeof command}`);
  }
}

/**
 * Whether the task is given its command: as an argument, as a mapped one,
 * or in every object of a literal `expandKwargs` list. An `expandKwargs`
 * over an upstream's output names its keys only at run time.
 */
function commandGiven(args: Readonly<Record<string, unknown>>, mapping: MappingInput | null): boolean {
  if (Object.hasOwn(args, "command")) return true;
  if (mapping?.kind === "product") return Object.hasOwn(mapping.kwargs, "command");
  if (mapping?.kind === "kwargs") {
    if (!Array.isArray(mapping.list)) return true;
    return (mapping.list as unknown[]).every((item) => isRef(item) || (typeof item === "object" && item !== null && Object.hasOwn(item, "command")));
  }
  return false;
}

/** A shell task's arguments (a call's or partial's) and mapped arguments, checked when it is added to the DAG. */
export function checkShellArgs(id: string, operator: ShellOperator, args: Readonly<Record<string, unknown>>, mapping: MappingInput | null): void {
  if (!commandGiven(args, mapping)) {
    throw new DagDefinitionError(`shell task '${id}' is given no command: pass it as an argument, e.g. shell("${id}")({ command: "echo hi" }), or map over it with .expand({ command: [...] })`);
  }
  for (const [name, value] of Object.entries(args)) checkArg(id, operator, name, value);
  if (mapping?.kind === "product") {
    // A mapped argument's value is the list of its instances' values.
    for (const [name, value] of Object.entries(mapping.kwargs)) {
      if (name !== "command") checkArg(id, operator, name, value);
      else if (Array.isArray(value)) for (const command of value) checkCommand(id, command);
    }
  } else if (mapping?.kind === "kwargs" && Array.isArray(mapping.list)) {
    // A list written in the DAG: each object's keys are arguments (a reference's are checked when the try runs).
    for (const item of mapping.list as unknown[]) {
      if (typeof item !== "object" || item === null || isRef(item)) continue;
      for (const [name, value] of Object.entries(item)) checkArg(id, operator, name, value);
    }
  }
}
