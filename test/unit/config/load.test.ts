import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../../src/accounts/passwords.js';
import { ConfigError, loadConfig, parseConfig } from '../../../src/config/load.js';
import { redactSecrets } from '../../../src/config/redact.js';
import { problemsOf } from '../../support/config-errors.js';

let dir: string;
let bcryptHash: string;
let fileCounter = 0;

/** The configuration file of the spec, verbatim apart from the generated hash. */
const specYaml = (hash: string): string => `ftp:
  host: 0.0.0.0
  port: 2121
  passive: { address: 203.0.113.10, portMin: 30000, portMax: 30049 }
s3:
  endpoint: http://127.0.0.1:9000
  region: us-east-1
  forcePathStyle: true
  credentials: { accessKeyId: x, secretAccessKey: y }
  partSizeMiB: 8
  queueSize: 4
accounts:
  - username: cam01
    passwordHash: "${hash}"
    bucket: uploads
    prefix: site-a/cam01/
    permissions: [list, read, write, delete, rename, mkdir]
`;

function writeConfig(text: string): string {
  const file = join(dir, `config-${++fileCounter}.yaml`);
  writeFileSync(file, text);
  return file;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ftp-s3-bridge-config-'));
  bcryptHash = await hashPassword('correct horse');
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('loadConfig: the spec file', () => {
  it('accepts the YAML of the spec and returns every value, with defaults for the rest', () => {
    expect(bcryptHash).toMatch(/^\$2b\$10\$.{53}$/);
    const config = loadConfig({ file: writeConfig(specYaml(bcryptHash)), env: {} });
    expect(config.ftp).toMatchObject({
      host: '0.0.0.0',
      port: 2121,
      passive: { address: '203.0.113.10', portMin: 30000, portMax: 30049 },
      greeting: 'ftp-s3-bridge ready',
      loginFailureDelayMs: 1000,
      dataConnectionTimeoutSeconds: 30,
    });
    // toMatchObject: keys added later have defaults of their own, tested where they are used.
    expect(config.s3).toMatchObject({
      endpoint: 'http://127.0.0.1:9000',
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      partSizeMiB: 8,
      queueSize: 4,
      maxAttempts: 5,
      storeOntoDirectory: 'allow',
      renameDirectoryMaxObjects: 1000,
      hashMaxStreamMiB: 1024,
    });
    expect(config.auth).toEqual({ accountsReload: { closeRemovedSessions: true, pollSeconds: 10 }, quotaRefreshSeconds: 300 });
    expect(config.accounts).toMatchObject([
      {
        username: 'cam01',
        passwordHash: bcryptHash,
        bucket: 'uploads',
        prefix: 'site-a/cam01/',
        permissions: ['list', 'read', 'write', 'delete', 'rename', 'mkdir'],
      },
    ]);
    expect(config.log).toEqual({ level: 'info', pretty: false });
  });

  it('also accepts an argon2id hash', async () => {
    const argon = await hashPassword('pw', 'argon2id');
    const config = loadConfig({ file: writeConfig(specYaml(argon)), env: {} });
    expect(config.accounts[0]?.passwordHash).toBe(argon);
  });

  it('reads the file named by FTP_S3_BRIDGE_CONFIG when no file is passed', () => {
    const file = writeConfig(specYaml(bcryptHash).replace('port: 2121', 'port: 2222'));
    const config = loadConfig({ env: { FTP_S3_BRIDGE_CONFIG: file } });
    expect(config.ftp.port).toBe(2222);
    expect(config.accounts[0]?.username).toBe('cam01');
  });

  it('an explicit file wins over FTP_S3_BRIDGE_CONFIG', () => {
    const explicit = writeConfig(specYaml(bcryptHash).replace('port: 2121', 'port: 2301'));
    const fromEnv = writeConfig(specYaml(bcryptHash).replace('port: 2121', 'port: 2302'));
    expect(loadConfig({ file: explicit, env: { FTP_S3_BRIDGE_CONFIG: fromEnv } }).ftp.port).toBe(2301);
  });
});

describe('loadConfig: environment overrides', () => {
  it('overrides the S3 endpoint', () => {
    const config = loadConfig({
      file: writeConfig(specYaml(bcryptHash)),
      env: { FTP_S3_BRIDGE__S3__ENDPOINT: 'https://s3.example.test:8443' },
    });
    expect(config.s3.endpoint).toBe('https://s3.example.test:8443');
    // The rest of the file is untouched.
    expect(config.s3.region).toBe('us-east-1');
    expect(config.s3.credentials).toEqual({ accessKeyId: 'x', secretAccessKey: 'y' });
  });

  it('parses PORT_MIN as a number onto passive.portMin', () => {
    const config = loadConfig({
      file: writeConfig(specYaml(bcryptHash)),
      env: { FTP_S3_BRIDGE__FTP__PASSIVE__PORT_MIN: '31000', FTP_S3_BRIDGE__FTP__PASSIVE__PORT_MAX: '31049' },
    });
    expect(config.ftp.passive.portMin).toBe(31000);
    expect(config.ftp.passive.portMax).toBe(31049);
    expect(config.ftp.passive.address).toBe('203.0.113.10');
  });

  it('passive.byHostname: the entry of this host\'s name replaces address and range; other hosts keep them', () => {
    const withEntries = (entries: string): string =>
      writeConfig(
        specYaml(bcryptHash).replace(
          '  passive: { address: 203.0.113.10, portMin: 30000, portMax: 30049 }\n',
          `  passive:\n    address: 203.0.113.10\n    portMin: 30000\n    portMax: 30049\n    byHostname: ${entries}\n`,
        ),
      );
    const own = withEntries(`{ ${JSON.stringify(hostname())}: { address: 198.51.100.7, portMin: 30100, portMax: 30103 }, other-pod-1: { address: 198.51.100.8 } }`);
    expect(loadConfig({ file: own, env: {} }).ftp.passive).toMatchObject({ address: '198.51.100.7', portMin: 30100, portMax: 30103, maxPerClient: 4 });
    // The entry wins over the environment too: the chart sets one or the other.
    expect(loadConfig({ file: own, env: { FTP_S3_BRIDGE__FTP__PASSIVE__ADDRESS: '192.0.2.1' } }).ftp.passive.address).toBe('198.51.100.7');
    // An entry with the range only keeps the address of the environment (the chart's NodePort pods).
    const rangeOnly = withEntries(`{ ${JSON.stringify(hostname())}: { portMin: 30010, portMax: 30019 } }`);
    expect(loadConfig({ file: rangeOnly, env: { FTP_S3_BRIDGE__FTP__PASSIVE__ADDRESS: '192.0.2.1' } }).ftp.passive).toMatchObject({
      address: '192.0.2.1',
      portMin: 30010,
      portMax: 30019,
    });
    const elsewhere = withEntries('{ other-pod-0: { address: 198.51.100.7, portMin: 30100, portMax: 30103 } }');
    expect(loadConfig({ file: elsewhere, env: {} }).ftp.passive).toMatchObject({ address: '203.0.113.10', portMin: 30000, portMax: 30049 });
    // This host's range is checked like the main one.
    expect(problemsOf(() => loadConfig({ file: withEntries(`{ ${JSON.stringify(hostname())}: { portMin: 30200 } }`), env: {} }))).toEqual([
      expect.stringMatching(/^ftp\.passive: .*portMin must be <= portMax/),
    ]);
  });

  it('a PORT_MIN above the file\'s portMax is reported against ftp.passive', () => {
    const problems = problemsOf(() =>
      loadConfig({ file: writeConfig(specYaml(bcryptHash)), env: { FTP_S3_BRIDGE__FTP__PASSIVE__PORT_MIN: '31000' } }),
    );
    expect(problems).toEqual([expect.stringMatching(/^ftp\.passive: .*portMin must be <= portMax/)]);
  });

  it('matches segments in any case, with or without underscores', () => {
    for (const name of ['FTP_S3_BRIDGE__FTP__PASSIVE__PORT_MIN', 'FTP_S3_BRIDGE__ftp__passive__portMin', 'FTP_S3_BRIDGE__FTP__PASSIVE__PORTMIN']) {
      const config = loadConfig({ file: writeConfig(specYaml(bcryptHash)), env: { [name]: '30010' } });
      expect(config.ftp.passive.portMin, name).toBe(30010);
    }
  });

  it('maps PART_SIZE_MIB onto s3.partSizeMiB as a number', () => {
    const config = loadConfig({ file: writeConfig(specYaml(bcryptHash)), env: { FTP_S3_BRIDGE__S3__PART_SIZE_MIB: '16' } });
    expect(config.s3.partSizeMiB).toBe(16);
  });

  it('gives s3.memoryShare its defaults, takes percents from 1 to 100, and sets them from the environment', () => {
    const file = writeConfig(specYaml(bcryptHash));
    expect(loadConfig({ file, env: {} }).s3.memoryShare).toEqual({ perClientPercent: 25, perAccountPercent: 50 });
    const config = loadConfig({ file, env: { FTP_S3_BRIDGE__S3__MEMORY_SHARE__PER_CLIENT_PERCENT: '100', FTP_S3_BRIDGE__S3__MEMORY_SHARE__PER_ACCOUNT_PERCENT: '1' } });
    expect(config.s3.memoryShare).toEqual({ perClientPercent: 100, perAccountPercent: 1 });
    for (const bad of ['0', '101', '12.5']) {
      expect(() => loadConfig({ file, env: { FTP_S3_BRIDGE__S3__MEMORY_SHARE__PER_CLIENT_PERCENT: bad } }), bad).toThrow(ConfigError);
    }
  });

  it('parses a flow sequence for an account\'s permissions, by index', () => {
    const config = loadConfig({
      file: writeConfig(specYaml(bcryptHash)),
      env: { FTP_S3_BRIDGE__ACCOUNTS__0__PERMISSIONS: '[list, read]' },
    });
    expect(config.accounts[0]?.permissions).toEqual(['list', 'read']);
    expect(config.accounts[0]?.username).toBe('cam01');
  });

  it('builds a whole configuration from the environment alone', () => {
    const config = loadConfig({
      env: {
        FTP_S3_BRIDGE__ACCOUNTS__0__USERNAME: 'cam02',
        FTP_S3_BRIDGE__ACCOUNTS__0__PASSWORD_HASH: bcryptHash,
        FTP_S3_BRIDGE__ACCOUNTS__0__BUCKET: 'uploads',
        FTP_S3_BRIDGE__S3__CREDENTIALS__ACCESS_KEY_ID: 'AKIDEXAMPLE',
        FTP_S3_BRIDGE__S3__CREDENTIALS__SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG',
        FTP_S3_BRIDGE__FTP__PORT: '2100',
      },
    });
    expect(config.accounts).toEqual([
      { username: 'cam02', passwordHash: bcryptHash, bucket: 'uploads', prefix: '', permissions: ['list', 'read', 'write', 'delete', 'rename', 'mkdir'] },
    ]);
    expect(config.s3.credentials).toEqual({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG' });
    expect(config.ftp.port).toBe(2100);
  });

  it('takes a string field verbatim instead of reading it as YAML', () => {
    const env = (secret: string, bucket = 'uploads') => ({
      FTP_S3_BRIDGE__S3__CREDENTIALS__SECRET_ACCESS_KEY: secret,
      FTP_S3_BRIDGE__ACCOUNTS__0__BUCKET: bucket,
    });
    const file = writeConfig(specYaml(bcryptHash));
    // " #" would start a YAML comment, "a: b" a mapping, digits a number, "!x" a tag, "[x]" a list.
    for (const secret of ['p@ss #1', '12345678', 'Welcome: x', '!secret', '[abc]', 'true', "'quoted'", ' padded ']) {
      expect(loadConfig({ file, env: env(secret) }).s3.credentials?.secretAccessKey, secret).toBe(secret);
    }
    // S3 bucket names may be all digits.
    expect(loadConfig({ file, env: env('y', '123456789012') }).accounts[0]?.bucket).toBe('123456789012');
    // An empty value is the empty string, which for a prefix means the whole bucket.
    expect(loadConfig({ file, env: { FTP_S3_BRIDGE__ACCOUNTS__0__PREFIX: '' } }).accounts[0]?.prefix).toBe('');
  });

  it('still parses YAML for non-string fields', () => {
    const config = loadConfig({
      file: writeConfig(specYaml(bcryptHash)),
      env: { FTP_S3_BRIDGE__S3__FORCE_PATH_STYLE: 'false', FTP_S3_BRIDGE__LOG__PRETTY: 'true', FTP_S3_BRIDGE__LOG__LEVEL: 'debug' },
    });
    expect(config.s3.forcePathStyle).toBe(false);
    expect(config.log).toEqual({ level: 'debug', pretty: true });
  });

  it('ignores variables without the FTP_S3_BRIDGE__ prefix', () => {
    const config = loadConfig({
      file: writeConfig(specYaml(bcryptHash)),
      env: { FTP_S3_BRIDGE_S3__ENDPOINT: 'http://ignored.test', S3__ENDPOINT: 'http://ignored.test', PATH: '/usr/bin' },
    });
    expect(config.s3.endpoint).toBe('http://127.0.0.1:9000');
  });
});

describe('loadConfig: problems', () => {
  it('an unknown key in the YAML names its path', () => {
    const yaml = specYaml(bcryptHash).replace('  queueSize: 4\n', '  queueSize: 4\n  bogusKey: 1\n');
    const problems = problemsOf(() => loadConfig({ file: writeConfig(yaml), env: {} }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^s3: .*bogusKey/);
  });

  it('an unknown top-level key is reported against the root', () => {
    const yaml = specYaml(bcryptHash) + 'logging:\n  level: debug\n';
    const problems = problemsOf(() => loadConfig({ file: writeConfig(yaml), env: {} }));
    expect(problems).toEqual([expect.stringMatching(/^\(root\): .*logging/)]);
  });

  it('an unknown key under ftp.passive names that path', () => {
    const yaml = specYaml(bcryptHash).replace('portMax: 30049 }', 'portMax: 30049, portCount: 50 }');
    const problems = problemsOf(() => loadConfig({ file: writeConfig(yaml), env: {} }));
    expect(problems).toEqual([expect.stringMatching(/^ftp\.passive: .*portCount/)]);
  });

  it('an unknown key deep in an account names the account path', () => {
    const yaml = specYaml(bcryptHash).replace('    bucket: uploads\n', '    bucket: uploads\n    buckt: typo\n');
    const problems = problemsOf(() => loadConfig({ file: writeConfig(yaml), env: {} }));
    expect(problems).toEqual([expect.stringMatching(/^accounts\.0: .*buckt/)]);
  });

  it('an unknown key in the environment names the variable and where it was looked up', () => {
    const problems = problemsOf(() =>
      loadConfig({ file: writeConfig(specYaml(bcryptHash)), env: { FTP_S3_BRIDGE__S3__PART_SIZE: '16' } }),
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^FTP_S3_BRIDGE__S3__PART_SIZE: unknown key "PART_SIZE" under s3$/);
  });

  it('several unknown environment variables give one line each', () => {
    const problems = problemsOf(() =>
      loadConfig({
        file: writeConfig(specYaml(bcryptHash)),
        env: { FTP_S3_BRIDGE__NOPE: '1', FTP_S3_BRIDGE__FTP__PASSIVE__PORT_MINIMUM: '1', FTP_S3_BRIDGE__ACCOUNTS__FIRST__BUCKET: 'b' },
      }),
    );
    expect(problems).toHaveLength(3);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^FTP_S3_BRIDGE__NOPE: .*"NOPE".*\(root\)/),
        expect.stringMatching(/^FTP_S3_BRIDGE__FTP__PASSIVE__PORT_MINIMUM: .*"PORT_MINIMUM".*ftp\.passive/),
        expect.stringMatching(/^FTP_S3_BRIDGE__ACCOUNTS__FIRST__BUCKET: .*"FIRST".*accounts/),
      ]),
    );
  });

  it('a bad value names the field: s3.partSizeMiB', () => {
    const problems = problemsOf(() =>
      loadConfig({ file: writeConfig(specYaml(bcryptHash)), env: { FTP_S3_BRIDGE__S3__PART_SIZE_MIB: '4' } }),
    );
    expect(problems).toEqual([expect.stringMatching(/^s3\.partSizeMiB: .+/)]);
  });

  it('several bad fields give one line each, each naming its field', () => {
    const yaml = specYaml(bcryptHash)
      .replace('port: 2121', 'port: 70000')
      .replace('partSizeMiB: 8', 'partSizeMiB: 2')
      .replace('queueSize: 4', 'queueSize: many')
      .replace('bucket: uploads', 'bucket: u')
      .replace('prefix: site-a/cam01/', 'prefix: /site-a')
      .replace('permissions: [list, read, write, delete, rename, mkdir]', 'permissions: [list, fly]');
    const problems = problemsOf(() => loadConfig({ file: writeConfig(yaml), env: {} }));
    const fields = problems.map((p) => p.slice(0, p.indexOf(': ')));
    expect(fields.sort()).toEqual(
      ['ftp.port', 's3.partSizeMiB', 's3.queueSize', 'accounts.0.bucket', 'accounts.0.prefix', 'accounts.0.permissions.1'].sort(),
    );
    for (const line of problems) expect(line).not.toContain('\n');
  });

  it('refuses a password that is not a bcrypt or argon2id hash', () => {
    const problems = problemsOf(() => loadConfig({ file: writeConfig(specYaml('plaintext-password')), env: {} }));
    expect(problems).toEqual([expect.stringMatching(/^accounts\.0\.passwordHash: /)]);
  });

  it('requires at least one account', () => {
    const problems = problemsOf(() => loadConfig({ file: writeConfig('ftp:\n  port: 2121\naccounts: []\n'), env: {} }));
    expect(problems).toEqual(['accounts: at least one account is required (accounts, auth.accountsFile or auth.hook)']);
  });

  it('a missing file is a ConfigError naming the file', () => {
    const file = join(dir, 'does-not-exist.yaml');
    const problems = problemsOf(() => loadConfig({ file, env: {} }));
    expect(problems).toEqual([`config file ${file}: ENOENT`]);
  });

  it('invalid YAML is a ConfigError naming the file, on one line', () => {
    const file = writeConfig('ftp:\n  port: [2121\n  host: x\n');
    const problems = problemsOf(() => loadConfig({ file, env: {} }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^config file ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid YAML: `));
    expect(problems[0]).not.toContain('\n');
  });

  it('a YAML file whose top level is not a mapping is a ConfigError', () => {
    const problems = problemsOf(() => loadConfig({ file: writeConfig('- just\n- a list\n'), env: {} }));
    expect(problems).toEqual([expect.stringMatching(/the top level must be a mapping$/)]);
  });

  it('parseConfig rejects an empty object with a line for accounts', () => {
    const problems = problemsOf(() => parseConfig({}));
    expect(problems).toEqual([expect.stringMatching(/^accounts: /)]);
  });
});

describe('redactSecrets', () => {
  it('hides secretAccessKey and passwordHash and keeps every other field', () => {
    const config = loadConfig({ file: writeConfig(specYaml(bcryptHash)), env: {} });
    const redacted = redactSecrets(config);
    expect(redacted.s3.credentials).toEqual({ accessKeyId: 'x', secretAccessKey: '[redacted]' });
    expect(redacted.accounts[0]).toEqual({
      username: 'cam01',
      passwordHash: '[redacted]',
      bucket: 'uploads',
      prefix: 'site-a/cam01/',
      permissions: ['list', 'read', 'write', 'delete', 'rename', 'mkdir'],
    });
    expect(redacted.ftp).toEqual(config.ftp);
    expect(redacted.s3.endpoint).toBe('http://127.0.0.1:9000');
    expect(JSON.stringify(redacted)).not.toContain(bcryptHash);
  });

  it('returns a copy and leaves the original untouched', () => {
    const config = loadConfig({ file: writeConfig(specYaml(bcryptHash)), env: {} });
    const redacted = redactSecrets(config);
    expect(redacted).not.toBe(config);
    expect(config.s3.credentials?.secretAccessKey).toBe('y');
    expect(config.accounts[0]?.passwordHash).toBe(bcryptHash);
  });

  it('hides a session token and leaves an absent one absent', () => {
    expect(redactSecrets({ accessKeyId: 'a', secretAccessKey: 's', sessionToken: 't' })).toEqual({
      accessKeyId: 'a',
      secretAccessKey: '[redacted]',
      sessionToken: '[redacted]',
    });
    expect(redactSecrets({ accessKeyId: 'a', sessionToken: undefined })).toEqual({ accessKeyId: 'a', sessionToken: undefined });
  });
});
