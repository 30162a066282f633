import { describe, expect, it } from 'vitest';
import { AccountStore, type AccountsDiff } from '../../../src/accounts/account-store.js';
import { parseAccountsFile } from '../../../src/accounts/accounts-file.js';
import type { AccountConfig } from '../../../src/config/schema.js';
import { configSchema, hookAccountSchema } from '../../../src/config/schema.js';

const HASH = '$2b$10$' + 'a'.repeat(53);
const account = (username: string, extra: Partial<AccountConfig> = {}): AccountConfig => ({
  username,
  passwordHash: HASH,
  bucket: 'bucket-1',
  prefix: '',
  permissions: ['list'],
  ...extra,
});

describe('AccountStore', () => {
  it('replaces the file accounts at once and reports added, changed and removed names', () => {
    const store = new AccountStore([account('inline')]);
    const diffs: AccountsDiff[] = [];
    store.on('change', (d) => diffs.push(d));
    expect(store.replaceFileAccounts([account('a'), account('b')])).toEqual({ added: ['a', 'b'], changed: [], removed: [] });
    expect(store.replaceFileAccounts([account('a', { permissions: ['list', 'read'] }), account('c')])).toEqual({
      added: ['c'],
      changed: ['a'],
      removed: ['b'],
    });
    expect(store.replaceFileAccounts([account('a', { permissions: ['list', 'read'] }), account('c')])).toEqual({ added: [], changed: [], removed: [] });
    expect(diffs).toHaveLength(2);
    expect(store.get('b')).toBeUndefined();
    expect(store.get('a')?.permissions).toEqual(['list', 'read']);
    expect(store.all().map((a) => a.username)).toEqual(['inline', 'a', 'c']);
    expect(store.conflicts([account('inline'), account('z')])).toEqual(['inline']);
  });
});

describe('parseAccountsFile', () => {
  it('reads a YAML list, a JSON list and a mapping with accounts', () => {
    const yaml = `- username: a\n  passwordHash: '${HASH}'\n  bucket: bucket-1\n`;
    expect(parseAccountsFile(yaml)).toMatchObject({ ok: true, accounts: [{ username: 'a', prefix: '' }] });
    expect(parseAccountsFile(JSON.stringify({ accounts: [{ username: 'b', passwordHash: HASH, bucket: 'bucket-1' }] }))).toMatchObject({
      ok: true,
      accounts: [{ username: 'b' }],
    });
    expect(parseAccountsFile('')).toEqual({ ok: true, accounts: [] });
  });

  it('names every bad field, once per problem', () => {
    const result = parseAccountsFile(
      JSON.stringify([{ username: 'a', passwordHash: HASH, bucket: 'bucket-1', metadata: { 'ftp-user': 'x', Bad: 'y' }, tags: { t: 'v' }, bogus: 1 }]),
    );
    expect(result.ok).toBe(false);
    expect(!result.ok && result.problems.sort()).toEqual([
      'accounts.0.metadata.Bad: key must be lower-case letters, digits and "-"',
      'accounts.0.metadata.ftp-user: is set by the bridge',
      'accounts.0: Unrecognized key: "bogus"',
    ]);
    expect(parseAccountsFile('{ other: 1 }')).toEqual({ ok: false, problems: ['(root): must be a list of accounts or a mapping with only "accounts"'] });
    expect(parseAccountsFile('[').ok).toBe(false);
  });
});

describe('schema', () => {
  it('needs at least one account source', () => {
    const s3 = { endpoint: 'http://127.0.0.1:9000' };
    expect(configSchema.safeParse({ s3 }).success).toBe(false);
    expect(configSchema.safeParse({ s3, auth: { accountsFile: '/etc/accounts.yaml' } }).success).toBe(true);
    expect(configSchema.safeParse({ s3, auth: { hook: { url: 'https://idp.example/ftp' } } }).success).toBe(true);
  });

  it('validates a hook answer with the account fields, without username and passwordHash', () => {
    expect(hookAccountSchema.safeParse({ bucket: 'bucket-1', prefix: 'p/', quota: { maxBytes: 10 } }).success).toBe(true);
    expect(hookAccountSchema.safeParse({ bucket: 'bucket-1', username: 'x' }).success).toBe(false);
    expect(hookAccountSchema.safeParse({ bucket: 'bucket-1', sseKmsKeyId: 'k' }).success).toBe(false);
    expect(hookAccountSchema.safeParse({ bucket: 'bucket-1', serverSideEncryption: 'aws:kms', sseKmsKeyId: 'k' }).success).toBe(true);
  });
});
