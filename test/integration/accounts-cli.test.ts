import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hashPassword } from '../../src/accounts/passwords.js';
import { s3Client } from '../support/bridge.js';
import { writeCliConfig } from '../support/cli-config.js';
import { BIN, startCli } from '../support/cli-process.js';
import { RawFtp, runProgram } from '../support/clients.js';

const tmp = mkdtempSync(join(tmpdir(), 'accounts-cli-'));
const s3 = inject('s3');
const client = s3Client(s3);
const bucket = `t-${randomBytes(6).toString('hex')}`;
const env = { FTP_S3_BRIDGE__S3__CREDENTIALS__SECRET_ACCESS_KEY: s3.secretAccessKey };
const cli = (args: string[]) =>
  runProgram('env', [...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, BIN, ...args]);

let hash: string;
let configFile: string;
let accountsFile: string;

beforeAll(async () => {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  hash = await hashPassword('pw');
  accountsFile = join(tmp, 'accounts.yaml');
  writeFileSync(
    accountsFile,
    [
      `- username: partner-a`,
      `  passwordHash: '${hash}'`,
      `  bucket: ${bucket}`,
      `  prefix: partners/a/`,
      `  permissions: [list, write]`,
      `  quota: { maxBytes: 1000, maxObjects: 10 }`,
      `- username: partner-b`,
      `  passwordHash: '${hash}'`,
      `  bucket: ${bucket}`,
      `  prefix: partners/b/`,
      `  credentials: { accessKeyId: ${s3.accessKeyId}, secretAccessKey: ${s3.secretAccessKey} }`,
    ].join('\n') + '\n',
  );
  configFile = writeCliConfig(
    s3,
    {
      ftp: { passive: { portMin: 0, portMax: 0 } },
      s3: { credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: 'placeholder' } },
      auth: { accountsFile, accountsReload: { pollSeconds: 600 } },
      accounts: [{ username: 'camera', passwordHash: hash, bucket, prefix: 'cams/' }],
    },
    join(tmp, 'config.yaml'),
  );
  for (const [key, size] of [['partners/a/1.bin', 300], ['partners/a/2.bin', 450], ['partners/b/x.bin', 7], ['cams/c.jpg', 1]] as const) {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.alloc(size) }));
  }
});
afterAll(() => {
  client.destroy();
  rmSync(tmp, { recursive: true, force: true });
});

describe('ftp-s3-bridge accounts', () => {
  it('validate: exit 0 for a good file; exit 2 and one line per bad field for a bad one', async () => {
    const good = await cli(['accounts', 'validate', accountsFile]);
    expect(good.code, good.stderr.toString()).toBe(0);
    expect(good.stdout.toString()).toContain('2 account(s) OK');
    const bad = join(tmp, 'bad.json');
    writeFileSync(
      bad,
      JSON.stringify([
        { username: 'ok', passwordHash: hash, bucket: 'bucket-1' },
        { username: 'ok', passwordHash: hash, bucket: 'bucket-1', serverSideEncryption: 'AES256', sseKmsKeyId: 'k' },
        { username: 'x y', passwordHash: hash, bucket: 'bucket-1', quota: { maxBytes: -1 }, bandwidth: { uploadKiBps: 0 } },
      ]),
    );
    const res = await cli(['accounts', 'validate', bad]);
    expect(res.code).toBe(2);
    expect(res.stdout.toString()).toBe('');
    expect(res.stderr.toString().trim().split('\n').sort()).toEqual(
      [
        `${bad}: accounts.1.sseKmsKeyId: only with serverSideEncryption: aws:kms`,
        `${bad}: accounts.1.username: duplicate account "ok"`,
        `${bad}: accounts.2.bandwidth.uploadKiBps: Too small: expected number to be >0`,
        `${bad}: accounts.2.quota.maxBytes: Too small: expected number to be >0`,
        `${bad}: accounts.2.username: must not contain spaces or control characters`,
      ].sort(),
    );
  });

  it('list: names, bucket/prefix, permissions and source; no secret', async () => {
    const res = await cli(['accounts', 'list', '--config', configFile]);
    expect(res.code, res.stderr.toString()).toBe(0);
    const lines = res.stdout.toString().trim().split('\n').map((l) => l.split(/\s+/));
    expect(lines).toEqual([
      ['USER', 'BUCKET/PREFIX', 'PERMISSIONS', 'SOURCE'],
      ['camera', `${bucket}/cams/`, 'list,read,write,delete,rename,mkdir', 'inline'],
      ['partner-a', `${bucket}/partners/a/`, 'list,write', 'file'],
      ['partner-b', `${bucket}/partners/b/`, 'list,read,write,delete,rename,mkdir', 'file'],
    ]);
    expect(res.stdout.toString()).not.toContain('$2b$');
    expect(res.stdout.toString()).not.toContain(s3.secretAccessKey);
  });

  it('usage: bytes and objects under each prefix against the quota, for all accounts or one', async () => {
    const all = await cli(['accounts', 'usage', '--config', configFile]);
    expect(all.code, all.stderr.toString()).toBe(0);
    const rows = all.stdout.toString().trim().split('\n').map((l) => l.split(/\s{2,}/));
    expect(rows).toEqual([
      ['USER', 'BUCKET/PREFIX', 'BYTES', 'MAX_BYTES', 'OBJECTS', 'MAX_OBJECTS'],
      ['camera', `${bucket}/cams/`, '1', '-', '1', '-'],
      ['partner-a', `${bucket}/partners/a/`, '750', '1000 (75.0%)', '2', '10 (20.0%)'],
      ['partner-b', `${bucket}/partners/b/`, '7', '-', '1', '-'],
    ]);
    const one = await cli(['accounts', 'usage', '--config', configFile, 'partner-a']);
    expect(one.stdout.toString().trim().split('\n')).toHaveLength(2);
    expect((await cli(['accounts', 'usage', '--config', configFile, 'nobody'])).code).toBe(1);
  });

  it('serve: SIGHUP re-reads the accounts file and the process keeps running', async () => {
    const { cli: bridge, process: child, port } = await startCli(configFile, { env });
    try {
      child.kill('SIGHUP');
      const reload = await bridge.waitFor((c) => c.logLines().find((l) => l.trigger === 'SIGHUP'), 'the SIGHUP log line');
      expect(reload.msg).toBe('accounts reloaded');
      const ftp = await RawFtp.connect(port);
      await ftp.login('partner-b', 'pw');
      ftp.close();
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGTERM');
    }
    expect(await bridge.exited).toBe(0);
  });
});
