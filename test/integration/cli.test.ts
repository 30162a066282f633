import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { describe, expect, inject, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { verifyPassword } from '../../src/accounts/passwords.js';
import { s3Client } from '../support/bridge.js';
import { writeCliConfig, type CliConfig } from '../support/cli-config.js';
import { BIN, startCli } from '../support/cli-process.js';
import { RawFtp, curl, runProgram } from '../support/clients.js';

const tmp = mkdtempSync(join(tmpdir(), 'ftp-s3-bridge-cli-'));
const cli = (args: string[], input?: string, env: Record<string, string> = {}) =>
  runProgram('env', [...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, BIN, ...args], { input });

describe('ftp-s3-bridge CLI', () => {
  it('is built (run `npm run build`, which `npm test` does first)', () => {
    expect(existsSync(BIN)).toBe(true);
  });

  it('hash-password reads stdin and prints a bcrypt or argon2id hash that verifies', async () => {
    const bcrypt = await cli(['hash-password'], 's3cret pass\n');
    expect(bcrypt.code).toBe(0);
    const hash = bcrypt.stdout.toString().trim();
    expect(hash).toMatch(/^\$2b\$10\$/);
    expect(await verifyPassword('s3cret pass', hash)).toBe(true);
    const argon = await cli(['hash-password', '--algorithm', 'argon2id'], 's3cret pass\n');
    const argonHash = argon.stdout.toString().trim();
    expect(argonHash).toMatch(/^\$argon2id\$/);
    expect(await verifyPassword('s3cret pass', argonHash)).toBe(true);
  });

  it('exits 2 on a bad config with one line per bad field', async () => {
    const file = join(tmp, 'bad.yaml');
    writeFileSync(
      file,
      ['ftp:', '  port: 99999', '  bogus: 1', 's3:', '  partSizeMiB: 2', 'accounts:', '  - username: x', '    passwordHash: nothash', '    bucket: b1b'].join('\n'),
    );
    const res = await cli(['--config', file]);
    expect(res.code).toBe(2);
    const lines = res.stderr.trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(res.stderr).toMatch(/^config error: ftp\.port: /m);
    expect(res.stderr).toMatch(/^config error: ftp: .*bogus/m);
    expect(res.stderr).toMatch(/^config error: s3\.partSizeMiB: /m);
    expect(res.stderr).toMatch(/^config error: accounts\.0\.passwordHash: /m);
  });

  it('exits 2 for a missing config file and an unknown environment override', async () => {
    expect((await cli(['--config', join(tmp, 'missing.yaml')])).code).toBe(2);
    const file = join(tmp, 'ok-for-env.yaml');
    writeFileSync(file, 'accounts: []\n');
    const res = await cli(['check-config'], undefined, { FTP_S3_BRIDGE_CONFIG: file, FTP_S3_BRIDGE__S3__NOPE: '1' });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/FTP_S3_BRIDGE__S3__NOPE: unknown key "NOPE"/);
  });

  it('check-config prints a file with deprecated key paths moved, and warns on stderr naming the new paths', async () => {
    const hash = (await cli(['hash-password'], 'pw\n')).stdout.toString().trim();
    const file = join(tmp, 'old-paths.yaml');
    writeFileSync(
      file,
      ['ftp:', '  port: 2121', '  storeOntoDirectory: refuse # wanted', 'accounts:', `  - { username: cam01, passwordHash: "${hash}", bucket: uploads }`, 'quotaRefreshSeconds: 60', ''].join('\n'),
    );
    const res = await cli(['check-config', '--config', file]);
    expect(res.code, res.stderr.toString()).toBe(0);
    expect(res.stderr).toMatch(/^config warning: ftp\.storeOntoDirectory is deprecated: use s3\.storeOntoDirectory /m);
    expect(res.stderr).toMatch(/^config warning: quotaRefreshSeconds is deprecated: use auth\.quotaRefreshSeconds /m);
    const migrated = res.stdout.toString();
    expect(migrated).toContain('storeOntoDirectory: refuse # wanted');
    expect(parseYaml(migrated)).toEqual({
      ftp: { port: 2121 },
      s3: { storeOntoDirectory: 'refuse' },
      accounts: [{ username: 'cam01', passwordHash: hash, bucket: 'uploads' }],
      auth: { quotaRefreshSeconds: 60 },
    });
    // The printed file is current: checked again, it is just OK.
    writeFileSync(file, migrated);
    const again = await cli(['check-config', '--config', file]);
    expect([again.code, again.stdout.toString(), again.stderr.toString()]).toEqual([0, 'configuration OK\n', '']);
  });

  it('serve applies old key paths of the file and the environment, with one warning each naming the new path', async () => {
    const s3 = inject('s3');
    const bucket = `cli-old-${Date.now().toString(36)}`;
    const client = s3Client(s3);
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    const hash = (await cli(['hash-password'], 'pw\n')).stdout.toString().trim();
    // Old paths are no longer in the config's type: this is what an old file holds.
    const old = { ftp: { storeOntoDirectory: 'refuse' } } as unknown as CliConfig;
    const file = writeCliConfig(s3, { ...old, accounts: [{ username: 'cam01', passwordHash: hash, bucket, prefix: '' }] }, join(tmp, 'old-serve.yaml'));
    const { cli: bridge, process: child, port } = await startCli(file, { env: { FTP_S3_BRIDGE__FTP__RENAME_DIRECTORY_MAX_OBJECTS: '1' } });
    try {
      const warnings = bridge.logLines().filter((l) => l.level === 40 && String(l.msg).includes('deprecated'));
      expect(warnings.map((w) => [w.deprecated, w.use, w.in])).toEqual([
        ['ftp.storeOntoDirectory', 's3.storeOntoDirectory', ['old-serve.yaml']],
        ['ftp.renameDirectoryMaxObjects', 's3.renameDirectoryMaxObjects', ['FTP_S3_BRIDGE__FTP__RENAME_DIRECTORY_MAX_OBJECTS']],
      ]);
      expect(warnings[0]?.msg).toMatch(/^ftp\.storeOntoDirectory is deprecated: use s3\.storeOntoDirectory /);
      for (const name of ['a', 'b']) {
        expect((await curl(['--ftp-create-dirs', '-T', '-', `ftp://cam01:pw@127.0.0.1:${port}/dir/${name}.txt`], name)).code).toBe(0);
      }
      // storeOntoDirectory: refuse, from the file's old path.
      const onto = await curl(['-T', '-', `ftp://cam01:pw@127.0.0.1:${port}/dir`], 'x');
      expect(onto.code).not.toBe(0);
      expect(onto.stderr).toMatch(/550/);
      // renameDirectoryMaxObjects: 1, from the environment's old path: a directory of more is refused.
      const ftp = await RawFtp.connect(port);
      await ftp.login('cam01', 'pw');
      expect((await ftp.command('RNFR dir')).code).toBe(350);
      expect((await ftp.command('RNTO moved')).code).toBe(550);
      ftp.close();
      const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
      const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
      expect((listed.Contents ?? []).map((o) => o.Key).sort()).toEqual(['dir/', 'dir/a.txt', 'dir/b.txt']); // curl's MKD left the marker
    } finally {
      child.kill('SIGTERM');
    }
    expect(await bridge.exited).toBe(0);
    client.destroy();
  });

  it('serves from a config file with env overrides, logs the config without secrets, and stops on SIGTERM with 0', async () => {
    const s3 = inject('s3');
    const bucket = `cli-${Date.now().toString(36)}`;
    const client = s3Client(s3);
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    const hash = (await cli(['hash-password'], 'pw\n')).stdout.toString().trim();
    const file = writeCliConfig(
      s3,
      {
        ftp: { passive: { address: '127.0.0.1', portMin: 32000, portMax: 32009 } },
        s3: { region: 'us-east-1', credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: 'placeholder' } },
        http: { host: '127.0.0.1', port: 0 },
        accounts: [{ username: 'cam01', passwordHash: hash, bucket, prefix: 'site-a/cam01/' }],
      },
      join(tmp, 'serve.yaml'),
    );
    const { cli: bridge, process: child, port } = await startCli(file, { env: { FTP_S3_BRIDGE__S3__CREDENTIALS__SECRET_ACCESS_KEY: s3.secretAccessKey } });
    try {
      const out = bridge.output;
      expect(out).toContain('"msg":"effective configuration"');
      expect(out).toContain('[redacted]');
      expect(out).not.toContain(s3.secretAccessKey === 'S3RVER' ? '"secretAccessKey":"S3RVER"' : s3.secretAccessKey);
      expect(out).not.toContain(hash);
      const up = await curl(['-T', '-', `ftp://cam01:pw@127.0.0.1:${port}/snap.jpg`], 'jpeg bytes');
      expect(up.code).toBe(0);
      const { GetObjectCommand } = await import('@aws-sdk/client-s3');
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'site-a/cam01/snap.jpg' }));
      expect(await got.Body?.transformToString()).toBe('jpeg bytes');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await bridge.exited).toBe(0);
    client.destroy();
  });
});

/** The machine's own Node.js, when it is older than 22 (e.g. /usr/bin/node v20 on the CI image). */
function oldNode(): { path: string; version: string } | undefined {
  if (!existsSync('/usr/bin/node')) return undefined;
  const version = execFileSync('/usr/bin/node', ['--version'], { encoding: 'utf8' }).trim();
  return Number(/^v(\d+)\./.exec(version)?.[1]) < 22 ? { path: '/usr/bin/node', version } : undefined;
}

describe('on Node.js older than 22', () => {
  const expectRefused = (res: { code: number | null; stdout: Buffer; stderr: string }, version: string) => {
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(`ftp-s3-bridge needs Node.js >= 22 (this is ${version})\n`);
    expect(res.stdout.toString()).toBe('');
  };

  it('the CLI exits 2 at start with one line naming the required version (serve, dev, bin script)', async () => {
    // Any Node.js: process.version made to say v21 before main.js loads (--import runs first).
    const fake = `data:text/javascript,Object.defineProperty(process,'version',{value:'v21.7.3'})`;
    for (const args of [['--config', '/nonexistent.yaml'], ['dev', '--port', '0'], ['hash-password']]) {
      expectRefused(await runProgram(process.execPath, ['--import', fake, BIN, ...args], { input: 'pw\n' }), 'v21.7.3');
    }
    // The real thing, where the machine has an old Node.js: main.js as `npm start` runs it, and the
    // bin script (which runs the `node` on PATH) with that Node.js first on PATH.
    const old = oldNode();
    if (old) {
      expectRefused(await runProgram(old.path, [BIN, 'dev', '--port', '0']), old.version);
      expectRefused(await runProgram('env', [`PATH=${dirname(old.path)}:${process.env.PATH ?? ''}`, resolve('bin/ftp-s3-bridge'), '--config', '/nonexistent.yaml']), old.version);
    }
  });
});
