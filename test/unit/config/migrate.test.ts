import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { hashPassword } from '../../../src/accounts/passwords.js';
import { configKeyRows } from '../../../src/config/docs.js';
import { loadConfig, parseConfig, readConfig, type Deprecation } from '../../../src/config/load.js';
import { MOVED_KEYS } from '../../../src/config/migrate.js';
import { problemsOf } from '../../support/config-errors.js';

let dir: string;
let hash: string;
let counter = 0;

const write = (text: string): string => {
  const file = join(dir, `old-${++counter}.yaml`);
  writeFileSync(file, text);
  return file;
};

/** A file that uses every old path (with a comment on a moved key). */
const oldYaml = () => `# the bridge of site A
ftp:
  port: 2121
  storeOntoDirectory: refuse # one ListObjectsV2 per upload, wanted here
  renameDirectoryMaxObjects: 50
  hashMaxStreamMiB: 16
s3:
  region: eu-west-1
accounts:
  - username: cam01
    passwordHash: "${hash}"
    bucket: uploads
accountsFile: /etc/ftp-s3-bridge/accounts.yaml
accountsReload: { closeRemovedSessions: false, pollSeconds: 30 }
quotaRefreshSeconds: 60
`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ftp-s3-bridge-migrate-'));
  hash = await hashPassword('pw');
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('moved keys', () => {
  it('every new path is a key of the schema and no old path is', () => {
    const keys = new Set(configKeyRows().map((r) => r.key));
    const sections = new Set([...keys].flatMap((k) => k.split('.').map((_, i, all) => all.slice(0, i + 1).join('.'))));
    for (const { from, to } of MOVED_KEYS) {
      expect(sections.has(to), to).toBe(true);
      expect(sections.has(from), from).toBe(false);
    }
  });

  it('a file with old paths loads as at the new ones, with one warning per old path naming the new path', () => {
    const file = write(oldYaml());
    const { config, deprecations, migratedFile } = readConfig({ file, env: {} });
    expect(config.s3).toMatchObject({ storeOntoDirectory: 'refuse', renameDirectoryMaxObjects: 50, hashMaxStreamMiB: 16, region: 'eu-west-1' });
    expect(config.ftp).not.toHaveProperty('storeOntoDirectory');
    expect(config.auth).toEqual({
      accountsFile: '/etc/ftp-s3-bridge/accounts.yaml',
      accountsReload: { closeRemovedSessions: false, pollSeconds: 30 },
      quotaRefreshSeconds: 60,
    });
    expect(deprecations.map((d) => d.message)).toEqual(
      MOVED_KEYS.map((k) => `${k.from} is deprecated: use ${k.to} (in ${file.split('/').pop()}; accepted until ${k.removedIn})`),
    );
    expect(deprecations[0]?.message).toMatch(/^ftp\.storeOntoDirectory is deprecated: use s3\.storeOntoDirectory /);

    // The migrated file: new paths only, comments kept, and it loads to the same config without warnings.
    expect(migratedFile).toBeDefined();
    const migrated = parseYaml(migratedFile as string) as Record<string, Record<string, unknown>>;
    expect(Object.keys(migrated).sort()).toEqual(['accounts', 'auth', 'ftp', 's3']);
    expect(migrated.ftp).toEqual({ port: 2121 });
    expect(migrated.s3).toEqual({ region: 'eu-west-1', storeOntoDirectory: 'refuse', renameDirectoryMaxObjects: 50, hashMaxStreamMiB: 16 });
    expect(migratedFile).toContain('# the bridge of site A');
    expect(migratedFile).toContain('storeOntoDirectory: refuse # one ListObjectsV2 per upload, wanted here');
    const again = readConfig({ file: write(migratedFile as string), env: {} });
    expect(again.deprecations).toEqual([]);
    expect(again.migratedFile).toBeUndefined();
    expect(again.config).toEqual(config);
  });

  it('loadConfig hands each deprecation to onDeprecation', () => {
    const seen: Deprecation[] = [];
    loadConfig({ file: write(oldYaml()), env: {}, onDeprecation: (d) => seen.push(d) });
    expect(seen.map((d) => d.from)).toEqual(MOVED_KEYS.map((k) => k.from));
  });

  it('environment overrides at old paths work too, and are named in the warning', () => {
    const file = write(`accounts:\n  - { username: cam01, passwordHash: "${hash}", bucket: uploads }\n`);
    const { config, deprecations, migratedFile } = readConfig({
      file,
      env: {
        FTP_S3_BRIDGE__FTP__STORE_ONTO_DIRECTORY: 'refuse',
        FTP_S3_BRIDGE__ACCOUNTS_RELOAD__POLL_SECONDS: '5',
        FTP_S3_BRIDGE__QUOTAREFRESHSECONDS: '7',
        FTP_S3_BRIDGE__ACCOUNTS_FILE: '/etc/accounts.yaml',
      },
    });
    expect(config.s3.storeOntoDirectory).toBe('refuse');
    expect(config.auth).toMatchObject({ accountsFile: '/etc/accounts.yaml', accountsReload: { pollSeconds: 5, closeRemovedSessions: true }, quotaRefreshSeconds: 7 });
    expect(migratedFile).toBeUndefined();
    expect(deprecations.map((d) => [d.from, d.sources])).toEqual(
      expect.arrayContaining([
        ['ftp.storeOntoDirectory', ['FTP_S3_BRIDGE__FTP__STORE_ONTO_DIRECTORY']],
        ['accountsReload', ['FTP_S3_BRIDGE__ACCOUNTS_RELOAD__POLL_SECONDS']],
        ['quotaRefreshSeconds', ['FTP_S3_BRIDGE__QUOTAREFRESHSECONDS']],
        ['accountsFile', ['FTP_S3_BRIDGE__ACCOUNTS_FILE']],
      ]),
    );
    expect(deprecations).toHaveLength(4);
  });

  it('an old path in the file and in the environment gives one warning naming both', () => {
    const file = write(oldYaml());
    const { config, deprecations } = readConfig({ file, env: { FTP_S3_BRIDGE__FTP__HASH_MAX_STREAM_MIB: '8' } });
    expect(config.s3.hashMaxStreamMiB).toBe(8);
    const hashWarnings = deprecations.filter((d) => d.from === 'ftp.hashMaxStreamMiB');
    expect(hashWarnings).toHaveLength(1);
    expect(hashWarnings[0]?.sources).toEqual([file.split('/').pop(), 'FTP_S3_BRIDGE__FTP__HASH_MAX_STREAM_MIB']);
  });

  it('an environment override at the new path overrides a file value at the old one', () => {
    const { config } = readConfig({ file: write(oldYaml()), env: { FTP_S3_BRIDGE__S3__STORE_ONTO_DIRECTORY: 'allow' } });
    expect(config.s3.storeOntoDirectory).toBe('allow');
  });

  it('both paths set is refused: in a file, in the environment, in an object', () => {
    const both = oldYaml().replace('  region: eu-west-1\n', '  region: eu-west-1\n  storeOntoDirectory: allow\n').replace('quotaRefreshSeconds: 60\n', 'quotaRefreshSeconds: 60\nauth: { quotaRefreshSeconds: 30 }\n');
    expect(problemsOf(() => readConfig({ file: write(both), env: {} }))).toEqual([
      expect.stringMatching(/^ftp\.storeOntoDirectory: moved to s3\.storeOntoDirectory, and both are set .*keep s3\.storeOntoDirectory only$/),
      expect.stringMatching(/^quotaRefreshSeconds: moved to auth\.quotaRefreshSeconds, and both are set .*keep auth\.quotaRefreshSeconds only$/),
    ]);
    const file = write(`accounts:\n  - { username: cam01, passwordHash: "${hash}", bucket: uploads }\n`);
    const envProblems = problemsOf(() =>
      readConfig({ file, env: { FTP_S3_BRIDGE__AUTH__ACCOUNTS_FILE: '/a.yaml', FTP_S3_BRIDGE__ACCOUNTS_FILE: '/b.yaml' } }),
    );
    expect(envProblems).toEqual([expect.stringMatching(/FTP_S3_BRIDGE__ACCOUNTS_FILE and FTP_S3_BRIDGE__AUTH__ACCOUNTS_FILE both set auth\.accountsFile/)]);
    const objectProblems = problemsOf(() =>
      parseConfig({ accountsFile: '/a.yaml', auth: { accountsFile: '/b.yaml' } }, { onDeprecation: () => undefined }),
    );
    expect(objectProblems).toEqual([expect.stringMatching(/^accountsFile: moved to auth\.accountsFile, and both are set/)]);
  });

  it('parseConfig moves old paths of an object without modifying it', () => {
    const input = { ftp: { port: 21, renameDirectoryMaxObjects: 3 }, accountsFile: '/etc/a.yaml' };
    const before = structuredClone(input);
    const seen: string[] = [];
    const config = parseConfig(input, { onDeprecation: (d) => seen.push(d.message) });
    expect(config.s3.renameDirectoryMaxObjects).toBe(3);
    expect(config.auth.accountsFile).toBe('/etc/a.yaml');
    expect(input).toEqual(before);
    expect(seen).toEqual([
      'ftp.renameDirectoryMaxObjects is deprecated: use s3.renameDirectoryMaxObjects (in config object; accepted until 0.3.0)',
      'accountsFile is deprecated: use auth.accountsFile (in config object; accepted until 0.3.0)',
    ]);
  });
});

describe('the parsed configuration', () => {
  it('is frozen at every level', () => {
    const config = parseConfig({ accounts: [{ username: 'a', passwordHash: hash, bucket: 'bucket-a' }], s3: { credentials: { accessKeyId: 'k', secretAccessKey: 's' } } });
    const unfrozen: string[] = [];
    const visit = (value: unknown, path: string) => {
      if (typeof value !== 'object' || value === null) return;
      if (!Object.isFrozen(value)) unfrozen.push(path);
      for (const [k, v] of Object.entries(value)) visit(v, `${path}.${k}`);
    };
    visit(config, 'config');
    expect(unfrozen).toEqual([]);
    expect(() => {
      (config.s3 as { storeOntoDirectory: string }).storeOntoDirectory = 'refuse';
    }).toThrow(TypeError);
    expect(() => (config.accounts as unknown[]).push({})).toThrow(TypeError);
    // Copies stay writable.
    const copy = { ...config.s3, storeOntoDirectory: 'refuse' as const };
    expect(copy.storeOntoDirectory).toBe('refuse');
  });
});

describe('removed keys', () => {
  it('s3.persistMultipartDigests is ignored with one warning, in a file, the environment and an object', () => {
    const file = write(`s3:\n  persistMultipartDigests: true\n  partSizeMiB: 8\naccounts:\n  - { username: cam01, passwordHash: "${hash}", bucket: uploads }\n`);
    const fromFile = readConfig({ file, env: { FTP_S3_BRIDGE__S3__PERSIST_MULTIPART_DIGESTS: 'false' } });
    expect(fromFile.config.s3.partSizeMiB).toBe(8);
    expect('persistMultipartDigests' in fromFile.config.s3).toBe(false);
    expect(fromFile.deprecations).toHaveLength(1);
    expect(fromFile.deprecations[0]?.sources).toEqual([basename(file), 'FTP_S3_BRIDGE__S3__PERSIST_MULTIPART_DIGESTS']);
    expect(fromFile.deprecations[0]?.message).toMatch(/^s3\.persistMultipartDigests is no longer used and is ignored: .*checksumAlgorithm/);
    expect(fromFile.migratedFile).not.toContain('persistMultipartDigests');

    const raw = { s3: { persistMultipartDigests: false }, accounts: [{ username: 'cam01', passwordHash: hash, bucket: 'uploads' }] };
    const seen: Deprecation[] = [];
    parseConfig(raw, { onDeprecation: (d) => seen.push(d) });
    expect(seen.map((d) => d.from)).toEqual(['s3.persistMultipartDigests']);
    expect(raw.s3.persistMultipartDigests).toBe(false);
  });
});
