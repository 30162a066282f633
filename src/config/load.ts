import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parse as parseYaml, parseDocument } from 'yaml';
import { z } from 'zod';
import { DeprecationLog, migrateDocument, migrateObject, migrateSegments, type Deprecation } from './migrate.js';
import { configSchema, type BridgeConfig } from './schema.js';

export type { Deprecation } from './migrate.js';

/**
 * Environment overrides: `FTP_S3_BRIDGE__` followed by the key path, segments separated by `__`,
 * each segment the key in any case with or without underscores (`PORT_MIN`, `portMin`, `PORTMIN`
 * all name `portMin`); array items by index. A string field takes the value verbatim (a secret
 * such as `p@ss #1` or a bucket named `123456789012` must not be read as YAML); any other field
 * parses it as a YAML scalar or flow collection:
 *   FTP_S3_BRIDGE__S3__ENDPOINT=http://127.0.0.1:9000
 *   FTP_S3_BRIDGE__FTP__PASSIVE__PORT_MIN=30000
 *   FTP_S3_BRIDGE__ACCOUNTS__0__PERMISSIONS=[list, read]
 */
const ENV_PREFIX = 'FTP_S3_BRIDGE__';
const CONFIG_FILE_ENV = 'FTP_S3_BRIDGE_CONFIG';

/** A configuration that cannot be used; `problems` holds one line per bad field. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** A validated configuration and what the loader noticed on the way. */
export interface LoadedConfig {
  config: BridgeConfig;
  /** Old key paths used (in the file or the environment), one entry per old path. */
  deprecations: Deprecation[];
  /** The config file with its old key paths moved to the new ones (YAML), when it had any. */
  migratedFile?: string;
}

/** Where deprecation warnings go when nobody takes them: one line each on stderr. */
const warnOnStderr = (d: Deprecation): void => {
  process.stderr.write(`config warning: ${d.message}\n`);
};

/**
 * Loads the YAML file (if any), moves old key paths to their new ones (see migrate.ts), applies
 * environment overrides and validates the result.
 */
export function readConfig(options: { file?: string; env?: NodeJS.ProcessEnv } = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const file = options.file ?? env[CONFIG_FILE_ENV];
  const log = new DeprecationLog();
  let raw: Json = {};
  let migratedFile: string | undefined;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError([`config file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
    }
    const doc = parseDocument(text);
    try {
      if (doc.errors[0]) throw doc.errors[0];
      raw = (doc.toJS() as Json) ?? {};
    } catch (err) {
      throw new ConfigError([`config file ${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`]);
    }
    if (typeof raw !== 'object' || Array.isArray(raw) || raw === null) {
      throw new ConfigError([`config file ${file}: the top level must be a mapping`]);
    }
    const problems = migrateDocument(doc, basename(file), log);
    if (problems.length) throw new ConfigError(problems);
    if (log.list.length) {
      migratedFile = doc.toString();
      raw = doc.toJS() as Json;
    }
  }
  applyEnvOverrides(raw as JsonObject, env, log);
  return { config: validate(raw), deprecations: log.list, ...(migratedFile === undefined ? {} : { migratedFile }) };
}

/**
 * {@link readConfig}, reporting old key paths to `onDeprecation` (default: a line each on stderr).
 */
export function loadConfig(options: { file?: string; env?: NodeJS.ProcessEnv; onDeprecation?: (d: Deprecation) => void } = {}): BridgeConfig {
  const loaded = readConfig(options);
  loaded.deprecations.forEach(options.onDeprecation ?? warnOnStderr);
  return loaded.config;
}

/**
 * Validates an already-parsed configuration object (old key paths moved first, reported to
 * `onDeprecation`, default: a line each on stderr). The input is not modified.
 */
export function parseConfig(raw: unknown, options: { onDeprecation?: (d: Deprecation) => void } = {}): BridgeConfig {
  const log = new DeprecationLog();
  const migrated = migrateObject(raw, 'config object', log);
  if (migrated.problems.length) throw new ConfigError(migrated.problems);
  const config = validate(migrated.raw);
  log.list.forEach(options.onDeprecation ?? warnOnStderr);
  return config;
}

/** Validates and deep-freezes: the configuration is read-only from here on. */
function validate(raw: unknown): BridgeConfig {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(formatIssues(result.error));
  return deepFreeze(result.data);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const field = issue.path.length ? issue.path.map(String).join('.') : '(root)';
    return `${field}: ${issue.message}`;
  });
}

const normaliseKey = (k: string): string => k.replace(/_/g, '').toLowerCase();

function applyEnvOverrides(target: JsonObject, env: NodeJS.ProcessEnv, log: DeprecationLog): void {
  const problems: string[] = [];
  const names = Object.keys(env).filter((n) => n.startsWith(ENV_PREFIX)).sort();
  // Variables that name the same key, one of them by its old path, would depend on their order.
  const setBy = new Map<string, { name: string; movedTo?: string }>();
  for (const name of names) {
    const migrated = migrateSegments(name.slice(ENV_PREFIX.length).split('__').filter(Boolean), normaliseKey);
    const segments = migrated.segments;
    const value = env[name];
    if (migrated.removed) log.add(migrated.removed, name);
    if (!segments.length || value === undefined) continue;
    if (migrated.moved) log.add(migrated.moved, name);
    const same = segments.map(normaliseKey).join('.');
    const earlier = setBy.get(same);
    const movedTo = migrated.moved?.to ?? earlier?.movedTo;
    if (earlier && movedTo) {
      problems.push(`${earlier.name} and ${name} both set ${movedTo}${segments.length > movedTo.split('.').length ? '...' : ''}: keep the one of the new path only`);
      continue;
    }
    setBy.set(same, { name, ...(migrated.moved ? { movedTo: migrated.moved.to } : {}) });
    let node: unknown = configSchema;
    let holder: JsonObject | Json[] = target;
    const path: string[] = [];
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i] as string;
      const last = i === segments.length - 1;
      const shape = objectShape(node);
      const element = arrayElement(node);
      let key: string | number;
      if (shape) {
        const match = Object.keys(shape).find((k) => normaliseKey(k) === normaliseKey(seg));
        if (!match) {
          problems.push(`${name}: unknown key "${seg}" under ${path.join('.') || '(root)'}`);
          break;
        }
        key = match;
        node = shape[match];
      } else if (element && /^\d+$/.test(seg)) {
        key = Number(seg);
        node = element;
      } else {
        problems.push(`${name}: "${seg}" cannot go under ${path.join('.') || '(root)'}`);
        break;
      }
      path.push(String(key));
      const container = holder as Record<string | number, Json>;
      if (last) {
        container[key] = isStringSchema(node) ? value : parseEnvValue(value);
      } else {
        const next = container[key];
        if (typeof next !== 'object' || next === null) {
          container[key] = objectShape(node) ? {} : [];
        }
        holder = container[key] as JsonObject | Json[];
      }
    }
  }
  if (problems.length) throw new ConfigError(problems);
}

function parseEnvValue(value: string): Json {
  try {
    return parseYaml(value) as Json;
  } catch {
    return value;
  }
}

// Minimal walk of zod 4 schemas so env segments can be matched against the real key names.
type AnySchema = { _zod: { def: Record<string, unknown> } };
function unwrap(schema: unknown): AnySchema | undefined {
  let s = schema as AnySchema | undefined;
  for (let i = 0; s && i < 10; i++) {
    const def = s._zod.def;
    if (def.innerType) s = def.innerType as AnySchema;
    else if (def.type === 'pipe' && def.in) s = def.in as AnySchema;
    else break;
  }
  return s;
}
function objectShape(schema: unknown): Record<string, unknown> | undefined {
  const s = unwrap(schema);
  return s?._zod.def.type === 'object' ? (s._zod.def.shape as Record<string, unknown>) : undefined;
}
function isStringSchema(schema: unknown): boolean {
  return unwrap(schema)?._zod.def.type === 'string';
}
function arrayElement(schema: unknown): unknown {
  const s = unwrap(schema);
  return s?._zod.def.type === 'array' ? s._zod.def.element : undefined;
}
