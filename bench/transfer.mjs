#!/usr/bin/env node
// bench/transfer.mjs - throughput of the bridge against direct S3 access, on loopback, in one run.
//
// Starts a real S3 (s3rver, or Swift + s3api with BENCH_S3_BACKEND=swift), the built bridge as a
// separate process (`node dist/cli/main.js --config <tmp yaml>`), and measures, for the same
// deterministic pseudo-random data:
//   upload:   lib-storage Upload straight to S3   vs   FTP STOR through the bridge
//   download: GetObject straight from S3          vs   FTP RETR through the bridge
// Every transfer is SHA-256-checked. It also records the bridge's peak RSS (VmHWM, and VmRSS sampled
// every 100 ms) and the CPU time of each process per phase. Prints a table, writes
// bench/results/latest.json. Exit 0 when it measured (targets missed or not), 1 on any error.
// Settings: see bench/README.md (all BENCH_* environment variables).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Client as FtpClient } from 'basic-ftp';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = resolve(process.env.BENCH_BRIDGE_BIN || join(ROOT, 'dist/cli/main.js'));
const MiB = 1024 * 1024;
const CHUNK = MiB; // the source stream's chunk size
const BASE_BYTES = 16 * MiB; // the random block the source repeats (each 1 MiB chunk gets its own counter)
const TARGET_RATIO = 0.95;
const RSS_BASE_MiB = 96;

const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);

// ---- settings ------------------------------------------------------------------------------------
function intEnv(name, def, min = 1) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min} (got "${raw}")`);
  return n;
}

function readSettings() {
  const backend = process.env.BENCH_S3_BACKEND || 's3rver';
  if (backend !== 's3rver' && backend !== 'swift') throw new Error(`BENCH_S3_BACKEND must be s3rver or swift (got "${backend}")`);
  const sizeMiB = intEnv('BENCH_SIZE_MIB', 1024);
  const pasvMin = intEnv('BENCH_PASV_MIN', 39500, 1024);
  return {
    backend,
    sizeMiB,
    bytes: sizeMiB * MiB,
    partSizeMiB: intEnv('BENCH_PART_SIZE_MIB', 8, 5),
    queueSize: intEnv('BENCH_QUEUE_SIZE', 4),
    rounds: intEnv('BENCH_ROUNDS', 1),
    // Each measured transfer; default: 10 min, or longer than 2 MB/s would need.
    timeoutMs: intEnv('BENCH_TIMEOUT_S', Math.max(600, Math.ceil(sizeMiB / 2))) * 1000,
    pasvMin,
    pasvMax: intEnv('BENCH_PASV_MAX', pasvMin + 9, pasvMin),
    logLevel: process.env.BENCH_LOG_LEVEL || 'info',
    bridgeBin: BIN,
    bridgeNodeArgs: process.env.BENCH_BRIDGE_NODE_ARGS || '',
    output: resolve(process.env.BENCH_OUTPUT || join(ROOT, 'bench/results/latest.json')),
    swiftBase: process.env.BENCH_SWIFT_BASE || '/tmp/ftp-s3-bridge-swift-bench',
    swiftKeep: process.env.BENCH_SWIFT_KEEP === '1',
  };
}

// ---- cleanup (LIFO), also on SIGINT/SIGTERM ------------------------------------------------------
const cleanups = [];
let cleaning;
function runCleanups() {
  cleaning ??= (async () => {
    while (cleanups.length) {
      const { name, fn } = cleanups.pop();
      try {
        await fn();
      } catch (err) {
        log(`cleanup "${name}" failed: ${err?.message ?? err}`);
      }
    }
  })();
  return cleaning;
}
const onCleanup = (name, fn) => cleanups.push({ name, fn });
/** The bridge's last log lines, for error reports. */
let bridgeLogTail;
let stopping = false; // a signal arrived: failures from here on are the cleanup's doing
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
  process.once(signal, () => {
    stopping = true;
    log(`${signal}: cleaning up`);
    void runCleanups().finally(() => process.exit(code));
  });
}

/** Runs `run()` with a deadline; on expiry calls `abort()` and rejects. */
async function withTimeout(label, ms, run, abort) {
  let timer;
  const work = run();
  work.catch(() => undefined);
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => {
      try {
        abort?.();
      } catch {
        // the timeout error below is what matters
      }
      reject(new Error(`${label}: timed out after ${ms / 1000} s`));
    }, ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const waitExit = (child) =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', r));

async function stopChild(child, graceMs = 10_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const exited = await Promise.race([waitExit(child).then(() => true), sleep(graceMs).then(() => false)]);
  if (!exited) {
    child.kill('SIGKILL');
    await waitExit(child);
  }
}

/** Keeps the last lines a child wrote, for error messages. */
function tailOf(stream, keep = 60) {
  const lines = [];
  createInterface({ input: stream }).on('line', (l) => {
    lines.push(l);
    if (lines.length > keep) lines.shift();
  });
  return () => lines.join('\n');
}

// ---- data: deterministic pseudo-random stream ----------------------------------------------------
/** 16 MiB of AES-256-CTR keystream under a fixed key: the same bytes on every run and machine. */
function makeBaseBlock() {
  const cipher = createCipheriv('aes-256-ctr', Buffer.alloc(32, 0x42), Buffer.alloc(16, 0));
  return Buffer.concat([cipher.update(Buffer.alloc(BASE_BYTES)), cipher.final()]);
}

/** `total` bytes in 1 MiB chunks: the base block repeated, each chunk stamped with its index; hashed as it goes. */
class PatternSource extends Readable {
  constructor(base, total) {
    super({ highWaterMark: CHUNK });
    this.base = base;
    this.total = total;
    this.offset = 0;
    this.index = 0;
    this.hash = createHash('sha256');
  }

  _read() {
    if (this.offset >= this.total) {
      this.push(null);
      return;
    }
    const n = Math.min(CHUNK, this.total - this.offset);
    const chunk = Buffer.allocUnsafe(n);
    const at = this.offset % this.base.length;
    this.base.copy(chunk, 0, at, at + n);
    if (n >= 8) chunk.writeBigUInt64LE(BigInt(this.index), 0);
    this.hash.update(chunk);
    this.offset += n;
    this.index += 1;
    this.push(chunk);
  }

  digest() {
    return this.hash.digest('hex');
  }
}

/** Consumes a download: counts and hashes. */
class HashSink extends Writable {
  constructor() {
    super({ highWaterMark: CHUNK });
    this.hash = createHash('sha256');
    this.bytes = 0;
  }

  _write(chunk, _encoding, callback) {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    callback();
  }

  digest() {
    return this.hash.digest('hex');
  }
}

// ---- S3 backends -----------------------------------------------------------------------------------
async function startS3rver() {
  const dir = mkdtempSync(join(os.tmpdir(), 'ftp-s3-bridge-bench-s3rver-'));
  onCleanup('s3rver data dir', () => rmSync(dir, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['--openssl-legacy-provider', join(ROOT, 'test/support/s3rver-main.mjs'), dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onCleanup('s3rver', () => stopChild(child));
  const stderr = tailOf(child.stderr);
  const port = await withTimeout('starting s3rver', 30_000, () =>
    new Promise((resolvePort, reject) => {
      createInterface({ input: child.stdout }).once('line', (line) => {
        try {
          resolvePort(JSON.parse(line).port);
        } catch {
          reject(new Error(`s3rver printed "${line}"`));
        }
      });
      child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}: ${stderr()}`)));
    }),
  );
  return {
    name: 's3rver',
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    pids: () => [child.pid],
  };
}

/** Swift + s3api via infra/swift-s3, in its own base dir and on its own ports (never the CI instance's). */
async function startSwift(settings) {
  const base = settings.swiftBase;
  const env = {
    ...process.env,
    SWIFT_S3_PROXY_PORT: process.env.SWIFT_S3_PROXY_PORT ?? '18080',
    SWIFT_S3_ACCOUNT_PORT: process.env.SWIFT_S3_ACCOUNT_PORT ?? '16202',
    SWIFT_S3_CONTAINER_PORT: process.env.SWIFT_S3_CONTAINER_PORT ?? '16201',
    SWIFT_S3_OBJECT_PORT: process.env.SWIFT_S3_OBJECT_PORT ?? '16200',
    SWIFT_S3_MEMCACHED_PORT: process.env.SWIFT_S3_MEMCACHED_PORT ?? '21211',
  };
  const stop = async () => {
    const args = [join(ROOT, 'infra/swift-s3/stop-swift-s3.sh'), base, '--purge'];
    const res = spawnSync('bash', args, { encoding: 'utf8', timeout: 180_000 });
    if (res.status !== 0) throw new Error(`stop-swift-s3.sh exited ${res.status}: ${res.stderr}`);
  };
  const script = join(ROOT, 'infra/swift-s3/start-swift-s3.sh');
  log(`starting Swift in ${base} (proxy port ${env.SWIFT_S3_PROXY_PORT}; first start takes ~25 s)`);
  const child = spawn('bash', [script, base], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  // Registered before it is up: an interrupted start still gets stopped (the script also cleans up
  // after its own failures). A Swift that was already running in this base dir is left alone.
  let preExisting = false;
  onCleanup('swift', async () => {
    await stopChild(child);
    if (preExisting || settings.swiftKeep) {
      log(`leaving Swift in ${base} running (${preExisting ? 'it was running before' : 'BENCH_SWIFT_KEEP=1'})`);
      return;
    }
    if (existsSync(join(base, 'run/pids')) || existsSync(join(base, 'run/mounted')) || existsSync(base)) await stop();
  });
  const code = await withTimeout('starting Swift', 15 * 60_000, () =>
    new Promise((r) => child.once('exit', (c) => r(c))),
  );
  if (code !== 0) throw new Error(`start-swift-s3.sh exited ${code}:\n${stderr.split('\n').slice(-30).join('\n')}`);
  preExisting = /already running/.test(stderr);
  const vars = Object.fromEntries(
    stdout
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  const swiftPids = () => {
    // every process whose command line names the base dir: the servers and their forked workers
    const pids = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (readFileSync(`/proc/${entry}/cmdline`, 'latin1').includes(base)) pids.push(Number(entry));
      } catch {
        // gone
      }
    }
    return pids;
  };
  return {
    name: 'swift',
    endpoint: vars.S3_ENDPOINT,
    region: vars.S3_REGION || 'us-east-1',
    accessKeyId: vars.S3_ACCESS_KEY_ID,
    secretAccessKey: vars.S3_SECRET_ACCESS_KEY,
    pids: swiftPids,
  };
}

/** Configured like the bridge's own client (src/storage/s3-client.ts): keep-alive, 256 sockets. */
function makeS3Client(backend) {
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 256 });
  return new S3Client({
    endpoint: backend.endpoint,
    region: backend.region,
    forcePathStyle: true,
    credentials: { accessKeyId: backend.accessKeyId, secretAccessKey: backend.secretAccessKey },
    maxAttempts: 5,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: new NodeHttpHandler({ connectionTimeout: 10_000, requestTimeout: 60_000, httpAgent: agent }),
  });
}

// ---- the bridge, as a separate process -------------------------------------------------------------
function hashPassword(password) {
  const res = spawnSync(process.execPath, [BIN, 'hash-password'], { input: password + '\n', encoding: 'utf8', timeout: 60_000 });
  const hash = res.stdout?.trim();
  if (res.status !== 0 || !hash) throw new Error(`hash-password failed (${res.status}): ${res.stderr}`);
  return hash;
}

async function startBridge(settings, backend, bucket, tmp) {
  const user = 'bench';
  const password = randomBytes(12).toString('hex');
  const q = (s) => JSON.stringify(s); // a JSON string is a YAML scalar
  const file = join(tmp, 'bridge.yaml');
  const config = [
    'ftp:',
    '  host: 127.0.0.1',
    '  port: 0',
    `  passive: { address: 127.0.0.1, portMin: ${settings.pasvMin}, portMax: ${settings.pasvMax} }`,
    's3:',
    `  endpoint: ${q(backend.endpoint)}`,
    `  region: ${q(backend.region)}`,
    '  forcePathStyle: true',
    `  credentials: { accessKeyId: ${q(backend.accessKeyId)}, secretAccessKey: ${q(backend.secretAccessKey)} }`,
    `  partSizeMiB: ${settings.partSizeMiB}`,
    `  queueSize: ${settings.queueSize}`,
    '  requestChecksumCalculation: WHEN_REQUIRED',
    '  responseChecksumValidation: WHEN_REQUIRED',
    'accounts:',
    `  - username: ${user}`,
    `    passwordHash: ${q(hashPassword(password))}`,
    `    bucket: ${q(bucket)}`,
    `log: { level: ${settings.logLevel} }`,
  ];
  // Builds with a metrics/health HTTP server (default 0.0.0.0:9464) get it on loopback and a free
  // port; builds whose config has no such section refuse the key, so it is only added when accepted.
  const optional = ['http: { host: 127.0.0.1, port: 0 }'];
  for (const extra of optional) {
    writeFileSync(file, [...config, extra, ''].join('\n'), { mode: 0o600 });
    const check = spawnSync(process.execPath, [BIN, 'check-config', '--config', file], { encoding: 'utf8', timeout: 60_000 });
    if (check.status === 0) config.push(extra);
  }
  writeFileSync(file, [...config, ''].join('\n'), { mode: 0o600 });
  const check = spawnSync(process.execPath, [BIN, 'check-config', '--config', file], { encoding: 'utf8', timeout: 60_000 });
  if (check.status !== 0) throw new Error(`the bridge refuses the bench config (${check.status}): ${check.stderr}`);
  const nodeArgs = (process.env.BENCH_BRIDGE_NODE_ARGS || '').split(/\s+/).filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, BIN, '--config', file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  onCleanup('bridge', () => stopChild(child));
  const tail = [];
  const audits = [];
  const lines = createInterface({ input: child.stdout });
  const keep = (line) => {
    if (tail.push(line) > 60) tail.shift();
  };
  createInterface({ input: child.stderr }).on('line', keep);
  bridgeLogTail = () => tail.join('\n');
  const port = await withTimeout('starting the bridge', 30_000, () =>
    new Promise((resolvePort, reject) => {
      lines.on('line', (line) => {
        keep(line);
        // transfer audit lines: {"component":"audit","operation":"STOR",...} (older builds: "audit":true, "op")
        if (line.includes('"component":"audit"') || line.includes('"audit":true')) {
          try {
            audits.push(JSON.parse(line));
          } catch {
            // not JSON after all
          }
        }
        // {"port":N,...,"msg":"FTP listening"}; parsed as JSON, whatever other fields the line has
        if (!line.includes('"msg":"FTP listening"')) return;
        try {
          const entry = JSON.parse(line);
          if (Number.isInteger(entry.port)) resolvePort(entry.port);
        } catch {
          const m = /"port":(\d+)/.exec(line);
          if (m) resolvePort(Number(m[1]));
        }
      });
      child.once('exit', (code, signal) => reject(new Error(`bridge exited (${code ?? signal}):\n${tail.join('\n')}`)));
    }),
  );
  return { child, pid: child.pid, port, user, password, audits, logTail: () => tail.join('\n') };
}

// ---- process monitor: bridge RSS, CPU time per process group and system-wide ---------------------
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

function procStatus(pid) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM') };
}

/** utime and stime of a process, in seconds (0 if it is gone). */
function procCpu(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / CLK_TCK, sys: Number(fields[12]) / CLK_TCK }; // fields 14 and 15 of stat(5)
  } catch {
    return { user: 0, sys: 0 };
  }
}

/** Busy CPU seconds of the whole machine, all CPUs summed. */
function systemBusy() {
  const [, ...v] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = v;
  return (user + nice + system + irq + softirq + (steal || 0)) / CLK_TCK;
}

class Monitor {
  constructor(bridgePid, s3Pids) {
    this.bridgePid = bridgePid;
    this.s3Pids = s3Pids;
    this.maxRssKiB = 0;
    this.phaseMaxKiB = 0;
    this.samples = 0;
    this.timer = setInterval(() => this.sample(), 100);
    this.timer.unref();
    this.sample();
  }

  sample() {
    try {
      const { rssKiB } = procStatus(this.bridgePid);
      this.samples += 1;
      this.maxRssKiB = Math.max(this.maxRssKiB, rssKiB);
      this.phaseMaxKiB = Math.max(this.phaseMaxKiB, rssKiB);
    } catch {
      // the bridge is gone; its exit is reported elsewhere
    }
  }

  cpu() {
    const u = process.cpuUsage();
    const bridge = procCpu(this.bridgePid);
    return {
      bench: (u.user + u.system) / 1e6,
      bridge: bridge.user + bridge.sys,
      bridgeSys: bridge.sys,
      s3: this.s3Pids().reduce((sum, pid) => {
        const c = procCpu(pid);
        return sum + c.user + c.sys;
      }, 0),
      system: systemBusy(),
    };
  }

  begin() {
    this.sample();
    this.phaseMaxKiB = 0;
    this.sample();
    this.phaseCpu = this.cpu();
  }

  end() {
    this.sample();
    const now = this.cpu();
    const d = (k) => now[k] - this.phaseCpu[k];
    const cpu = { bench: d('bench'), bridge: d('bridge'), bridgeSys: d('bridgeSys'), s3: d('s3') };
    cpu.other = Math.max(0, d('system') - cpu.bench - cpu.bridge - cpu.s3);
    for (const k of Object.keys(cpu)) cpu[k] = round(cpu[k], 2);
    return { cpuSeconds: cpu, bridgeRssMaxMiB: round(this.phaseMaxKiB / 1024, 1) };
  }

  stop() {
    clearInterval(this.timer);
  }
}

// ---- the four transfers -----------------------------------------------------------------------------
const round = (n, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

async function ftpLogin(bridge, timeoutMs) {
  const client = new FtpClient(timeoutMs);
  await client.access({ host: '127.0.0.1', port: bridge.port, user: bridge.user, password: bridge.password });
  await client.send('TYPE I'); // access() already switches to binary; be explicit
  return client;
}

async function measure(ctx, label, fn) {
  const { monitor } = ctx;
  monitor.begin();
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const out = await withTimeout(label, ctx.settings.timeoutMs, fn.run, fn.abort);
  const seconds = (performance.now() - t0) / 1000;
  const phase = monitor.end();
  if (out.bytes !== ctx.settings.bytes) throw new Error(`${label}: moved ${out.bytes} bytes, expected ${ctx.settings.bytes}`);
  const result = { label, startedAt, seconds: round(seconds, 3), mbPerS: round(out.bytes / seconds / 1e6, 1), sha256: out.sha256, ...phase };
  log(`${label}: ${result.mbPerS} MB/s (${result.seconds} s; cpu s bench ${phase.cpuSeconds.bench} bridge ${phase.cpuSeconds.bridge} s3 ${phase.cpuSeconds.s3} other ${phase.cpuSeconds.other}; bridge rss max ${phase.bridgeRssMaxMiB} MiB)`);
  return result;
}

function directUpload(ctx, key) {
  const { settings, s3, bucket } = ctx;
  const source = new PatternSource(ctx.base, settings.bytes);
  const upload = new Upload({
    client: s3,
    params: { Bucket: bucket, Key: key, Body: source },
    partSize: settings.partSizeMiB * MiB,
    queueSize: settings.queueSize,
    leavePartsOnError: false,
  });
  ctx.created.add(key);
  return measure(ctx, `direct upload   ${key}`, {
    run: async () => {
      await upload.done();
      return { bytes: source.offset, sha256: source.digest() };
    },
    abort: () => void upload.abort(),
  });
}

async function bridgeUpload(ctx, key) {
  const { settings } = ctx;
  const client = await ftpLogin(ctx.bridge, settings.timeoutMs);
  try {
    const source = new PatternSource(ctx.base, settings.bytes);
    ctx.created.add(key);
    return await measure(ctx, `bridge upload   ${key}`, {
      run: async () => {
        await client.uploadFrom(source, key);
        return { bytes: source.offset, sha256: source.digest() };
      },
      abort: () => client.close(),
    });
  } finally {
    client.close();
  }
}

async function getObjectHash(ctx, key) {
  const res = await ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key }));
  const sink = new HashSink();
  await pipeline(res.Body, sink);
  return { bytes: sink.bytes, sha256: sink.digest() };
}

function directDownload(ctx, key) {
  return measure(ctx, `direct download ${key}`, { run: () => getObjectHash(ctx, key) });
}

async function bridgeDownload(ctx, key) {
  const client = await ftpLogin(ctx.bridge, ctx.settings.timeoutMs);
  try {
    return await measure(ctx, `bridge download ${key}`, {
      run: async () => {
        const sink = new HashSink();
        await client.downloadTo(sink, key);
        return { bytes: sink.bytes, sha256: sink.digest() };
      },
      abort: () => client.close(),
    });
  } finally {
    client.close();
  }
}

function expectHash(what, got, want) {
  if (got !== want) throw new Error(`hash mismatch: ${what} is ${got}, expected ${want}`);
}

async function oneRound(ctx, r) {
  const bridgeFirst = r % 2 === 0; // alternate which path goes first: direct first in round 1
  const directKey = `round${r}-direct.bin`;
  const bridgeKey = `round${r}-bridge.bin`;
  const order = (a, b) => (bridgeFirst ? [b, a] : [a, b]);
  const up = {};
  for (const step of order('direct', 'bridge')) {
    up[step] = step === 'direct' ? await directUpload(ctx, directKey) : await bridgeUpload(ctx, bridgeKey);
  }
  expectHash('bridge upload source', up.bridge.sha256, up.direct.sha256);
  ctx.sourceSha256 ??= up.direct.sha256;
  expectHash(`source of round ${r}`, up.direct.sha256, ctx.sourceSha256);
  // Read both objects back (not timed): what S3 stores must be what was sent.
  for (const key of [bridgeKey, directKey]) {
    const stored = await withTimeout(`verifying ${key}`, ctx.settings.timeoutMs, () => getObjectHash(ctx, key));
    expectHash(`object ${key} in S3`, stored.sha256, ctx.sourceSha256);
  }
  log(`round ${r}: both stored objects verified (sha256 ${ctx.sourceSha256.slice(0, 16)}...)`);
  // Both downloads read the same object (the one uploaded directly).
  const down = {};
  for (const step of order('direct', 'bridge')) {
    down[step] = step === 'direct' ? await directDownload(ctx, directKey) : await bridgeDownload(ctx, directKey);
    expectHash(`${step} download of ${directKey}`, down[step].sha256, ctx.sourceSha256);
  }
  for (const key of [directKey, bridgeKey]) {
    await ctx.s3.send(new DeleteObjectCommand({ Bucket: ctx.bucket, Key: key }));
    ctx.created.delete(key);
  }
  return { round: r, order: order('direct', 'bridge'), upload: up, download: down };
}

// ---- report -------------------------------------------------------------------------------------------
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const pad = (s, n) => String(s).padStart(n);
const padEnd = (s, n) => String(s).padEnd(n);

function summarize(settings, rounds, rss) {
  const dir = (name) => {
    const direct = rounds.map((r) => r[name].direct.mbPerS);
    const bridge = rounds.map((r) => r[name].bridge.mbPerS);
    const ratio = median(bridge) / median(direct);
    return {
      directMBps: round(median(direct), 1),
      bridgeMBps: round(median(bridge), 1),
      ratio: round(ratio, 3),
      bestRatio: round(Math.max(...bridge) / Math.max(...direct), 3),
      samples: { direct, bridge },
      pass: ratio >= TARGET_RATIO,
    };
  };
  const budgetMiB = RSS_BASE_MiB + settings.partSizeMiB * settings.queueSize;
  const peak = Math.max(rss.vmHwmMiB, rss.sampledMaxMiB);
  return {
    upload: dir('upload'),
    download: dir('download'),
    rss: { ...rss, budgetMiB, pass: peak <= budgetMiB },
  };
}

function printReport(result) {
  const { settings: s, machine: m, summary } = result;
  const out = [];
  out.push('');
  out.push(`ftp-s3-bridge transfer bench: ${s.sizeMiB} MiB per transfer, backend ${s.backend}, partSize ${s.partSizeMiB} MiB x queueSize ${s.queueSize}, ${s.rounds} round(s)${s.rounds > 1 ? ' (median)' : ''}, loopback`);
  out.push(`bridge: ${s.bridgeBin} (code ${result.code})${s.bridgeNodeArgs ? ` node args: ${s.bridgeNodeArgs}` : ''}`);
  out.push(`machine: ${m.cpuModel} x ${m.cpus} CPUs, ${m.totalMemGiB} GiB RAM, ${m.os}, node ${m.node}; load avg ${m.loadavgStart.join(' ')} at start, ${m.loadavgEnd.join(' ')} at end`);
  out.push('');
  out.push(`${padEnd('direction', 10)}${pad('direct MB/s', 13)}${pad('bridge MB/s', 13)}${pad('bridge/direct', 15)}${pad('target', 9)}  result`);
  for (const name of ['upload', 'download']) {
    const d = summary[name];
    out.push(`${padEnd(name, 10)}${pad(d.directMBps.toFixed(1), 13)}${pad(d.bridgeMBps.toFixed(1), 13)}${pad(d.ratio.toFixed(3), 15)}${pad(`>= ${TARGET_RATIO}`, 9)}  ${d.pass ? 'PASS' : 'FAIL'}`);
  }
  const r = summary.rss;
  out.push('');
  out.push(`bridge peak RSS: VmHWM ${r.vmHwmMiB} MiB, sampled VmRSS max ${r.sampledMaxMiB} MiB (${r.samples} samples)` +
    ` (idle after start ${r.idleAfterStartMiB} MiB) vs budget ${r.budgetMiB} MiB (${RSS_BASE_MiB} + ${s.partSizeMiB} x ${s.queueSize})  ${r.pass ? 'PASS' : 'FAIL'}`);
  out.push('');
  out.push('per transfer (CPU seconds: bench = this process incl. client + hashing; other = rest of the machine):');
  out.push(`${padEnd('round transfer', 34)}${pad('s', 8)}${pad('MB/s', 8)}${pad('cpu bench', 11)}${pad('bridge (sys)', 14)}${pad('s3', 8)}${pad('other', 8)}${pad('bridge RSS max MiB', 20)}`);
  for (const rd of result.rounds) {
    for (const dirName of ['upload', 'download']) {
      for (const path of rd.order) {
        const t = rd[dirName][path];
        const c = t.cpuSeconds;
        out.push(`${padEnd(`${rd.round}     ${t.label}`, 34)}${pad(t.seconds.toFixed(2), 8)}${pad(t.mbPerS.toFixed(1), 8)}${pad(c.bench.toFixed(2), 11)}${pad(`${c.bridge.toFixed(2)} (${c.bridgeSys.toFixed(2)})`, 14)}${pad(c.s3.toFixed(2), 8)}${pad(c.other.toFixed(2), 8)}${pad(t.bridgeRssMaxMiB.toFixed(1), 20)}`);
      }
    }
  }
  out.push('');
  out.push(`MB = 10^6 bytes. sha256 of the data: ${result.sha256}. Results: ${s.output}`);
  process.stdout.write(out.join('\n') + '\n');
}

// ---- main ---------------------------------------------------------------------------------------------
async function main() {
  const settings = readSettings();
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run \`npm run build\` (npm run bench does)`);
  const machine = {
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    cpus: os.cpus().length,
    totalMemGiB: round(os.totalmem() / 1024 ** 3, 1),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    backend: settings.backend,
    loadavgStart: os.loadavg().map((l) => round(l, 2)),
  };
  const git = (...args) => {
    try {
      return execFileSync('git', args, { cwd: dirname(dirname(BIN)), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return undefined;
    }
  };
  const commit = git('rev-parse', '--short', 'HEAD');
  const dirty = git('status', '--porcelain', '--untracked-files=no');
  const code = commit ? `${commit}${dirty ? ` + ${dirty.split('\n').length} modified file(s)` : ''}` : 'unknown (not a git checkout)';
  log(`${settings.sizeMiB} MiB x ${settings.rounds} round(s) on ${settings.backend}; part ${settings.partSizeMiB} MiB x queue ${settings.queueSize}`);
  const tmp = mkdtempSync(join(os.tmpdir(), 'ftp-s3-bridge-bench-'));
  onCleanup('temp dir', () => rmSync(tmp, { recursive: true, force: true }));
  const base = makeBaseBlock();

  const backend = settings.backend === 'swift' ? await startSwift(settings) : await startS3rver();
  log(`S3 (${backend.name}) at ${backend.endpoint}`);
  const s3 = makeS3Client(backend);
  onCleanup('s3 client', () => s3.destroy());
  const bucket = `bench-${randomBytes(4).toString('hex')}`;
  await withTimeout('CreateBucket', 60_000, () => s3.send(new CreateBucketCommand({ Bucket: bucket })));
  const created = new Set();
  onCleanup('bucket', async () => {
    for (const key of created) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
  });

  const bridge = await startBridge(settings, backend, bucket, tmp);
  log(`bridge pid ${bridge.pid} listening on 127.0.0.1:${bridge.port}`);
  const monitor = new Monitor(bridge.pid, backend.pids);
  const idle = procStatus(bridge.pid);
  onCleanup('monitor', () => monitor.stop());
  const ctx = { settings, s3, bucket, base, bridge, monitor, created, sourceSha256: undefined };

  const rounds = [];
  for (let r = 1; r <= settings.rounds; r++) rounds.push(await oneRound(ctx, r));

  // Peak RSS right before the bridge stops.
  monitor.sample();
  const status = procStatus(bridge.pid);
  const rss = {
    idleAfterStartMiB: round(idle.rssKiB / 1024, 1),
    vmHwmMiB: round(status.hwmKiB / 1024, 1),
    sampledMaxMiB: round(monitor.maxRssKiB / 1024, 1),
    samples: monitor.samples,
  };
  monitor.stop();
  await stopChild(bridge.child);
  if (bridge.child.exitCode !== 0) log(`bridge exited with ${bridge.child.exitCode ?? bridge.child.signalCode}`);

  machine.loadavgEnd = os.loadavg().map((l) => round(l, 2));
  const result = {
    date: new Date().toISOString(),
    settings: { ...settings, timeoutS: settings.timeoutMs / 1000 },
    code,
    machine,
    sha256: ctx.sourceSha256,
    targets: { ratio: TARGET_RATIO, rssBudget: `${RSS_BASE_MiB} MiB + partSize x queueSize` },
    summary: summarize(settings, rounds, rss),
    rounds,
    bridgeAudit: bridge.audits.map((a) => ({ op: a.operation ?? a.op, path: a.path, bytes: a.bytes, durationMs: a.durationMs, result: a.result })),
  };
  delete result.settings.timeoutMs;
  mkdirSync(dirname(settings.output), { recursive: true });
  writeFileSync(settings.output, JSON.stringify(result, null, 2) + '\n');
  printReport(result);
}

main().then(
  async () => {
    await runCleanups();
    process.exit(0);
  },
  async (err) => {
    if (stopping) return; // the signal handler cleans up and exits
    process.stderr.write(`[bench] ERROR: ${err?.stack ?? err}\n`);
    if (bridgeLogTail) process.stderr.write(`[bench] last bridge log lines:\n${bridgeLogTail()}\n`);
    await runCleanups();
    process.exit(1);
  },
);
