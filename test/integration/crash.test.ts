import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateBucketCommand, GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hashPassword } from '../../src/accounts/passwords.js';
import { s3Client, sha256 } from '../support/bridge.js';
import { passivePorts, writeCliConfig } from '../support/cli-config.js';
import { BIN, startCli } from '../support/cli-process.js';
import { RawFtp, curl, runProgram } from '../support/clients.js';

/**
 * kill -9 of the bridge (the built CLI, as production runs it) during 20 uploads: nothing of them
 * becomes visible, what was committed before is intact, the restarted bridge serves at once, and
 * `sweep-uploads` removes the orphaned multipart uploads.
 */
const MiB = 1024 * 1024;
const PREFIX = 'site/cam/';
const tmp = mkdtempSync(join(tmpdir(), 'ftp-s3-bridge-crash-'));
const s3 = inject('s3');
let client: S3Client;
let bucket: string;
let configFile: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  client = s3Client(s3);
  bucket = `crash-${randomBytes(5).toString('hex')}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  configFile = writeCliConfig(
    s3,
    {
      ftp: { passive: passivePorts(30), loginFailureDelayMs: 0 },
      s3: { partSizeMiB: 5 },
      log: { level: 'info' },
      accounts: [{ username: 'cam', passwordHash: await hashPassword('pw'), bucket, prefix: PREFIX }],
    },
    join(tmp, 'bridge.yaml'),
  );
});
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  client?.destroy();
});

/** Starts the CLI; resolves with its FTP port once it listens. */
async function startBridge(): Promise<{ child: ChildProcess; port: number; startedAt: number }> {
  const startedAt = Date.now();
  const { process: child, port } = await startCli(configFile);
  children.push(child);
  return { child, port, startedAt };
}

async function objectHashes(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const list = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: PREFIX }));
  for (const o of list.Contents ?? []) {
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key }));
    out.set((o.Key as string).slice(PREFIX.length), sha256(Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray())));
  }
  return out;
}

const write = (socket: Socket, chunk: Buffer) =>
  new Promise<void>((res, rej) => socket.write(chunk, (err) => (err ? rej(err) : res())));

describe('crash safety', () => {
  it('kill -9 during 20 uploads: none becomes visible, earlier objects are intact, the restart serves at once, the sweep cleans up', { timeout: 240_000 }, async () => {
    const first = await startBridge();
    // Committed before the crash: three files, one of which the crashing uploads will overwrite.
    const committed = new Map<string, Buffer>([
      ['before-1.bin', randomBytes(300 * 1024)],
      ['before-2.bin', randomBytes(6 * MiB)],
      ['upload-0.bin', randomBytes(1000)],
    ]);
    for (const [name, body] of committed) {
      expect((await curl(['-T', '-', `ftp://cam:pw@127.0.0.1:${first.port}/${name}`], body)).code).toBe(0);
    }

    // 20 uploads, each past its first 5 MiB part (so multipart uploads exist), none finished.
    const sessions = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const ftp = await RawFtp.connect(first.port);
        await ftp.login('cam', 'pw');
        await ftp.command('TYPE I');
        const data = await ftp.pasv();
        ftp.send(`STOR upload-${i}.bin`);
        expect((await ftp.reply()).code).toBe(150);
        data.on('error', () => undefined);
        ftp.socket.on('error', () => undefined);
        await write(data, randomBytes(6 * MiB));
        return { ftp, data };
      }),
    );
    // The first parts reach S3: wait for the multipart uploads where the store lists them.
    if (s3.capabilities.listMultipartUploads) {
      await expect
        .poll(async () => ((await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: PREFIX }))).Uploads ?? []).length, { timeout: 60_000 })
        .toBeGreaterThanOrEqual(1);
    } else {
      await sleep(2000);
    }
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    // The clients see their connections die; one finishes its "upload" anyway, as a device would.
    // The bridge has exited: nothing can commit any more, so S3 is looked at at once.
    for (const s of sessions) s.data.end();
    for (const s of sessions) s.ftp.close();

    const after = await objectHashes();
    expect([...after.keys()].sort()).toEqual([...committed.keys()].sort());
    for (const [name, body] of committed) expect(after.get(name), name).toBe(sha256(body));

    // The restarted bridge serves at once.
    const second = await startBridge();
    const ftp = await RawFtp.connect(second.port);
    await ftp.login('cam', 'pw');
    expect(Date.now() - second.startedAt).toBeLessThan(10_000);
    ftp.close();
    const again = randomBytes(100_000);
    expect((await curl(['-T', '-', `ftp://cam:pw@127.0.0.1:${second.port}/after.bin`], again)).code).toBe(0);
    expect((await objectHashes()).get('after.bin')).toBe(sha256(again));
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.once('exit', r));

    // Orphaned multipart uploads: swept by age (stores that list them).
    if (s3.capabilities.listMultipartUploads) {
      const pending = async () =>
        ((await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: PREFIX }))).Uploads ?? []).length;
      const orphans = await pending();
      expect(orphans).toBeGreaterThanOrEqual(1);
      const sweep = (age: string) => runProgram(process.execPath, [BIN, 'sweep-uploads', '--config', configFile, '--older-than', age]);
      const young = await sweep('1h');
      expect(young.code).toBe(0);
      expect(JSON.parse(young.stdout.toString())).toEqual({ aborted: 0 });
      expect(await pending()).toBe(orphans);
      const old = await sweep('0s');
      expect(old.code).toBe(0);
      expect(JSON.parse(old.stdout.toString())).toEqual({ aborted: orphans });
      expect(await pending()).toBe(0);
    }
  });

  it('sweep-uploads refuses a bad duration with exit 2', async () => {
    const res = await runProgram(process.execPath, [BIN, 'sweep-uploads', '--config', configFile, '--older-than', 'soon']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/invalid duration/);
  });
});
