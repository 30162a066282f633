import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hashPassword } from '../../src/accounts/passwords.js';
import { s3Client } from '../support/bridge.js';
import { passivePorts, writeCliConfig } from '../support/cli-config.js';

/**
 * One memory budget (s3.memoryLimitMiB) for the part buffers of every upload, as the issue states
 * it: 40 parallel 64 MiB uploads (curl) with the cap at 64 MiB all land byte-exact, and the bridge
 * process (the built CLI, measured on its own: VmHWM) peaks at <= 96 MiB + the cap + 1 MiB per
 * session. Each file is distinct in every 1 MiB chunk, so a part landing in the wrong object or at
 * the wrong offset fails the hash check.
 */
/** The bridge as the image and the npm package start it (malloc and V8 settings, see the script). */
const BIN = resolve('bin/ftp-s3-bridge');
const MiB = 1024 * 1024;
const SESSIONS = 40;
const FILE_MIB = 64;
const CAP_MIB = 64;
const BOUND_MIB = 96 + CAP_MIB + SESSIONS;
const s3 = inject('s3');
let client: S3Client;
let bucket: string;
let child: ChildProcess;
let port: number;
/** The bridge's warnings and errors (its log is JSON on stdout), for the failure message. */
const problems: string[] = [];

beforeAll(async () => {
  client = s3Client(s3);
  bucket = `mem-${randomBytes(5).toString('hex')}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const file = writeCliConfig(s3, {
    ftp: { passive: passivePorts(SESSIONS + 10) },
    // The defaults of partSizeMiB (8) and queueSize (4): 40 uploads would buffer 1.25 GiB uncapped.
    // One client and one account: their shares (s3.memoryShare) would keep the cap from filling.
    s3: { memoryLimitMiB: CAP_MIB, memoryShare: { perClientPercent: 100, perAccountPercent: 100 } },
    log: { level: 'warn' },
    accounts: [{ username: 'cam', passwordHash: await hashPassword('pw'), bucket }],
  });
  // The script runs `node` from PATH: this one. It execs, so the pid is the bridge's own.
  const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, FTP_S3_BRIDGE__LOG__LEVEL: 'info' };
  child = spawn(BIN, ['--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  child.stdout?.on('data', (c: Buffer) => {
    for (const line of c.toString().split('\n')) if (/"level":(40|50|60)|"result":"error"/.test(line) && problems.length < 20) problems.push(line.slice(0, 600));
  });
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
afterAll(async () => {
  if (child?.exitCode === null) child.kill('SIGKILL');
  // 2.5 GiB: not left behind in a long-lived store.
  if (client) {
    // One by one: Swift's DeleteObjects wants a Content-MD5 the SDK no longer sends.
    for (let i = 0; i < SESSIONS; i += 8) {
      const batch = Array.from({ length: Math.min(8, SESSIONS - i) }, (_, n) => `mem-f${i + n}.bin`);
      await Promise.all(batch.map((Key) => client.send(new DeleteObjectCommand({ Bucket: bucket, Key })).catch(() => undefined)));
    }
    client.destroy();
  }
});

/** A field of /proc/<pid>/status (VmHWM: peak resident set, VmRSS: now) in MiB. */
const statusMiB = (pid: number, field: 'VmHWM' | 'VmRSS') =>
  Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;

/** 1 MiB chunk `c` of file `i`: a shared random block stamped with both numbers. */
function chunkOf(block: Buffer, i: number, c: number): Buffer {
  const chunk = Buffer.from(block);
  chunk.write(`file ${i} chunk ${c} `.padEnd(32), 0);
  return chunk;
}

/** Uploads file `i` with curl, fed chunk by chunk through its stdin; resolves with curl's exit code and the file's SHA-256. */
function upload(block: Buffer, i: number): Promise<{ i: number; code: number | null; stderr: string; hash: string }> {
  return new Promise((done, fail) => {
    const curl = spawn('curl', ['-sS', '--max-time', '170', '-T', '-', `ftp://cam:pw@127.0.0.1:${port}/mem-f${i}.bin`], { stdio: ['pipe', 'ignore', 'pipe'] });
    const hash = createHash('sha256');
    let stderr = '';
    curl.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    curl.on('error', fail);
    curl.stdin.on('error', () => undefined); // curl gave up: its exit code says why
    curl.on('close', (code) => done({ i, code, stderr, hash: hash.digest('hex') }));
    let c = 0;
    const feed = () => {
      while (c < FILE_MIB) {
        const chunk = chunkOf(block, i, c++);
        hash.update(chunk);
        if (!curl.stdin.write(chunk)) return void curl.stdin.once('drain', feed);
      }
      curl.stdin.end();
    };
    feed();
  });
}

async function objectHash(key: string): Promise<string> {
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const hash = createHash('sha256');
  for await (const chunk of res.Body as Readable) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

describe('memory budget', () => {
  it(`${SESSIONS} parallel ${FILE_MIB} MiB uploads with a ${CAP_MIB} MiB cap all land byte-exact, peak RSS <= 96 MiB + cap + 1 MiB/session`, { timeout: 400_000 }, async () => {
    const pid = child.pid as number;
    const atStart = statusMiB(pid, 'VmRSS');
    const block = randomBytes(MiB);
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: SESSIONS }, (_, i) => upload(block, i)));
    const seconds = (Date.now() - started) / 1000;
    const peak = statusMiB(pid, 'VmHWM');
    console.log(
      `memory: ${SESSIONS} x ${FILE_MIB} MiB in ${seconds.toFixed(1)} s; bridge RSS ${atStart.toFixed(0)} MiB at start, peak ${peak.toFixed(0)} MiB (bound ${BOUND_MIB})`,
    );
    expect(results.filter((r) => r.code !== 0).map((r) => `f${r.i}: exit ${r.code} ${r.stderr}`), problems.join('\n')).toEqual([]);
    expect(peak).toBeLessThanOrEqual(BOUND_MIB);
    // Every object, byte for byte (4 at a time: little memory in the test process).
    const bad: string[] = [];
    for (let n = 0; n < results.length; n += 4) {
      await Promise.all(
        results.slice(n, n + 4).map(async (r) => {
          if ((await objectHash(`mem-f${r.i}.bin`)) !== r.hash) bad.push(`f${r.i}`);
        }),
      );
    }
    expect(bad).toEqual([]);
  });
});
