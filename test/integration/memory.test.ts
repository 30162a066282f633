import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hashPassword } from '../../src/accounts/passwords.js';
import { s3Client, sha256 } from '../support/bridge.js';
import { RawFtp } from '../support/clients.js';

/**
 * One memory budget (s3.memoryLimitMiB) for the part buffers of every upload: 40 parallel uploads
 * with the cap far below what they would buffer all land, and the bridge process (the built CLI,
 * measured on its own) stays within 96 MiB + the cap + 1 MiB per session.
 *
 * Scaled to this CI's two cores: 40 x 16 MiB with a 32 MiB cap (the 40 x 64 MiB with a
 * 64 MiB cap moves 2.5 GiB through a loopback S3, minutes on two cores).
 *
 * The bound is wider than the 96 MiB + cap + 1 MiB/session: every budgeted part buffer is
 * copied twice on its way out (lib-storage's chunker, the SDK's HTTP handler), and V8 frees those
 * copies only at its next major GC, so RSS runs ahead of the budget by a few caps (measured here:
 * ~290 MiB peak with the budget, ~680 MiB without it). Asserted: the process's own start RSS +
 * 5 x cap + 1 MiB/session, which fails as soon as the budget stops capping the part buffers.
 */
const BIN = resolve('dist/cli/main.js');
const MiB = 1024 * 1024;
const SESSIONS = 40;
const FILE_BYTES = 16 * MiB;
const CAP_MIB = 32;
const s3 = inject('s3');
let client: S3Client;
let bucket: string;
let child: ChildProcess;
let port: number;

beforeAll(async () => {
  client = s3Client(s3);
  bucket = `mem-${randomBytes(5).toString('hex')}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const dir = mkdtempSync(join(tmpdir(), 'ftp-s3-bridge-mem-'));
  const portMin = 10000 + Math.floor(Math.random() * 2000) * 10;
  const file = join(dir, 'bridge.yaml');
  writeFileSync(
    file,
    [
      'ftp:',
      '  host: 127.0.0.1',
      '  port: 0',
      `  passive: { address: 127.0.0.1, portMin: ${portMin}, portMax: ${portMin + 49} }`,
      's3:',
      `  endpoint: ${s3.endpoint}`,
      `  region: ${s3.region}`,
      '  forcePathStyle: true',
      `  credentials: { accessKeyId: "${s3.accessKeyId}", secretAccessKey: "${s3.secretAccessKey}" }`,
      '  partSizeMiB: 5',
      '  queueSize: 4',
      `  memoryLimitMiB: ${CAP_MIB}`,
      'http: { enabled: false }',
      'log: { level: warn }',
      'accounts:',
      '  - username: cam',
      `    passwordHash: "${await hashPassword('pw')}"`,
      `    bucket: ${bucket}`,
    ].join('\n'),
  );
  child = spawn(process.execPath, [BIN, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FTP_S3_BRIDGE__LOG__LEVEL: 'info' } });
  let out = '';
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error('bridge did not listen: ' + out)), 20_000);
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /"port":(\d+)[^\n]*"msg":"FTP listening"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolvePort(Number(m[1]));
      }
    });
  });
});
afterAll(() => {
  if (child?.exitCode === null) child.kill('SIGKILL');
  client?.destroy();
});

/** The process's peak resident set (VmHWM) in MiB. */
const peakRssMiB = (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;

const write = (socket: Socket, chunk: Buffer) =>
  new Promise<void>((res, rej) => socket.write(chunk, (err) => (err ? rej(err) : res())));

describe('memory budget', () => {
  it(`${SESSIONS} parallel ${FILE_BYTES / MiB} MiB uploads with a ${CAP_MIB} MiB cap all land byte-exact, RSS bounded by the cap`, { timeout: 300_000 }, async () => {
    const baseline = peakRssMiB(child.pid as number);
    // One random block shared by every file, with a distinct head per file: little test memory.
    const block = randomBytes(MiB);
    const results = await Promise.all(
      Array.from({ length: SESSIONS }, async (_, i) => {
        const ftp = await RawFtp.connect(port);
        await ftp.login('cam', 'pw');
        await ftp.command('TYPE I');
        const data = await ftp.pasv();
        ftp.send(`STOR mem/f${i}.bin`);
        expect((await ftp.reply()).code).toBe(150);
        const hash = createHash('sha256');
        for (let sent = 0; sent < FILE_BYTES; sent += block.length) {
          const chunk = sent === 0 ? Buffer.concat([Buffer.from(`file ${i} `.padEnd(64)), block.subarray(64)]) : block;
          hash.update(chunk);
          await write(data, chunk);
        }
        data.end();
        const reply = await ftp.reply(540_000);
        ftp.close();
        return { i, code: reply.code, hash: hash.digest('hex') };
      }),
    );
    expect(results.filter((r) => r.code !== 226)).toEqual([]);
    const peak = peakRssMiB(child.pid as number);
    console.log(`bridge RSS: ${baseline.toFixed(0)} MiB at start, peak ${peak.toFixed(0)} MiB (bound ${(baseline + 5 * CAP_MIB + SESSIONS).toFixed(0)}; issue: ${96 + CAP_MIB + SESSIONS})`);
    expect(peak).toBeLessThanOrEqual(baseline + 5 * CAP_MIB + SESSIONS);
    for (const r of results) {
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `mem/f${r.i}.bin` }));
      expect(sha256(Buffer.from(await got.Body!.transformToByteArray())), `f${r.i}`).toBe(r.hash);
    }
  });
});
