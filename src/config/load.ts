import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { configSchema, type BridgeConfig } from './schema.js';

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
export const ENV_PREFIX = 'FTP_S3_BRIDGE__';
export const CONFIG_FILE_ENV = 'FTP_S3_BRIDGE_CONFIG';

/** A configuration that cannot be used; `problems` holds one line per bad field. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** Loads the YAML file (if any), applies environment overrides and validates the result. */
export function loadConfig(options: { file?: string; env?: NodeJS.ProcessEnv } = {}): BridgeConfig {
  const env = options.env ?? process.env;
  const file = options.file ?? env[CONFIG_FILE_ENV];
  let raw: Json = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError([`config file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
    }
    try {
      raw = (parseYaml(text) as Json) ?? {};
    } catch (err) {
      throw new ConfigError([`config file ${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`]);
    }
    if (typeof raw !== 'object' || Array.isArray(raw) || raw === null) {
      throw new ConfigError([`config file ${file}: the top level must be a mapping`]);
    }
  }
  applyEnvOverrides(raw as JsonObject, env);
  return parseConfig(raw);
}

/** Validates an already-parsed configuration object. */
export function parseConfig(raw: unknown): BridgeConfig {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(formatIssues(result.error));
  return result.data;
}

export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const field = issue.path.length ? issue.path.map(String).join('.') : '(root)';
    return `${field}: ${issue.message}`;
  });
}

const normaliseKey = (k: string): string => k.replace(/_/g, '').toLowerCase();

function applyEnvOverrides(target: JsonObject, env: NodeJS.ProcessEnv): void {
  const problems: string[] = [];
  const names = Object.keys(env).filter((n) => n.startsWith(ENV_PREFIX)).sort();
  for (const name of names) {
    const segments = name.slice(ENV_PREFIX.length).split('__').filter(Boolean);
    const value = env[name];
    if (!segments.length || value === undefined) continue;
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
