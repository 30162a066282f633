import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { MOVED_KEYS, REMOVED_KEYS } from './migrate.js';
import { configSchema, type KeyDoc } from './schema.js';

/** One row of the reference table: a key path such as `ftp.passive.portMin` or `accounts[].bucket`. */
export interface KeyRow {
  key: string;
  /** The rendered default (Markdown): "required" for a key without one (within its section, where that is optional). */
  defaultText: string;
  /** The key's meaning (Markdown); undefined when the schema gives none. */
  description: string | undefined;
  /** A value key (not a section of other keys): every one needs a description. */
  leaf: boolean;
}

export const REFERENCE_START = '<!-- config-reference:start -->';
export const REFERENCE_END = '<!-- config-reference:end -->';
export const REGENERATE_COMMAND = 'npm run docs:config';

type Def = { type: string; innerType?: unknown; in?: unknown; shape?: Record<string, unknown>; element?: unknown; defaultValue?: unknown };
const defOf = (schema: unknown): Def => (schema as { _zod: { def: Def } })._zod.def;

/** The schema under its wrappers (optional, default, pipe...), with what the wrappers said about the key. */
function unwrap(schema: unknown): { core: unknown; meta: Partial<KeyDoc>; optional: boolean; hasDefault: boolean; defaultValue: unknown } {
  const meta: Partial<KeyDoc> = {};
  let optional = false;
  let hasDefault = false;
  let defaultValue: unknown;
  let s = schema;
  for (let depth = 0; depth < 20; depth++) {
    const own = z.globalRegistry.get(s as z.ZodType) as Partial<KeyDoc> | undefined;
    meta.description ??= own?.description;
    meta.defaultText ??= own?.defaultText;
    const def = defOf(s);
    if (def.type === 'optional') optional = true;
    if (def.type === 'default' && !hasDefault) {
      hasDefault = true;
      defaultValue = def.defaultValue;
    }
    if (def.innerType) s = def.innerType;
    else if (def.type === 'pipe' && def.in) s = def.in;
    else break;
  }
  return { core: s, meta, optional, hasDefault, defaultValue };
}

/** The object shape a key's rows continue into: its own (a section) or its array items' (a list of sections). */
function childShape(core: unknown): { shape: Record<string, unknown>; suffix: string } | undefined {
  const def = defOf(core);
  if (def.type === 'object' && def.shape) return { shape: def.shape, suffix: '' };
  if (def.type === 'array') {
    const item = defOf(unwrap(def.element).core);
    if (item.type === 'object' && item.shape) return { shape: item.shape, suffix: '[]' };
  }
  return undefined;
}

const code = (text: string) => `\`${text}\``;
function renderValue(value: unknown): string {
  if (typeof value === 'string') return code(value === '' ? '""' : value);
  if (Array.isArray(value)) return code(`[${value.map(String).join(', ')}]`);
  return code(String(value));
}

/** Every key of the configuration, in schema order, sections before their keys. */
export function configKeyRows(schema: unknown = configSchema): KeyRow[] {
  const rows: KeyRow[] = [];
  const walk = (shape: Record<string, unknown>, prefix: string) => {
    for (const [name, field] of Object.entries(shape)) {
      const key = prefix + name;
      const { core, meta, optional, hasDefault, defaultValue } = unwrap(field);
      const children = childShape(core);
      const defaultText =
        meta.defaultText ?? (hasDefault && (typeof defaultValue !== 'object' || Array.isArray(defaultValue)) ? renderValue(defaultValue) : optional ? 'none' : 'required');
      if (!children || meta.description !== undefined) rows.push({ key, defaultText, description: meta.description, leaf: !children });
      if (children) walk(children.shape, `${key}${children.suffix}.`);
    }
  };
  const root = childShape(unwrap(schema).core);
  if (root) walk(root.shape, '');
  return rows;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The generated part of docs/configuration.md: the reference table and the moved keys. */
export function renderConfigReference(): string {
  const lines = [
    `<!-- Generated from src/config/schema.ts and src/config/migrate.ts by \`${REGENERATE_COMMAND}\`: edit those, not this table. -->`,
    '',
    '| key | default | meaning |',
    '|---|---|---|',
    ...configKeyRows().map((r) => `| ${code(r.key)} | ${cell(r.defaultText)} | ${cell(r.description ?? '')} |`),
    '',
    '### Moved keys',
    '',
    'These keys moved; the old path still works, with a deprecation warning at start that names the new',
    'path, until the version given. A config that sets both paths is refused. `ftp-s3-bridge check-config`',
    'prints a file that uses old paths with them moved, comments kept (on stdout, as the file has it, secrets',
    'included: redirect it to the new file; the warnings go to stderr).',
    '',
    '| old path | new path | accepted until |',
    '|---|---|---|',
    ...MOVED_KEYS.map((k) => `| ${code(k.from)} | ${code(k.to)} | ${k.removedIn} |`),
    '',
    '### Removed keys',
    '',
    'These keys no longer do anything; a config that sets them still starts, with a warning, until the',
    'version given, then is refused like any unknown key.',
    '',
    '| key | why | ignored until |',
    '|---|---|---|',
    ...REMOVED_KEYS.map((k) => `| ${code(k.path)} | ${cell(k.why)} | ${k.removedIn} |`),
  ];
  return lines.join('\n');
}

/** `markdown` with the text between the reference markers replaced by `reference`. */
export function replaceReference(markdown: string, reference: string): string {
  const start = markdown.indexOf(REFERENCE_START);
  const end = markdown.indexOf(REFERENCE_END);
  if (start < 0 || end < start) throw new Error(`the markers ${REFERENCE_START} and ${REFERENCE_END} are missing`);
  return `${markdown.slice(0, start + REFERENCE_START.length)}\n${reference}\n${markdown.slice(end)}`;
}

/** `npm run docs:config`: rewrites the reference in docs/configuration.md (or the file given). */
function main(file = resolve(import.meta.dirname, '../../docs/configuration.md')): void {
  const before = readFileSync(file, 'utf8');
  const after = replaceReference(before, renderConfigReference());
  if (after !== before) writeFileSync(file, after);
  process.stdout.write(`${file}: ${after === before ? 'up to date' : 'updated'}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) main(process.argv[2]);
