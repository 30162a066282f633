import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REFERENCE_END, REFERENCE_START, REGENERATE_COMMAND, configKeyRows, renderConfigReference, replaceReference } from '../../../src/config/docs.js';

const DOC = resolve(import.meta.dirname, '../../../docs/configuration.md');

describe('docs/configuration.md', () => {
  it('holds the reference table generated from the schema', () => {
    const text = readFileSync(DOC, 'utf8');
    const expected = replaceReference(text, renderConfigReference());
    if (text !== expected) {
      expect.fail(`docs/configuration.md differs from src/config/schema.ts (or migrate.ts): run \`${REGENERATE_COMMAND}\` and commit the result`);
    }
  });

  it('every key has a description in the schema', () => {
    const missing = configKeyRows()
      .filter((r) => r.leaf && !r.description)
      .map((r) => r.key);
    expect(missing, 'add .meta(doc("...")) to these keys in src/config/schema.ts').toEqual([]);
  });

  it('renders keys in schema order with their defaults, and links to sibling docs', () => {
    const rows = configKeyRows();
    const row = (key: string) => rows.find((r) => r.key === key);
    expect(rows[0]?.key).toBe('ftp.host');
    expect(row('ftp.port')?.defaultText).toBe('`2121`');
    expect(row('s3.uploadDigests')?.defaultText).toBe('`[SHA-256, MD5]`');
    expect(row('accounts[].prefix')?.defaultText).toBe('`""`');
    expect(row('accounts[].bucket')?.defaultText).toBe('required');
    expect(row('ftp.passive.maxPerClient')?.defaultText).toBe('a quarter of the range, at least `4`');
    expect(row('s3.storeOntoDirectory')?.defaultText).toBe('`allow`');
    expect(row('auth.quotaRefreshSeconds')?.description).toContain('[Quotas](accounts.md#quotas)');
    // Sections without a description of their own get no row; their keys do.
    expect(row('auth.hook')).toBeUndefined();
    expect(row('auth.hook.url')?.leaf).toBe(true);
  });

  it('replaceReference needs both markers', () => {
    expect(replaceReference(`a\n${REFERENCE_START}\nold\n${REFERENCE_END}\nb\n`, 'new')).toBe(`a\n${REFERENCE_START}\nnew\n${REFERENCE_END}\nb\n`);
    expect(() => replaceReference('no markers', 'new')).toThrow(/markers/);
  });
});
