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
// BENCH_SCAN=1 adds a third upload through a second account with `scan: reject` (a clamd started
// here, with a one-signature database), and clamd alone scanning the same bytes (INSTREAM from
// this process), so the report shows what the scan costs next to what clamd itself takes.
// Settings: see bench/README.md (all BENCH_* environment variables).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { connect, createServer as createNetServer } from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Client as FtpClient } from 'basic-ftp';
import {
  ROOT,
  BIN as BUILT_BIN,
  CLK_TCK,
  procCpu,
  procStatus,
  Cleanups,
  hashPassword,
  intEnv,
  s3Client,
  startBridge as startBridgeProcess,
  startS3rver,
  startSwift,
  stopChild,
  tempDir,
  withTimeout,
  writeBridgeConfig,
} from './lib.mjs';

const BIN = resolve(process.env.BENCH_BRIDGE_BIN || BUILT_BIN);
const MiB = 1024 * 1024;
const CHUNK = MiB; // the source stream's chunk size
const BASE_BYTES = 16 * MiB; // the random block the source repeats (each 1 MiB chunk gets its own counter)
const TARGET_RATIO = 0.95;
const RSS_BASE_MiB = 96;

const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);

// ---- settings ------------------------------------------------------------------------------------
function readSettings() {
  const backend = process.env.BENCH_S3_BACKEND || 's3rver';
  if (backend !== 's3rver' && backend !== 'swift') throw new Error(`BENCH_S3_BACKEND must be s3rver or swift (got "${backend}")`);
  const sizeMiB = intEnv('BENCH_SIZE_MIB', 1024, 1);
  const pasvMin = intEnv('BENCH_PASV_MIN', 39500, 1024);
  return {
    backend,
    sizeMiB,
    bytes: sizeMiB * MiB,
    partSizeMiB: intEnv('BENCH_PART_SIZE_MIB', 8, 5),
    queueSize: intEnv('BENCH_QUEUE_SIZE', 4, 1),
    rounds: intEnv('BENCH_ROUNDS', 1, 1),
    // Each measured transfer; default: 10 min, or longer than 2 MB/s would need.
    timeoutMs: intEnv('BENCH_TIMEOUT_S', Math.max(600, Math.ceil(sizeMiB / 2)), 1) * 1000,
    pasvMin,
    pasvMax: intEnv('BENCH_PASV_MAX', pasvMin + 9, pasvMin),
    logLevel: process.env.BENCH_LOG_LEVEL || 'info',
    bridgeBin: BIN,
    bridgeNodeArgs: process.env.BENCH_BRIDGE_NODE_ARGS || '',
    // s3.uploadDigests of the bridge, e.g. "SHA-256" (no MD5); unset: the bridge's default
    uploadDigests: process.env.BENCH_UPLOAD_DIGESTS ? process.env.BENCH_UPLOAD_DIGESTS.split(',').map((s) => s.trim()) : undefined,
    output: resolve(process.env.BENCH_OUTPUT || join(ROOT, 'bench/results/latest.json')),
    swiftBase: process.env.BENCH_SWIFT_BASE || '/tmp/ftp-s3-bridge-swift-bench',
    swiftKeep: process.env.BENCH_SWIFT_KEEP === '1',
    scan: process.env.BENCH_SCAN === '1',
    // The SFTP comparison (bridge vs rclone serve sftp, OpenSSH sftp as the client); 0: skipped.
    sftpMiB: intEnv('BENCH_SFTP_MIB', 512, 0),
    rclone: process.env.BENCH_RCLONE || 'rclone',
    // OpenSSH's Ciphers for the SFTP client (e.g. aes128-gcm@openssh.com); unset: its default order
    sftpCiphers: process.env.BENCH_SFTP_CIPHERS || undefined,
    // bridge/rclone pairs per direction, in alternating order (bridge first, then rclone first)
    sftpRounds: intEnv('BENCH_SFTP_ROUNDS', 2, 1),
  };
}

// ---- clamd (BENCH_SCAN=1) ---------------------------------------------------------------------------
/**
 * clamd in a temp dir on a Unix socket, one test signature, limits above the transfer size. Its
 * cache of clean files' hashes is off: every run sends the same bytes, and a cached verdict would
 * make the second scan of them look almost free.
 */
async function startBenchClamd(tmp, sizeMiB) {
  const dir = join(tmp, 'clamd');
  mkdirSync(join(dir, 'db'), { recursive: true });
  mkdirSync(join(dir, 'spool'));
  writeFileSync(join(dir, 'db', 'bench.ndb'), `Bench.Test.Pattern:0:*:${Buffer.from('FTP-S3-BRIDGE-BENCH-PATTERN').toString('hex')}\n`);
  const socket = join(dir, 'clamd.sock');
  const limit = `${sizeMiB + 16}M`;
  writeFileSync(
    join(dir, 'clamd.conf'),
    [`LocalSocket ${socket}`, `DatabaseDirectory ${join(dir, 'db')}`, `TemporaryDirectory ${join(dir, 'spool')}`, 'Foreground yes', `StreamMaxLength ${limit}`, `MaxFileSize ${limit}`, `MaxScanSize ${limit}`, 'SelfCheck 0', 'DisableCache yes', ''].join('\n'),
  );
  const child = spawn(process.env.BENCH_CLAMD || '/usr/sbin/clamd', ['-c', join(dir, 'clamd.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
  onCleanup('clamd', () => stopChild(child));
  const deadline = Date.now() + 60_000;
  while (!existsSync(socket)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`clamd did not start (exit ${child.exitCode})`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { socket, pid: child.pid };
}

/** clamd alone: the same bytes as an INSTREAM from this process; resolves with the verdict line. */
function clamdScan(socketPath, source) {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let reply = '';
    socket.on('error', reject);
    socket.on('data', (d) => (reply += d.toString('latin1')));
    socket.on('close', () => (reply.includes('\0') ? resolve(reply.slice(0, reply.indexOf('\0'))) : reject(new Error(`clamd closed: ${reply}`))));
    socket.write('zINSTREAM\0');
    const frame = new Writable({
      highWaterMark: CHUNK,
      write(chunk, _encoding, callback) {
        const header = Buffer.alloc(4);
        header.writeUInt32BE(chunk.length);
        socket.write(header);
        socket.write(chunk, callback);
      },
      final(callback) {
        socket.write(Buffer.alloc(4), callback);
      },
    });
    pipeline(source, frame).catch(reject);
  });
}

// ---- cleanup (LIFO), also on SIGINT/SIGTERM/SIGHUP -------------------------------------------------
const cleanups = new Cleanups({ onError: (name, err) => log(`cleanup "${name}" failed: ${err?.message ?? err}`) });
const onCleanup = (name, fn) => cleanups.add(fn, name);
/** The bridge's last log lines, for error reports. */
let bridgeLogTail;
let stopping = false; // a signal arrived: failures from here on are the cleanup's doing
cleanups.exitOnSignals([['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]], (signal) => {
  stopping = true;
  log(`${signal}: cleaning up`);
});

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
/** Swift + s3api via infra/swift-s3, in its own base dir and on its own ports (never the CI instance's). */
function startBenchSwift(settings) {
  const env = {
    SWIFT_S3_PROXY_PORT: process.env.SWIFT_S3_PROXY_PORT ?? '18080',
    SWIFT_S3_ACCOUNT_PORT: process.env.SWIFT_S3_ACCOUNT_PORT ?? '16202',
    SWIFT_S3_CONTAINER_PORT: process.env.SWIFT_S3_CONTAINER_PORT ?? '16201',
    SWIFT_S3_OBJECT_PORT: process.env.SWIFT_S3_OBJECT_PORT ?? '16200',
    SWIFT_S3_MEMCACHED_PORT: process.env.SWIFT_S3_MEMCACHED_PORT ?? '21211',
  };
  log(`starting Swift in ${settings.swiftBase} (proxy port ${env.SWIFT_S3_PROXY_PORT}; first start takes ~25 s)`);
  return startSwift(cleanups, { base: settings.swiftBase, env, keep: settings.swiftKeep, log });
}

/** Configured like the bridge's own client (src/storage/s3-client.ts): keep-alive, 256 sockets. */
function makeS3Client(backend) {
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 256 });
  return s3Client(backend, {
    maxAttempts: 5,
    requestHandler: new NodeHttpHandler({ connectionTimeout: 10_000, requestTimeout: 60_000, httpAgent: agent }),
  });
}

// ---- the bridge, as a separate process -------------------------------------------------------------
async function startBridge(settings, backend, bucket, tmp) {
  const user = 'bench';
  const password = randomBytes(12).toString('hex');
  const file = join(tmp, 'bridge.yaml');
  const config = {
    store: backend,
    passivePorts: [settings.pasvMin, settings.pasvMax],
    s3: {
      region: backend.region,
      partSizeMiB: settings.partSizeMiB,
      queueSize: settings.queueSize,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...(settings.uploadDigests ? { uploadDigests: settings.uploadDigests } : {}),
    },
    accounts: [
      { username: user, passwordHash: hashPassword(password, { bin: BIN }), bucket },
      ...(settings.clamdSocket ? [{ username: `${user}-scan`, passwordHash: hashPassword(password, { bin: BIN }), bucket, scan: 'reject' }] : []),
    ],
    ...(settings.clamdSocket ? { scan: { clamd: { socket: settings.clamdSocket }, maxMiB: settings.sizeMiB, timeoutSeconds: 600 } } : {}),
    log: { level: settings.logLevel },
    ...(settings.sftpHostKey ? { sftp: { enabled: true, host: '127.0.0.1', port: 0, hostKeys: [settings.sftpHostKey] } } : {}),
  };
  const checkConfig = () => spawnSync(process.execPath, [BIN, 'check-config', '--config', file], { encoding: 'utf8', timeout: 60_000 });
  // Builds with a metrics/health HTTP server (default 0.0.0.0:9464) get it on loopback and a free
  // port; builds whose config has no such section refuse the key, so it is only added when accepted.
  writeBridgeConfig(file, { ...config, http: { host: '127.0.0.1', port: 0 } });
  if (checkConfig().status !== 0) writeBridgeConfig(file, config);
  const check = checkConfig();
  if (check.status !== 0) throw new Error(`the bridge refuses the bench config (${check.status}): ${check.stderr}`);
  const nodeArgs = (process.env.BENCH_BRIDGE_NODE_ARGS || '').split(/\s+/).filter(Boolean);
  const audits = [];
  let sftpPort;
  const bridge = await startBridgeProcess(cleanups, file, {
    bin: BIN,
    nodeArgs,
    stderr: 'pipe',
    onLine: (line) => {
      if (line.includes('"SFTP listening"')) sftpPort = JSON.parse(line).port;
      // transfer audit lines: {"component":"audit","operation":"STOR",...} (older builds: "audit":true, "op")
      if (line.includes('"component":"audit"') || line.includes('"audit":true')) {
        try {
          audits.push(JSON.parse(line));
        } catch {
          // not JSON after all
        }
      }
    },
  });
  bridgeLogTail = bridge.tail;
  if (settings.sftpHostKey) {
    // logged right after "FTP listening"
    const deadline = Date.now() + 30_000;
    while (sftpPort === undefined) {
      if (Date.now() > deadline || bridge.child.exitCode !== null) throw new Error(`the bridge logged no "SFTP listening":\n${bridge.tail()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return { child: bridge.child, pid: bridge.pid, port: bridge.port, sftpPort, user, password, audits, logTail: bridge.tail };
}

// ---- process monitor: bridge RSS, CPU time per process group and system-wide ---------------------
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

async function ftpLogin(bridge, timeoutMs, user = bridge.user) {
  const client = new FtpClient(timeoutMs);
  await client.access({ host: '127.0.0.1', port: bridge.port, user, password: bridge.password });
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

async function bridgeUpload(ctx, key, scanned = false) {
  const { settings } = ctx;
  const client = await ftpLogin(ctx.bridge, settings.timeoutMs, scanned ? `${ctx.bridge.user}-scan` : ctx.bridge.user);
  try {
    const source = new PatternSource(ctx.base, settings.bytes);
    ctx.created.add(key);
    return await measure(ctx, `${scanned ? 'scanned upload ' : 'bridge upload  '} ${key}`, {
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
  if (ctx.settings.clamdSocket) {
    const scannedKey = `round${r}-scanned.bin`;
    up.scanned = await bridgeUpload(ctx, scannedKey, true);
    const source = new PatternSource(ctx.base, ctx.settings.bytes);
    let verdict;
    up.clamd = await measure(ctx, `clamd alone     round${r}`, {
      run: async () => {
        verdict = await clamdScan(ctx.settings.clamdSocket, source);
        return { bytes: source.offset, sha256: source.digest() };
      },
    });
    if (verdict !== 'stream: OK') throw new Error(`clamd alone: ${verdict}`);
    expectHash('scanned upload source', up.scanned.sha256, up.direct.sha256);
    const stored = await withTimeout(`verifying ${scannedKey}`, ctx.settings.timeoutMs, () => getObjectHash(ctx, scannedKey));
    expectHash(`object ${scannedKey} in S3`, stored.sha256, up.direct.sha256);
    await ctx.s3.send(new DeleteObjectCommand({ Bucket: ctx.bucket, Key: scannedKey }));
    ctx.created.delete(scannedKey);
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

// ---- SFTP: the bridge against rclone serve sftp, OpenSSH sftp as the client -----------------------------
const GiB = 1024 ** 3;
/** What a bridge SFTP upload may hold on top of the FTP budget: the reorder window (`sftp.writeReorderWindowKiB` default). */
const SFTP_REORDER_WINDOW_MiB = 4;

function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

async function waitForPort(port, child, what) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    const open = await new Promise((r) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        r(true);
      });
      socket.once('error', () => r(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`${what} does not listen on ${port} after 30 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * `rclone serve sftp` over the same bucket, with the bridge's host key, password and S3 part size
 * and concurrency. Its S3 remote comes from environment variables (no rclone.conf, so no quoting of
 * the endpoint): RCLONE_CONFIG_BENCHS3_*. Its VFS cache is off (the default): it streams, as the
 * bridge does.
 */
async function startRcloneSftp(settings, backend, bucket, password) {
  const port = await freePort();
  // AWS_CA_BUNDLE (set on some machines for the AWS CLI) makes rclone's AWS SDK fail at start
  // ("unable to load custom CA bundle, HTTPClient's transport unsupported type"); the endpoint is
  // plain HTTP on loopback, so it has no use here.
  const { AWS_CA_BUNDLE: _unused, ...inherited } = process.env;
  const env = {
    ...inherited,
    RCLONE_CONFIG_BENCHS3_TYPE: 's3',
    RCLONE_CONFIG_BENCHS3_PROVIDER: 'Other',
    RCLONE_CONFIG_BENCHS3_ENDPOINT: backend.endpoint,
    RCLONE_CONFIG_BENCHS3_ACCESS_KEY_ID: backend.accessKeyId,
    RCLONE_CONFIG_BENCHS3_SECRET_ACCESS_KEY: backend.secretAccessKey,
    RCLONE_CONFIG_BENCHS3_REGION: backend.region,
    RCLONE_CONFIG_BENCHS3_FORCE_PATH_STYLE: 'true',
  };
  const args = [
    '--config', '/dev/null',
    'serve', 'sftp', `benchs3:${bucket}`,
    '--addr', `127.0.0.1:${port}`,
    '--user', 'bench',
    '--pass', password,
    '--key', settings.sftpHostKey,
    '--s3-chunk-size', `${settings.partSizeMiB}M`,
    '--s3-upload-concurrency', String(settings.queueSize),
    '--log-level', 'NOTICE',
  ];
  const child = spawn(settings.rclone, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  onCleanup('rclone serve sftp', () => stopChild(child));
  const stderrTail = [];
  createInterface({ input: child.stderr }).on('line', (l) => {
    if (stderrTail.push(l) > 30) stderrTail.shift();
  });
  try {
    await waitForPort(port, child, 'rclone serve sftp');
  } catch (err) {
    throw new Error(`${err.message}:\n${stderrTail.join('\n')}`, { cause: err });
  }
  const version = spawnSync(settings.rclone, ['version'], { encoding: 'utf8' }).stdout?.split('\n')[0];
  return { child, pid: child.pid, port, version, tail: () => stderrTail.join('\n') };
}

/**
 * OpenSSH `sftp -b` with a password login (OpenSSH 8.4+ asks SSH_ASKPASS without a terminal when
 * SSH_ASKPASS_REQUIRE=force), verbose so the negotiated cipher can be read.
 * Resolves `{ cipher }` once the batch succeeded; rejects with its last lines otherwise.
 */
function sftpBatch(settings, port, password, commands, tmp) {
  const batch = join(tmp, `batch-${randomBytes(4).toString('hex')}`);
  writeFileSync(batch, commands.join('\n') + '\n');
  const askpass = join(tmp, 'askpass');
  writeFileSync(askpass, '#!/bin/sh\nprintf \'%s\\n\' "$BENCH_SFTP_PASSWORD"\n', { mode: 0o700 });
  const env = { ...process.env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', BENCH_SFTP_PASSWORD: password };
  const args = [
    '-F', '/dev/null',
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'IdentityAgent=none',
    '-o', 'BatchMode=no',
    '-o', 'PreferredAuthentications=password',
    '-o', 'PubkeyAuthentication=no',
    '-o', 'NumberOfPasswordPrompts=1',
    ...(settings.sftpCiphers ? ['-o', `Ciphers=${settings.sftpCiphers}`] : []),
    '-v',
    '-P', String(port),
    '-b', batch,
    'bench@127.0.0.1',
  ];
  // GNU time, where there is one, reports the client's CPU (sftp and its ssh together).
  const timed = existsSync('/usr/bin/time');
  const child = timed
    ? spawn('/usr/bin/time', ['-f', 'bench-client-cpu %U %S', 'sftp', ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn('sftp', args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let cipher;
  let clientCpu;
  const tail = [];
  createInterface({ input: child.stderr }).on('line', (l) => {
    // "debug1: kex: client->server cipher: chacha20-poly1305@openssh.com MAC: <implicit> compression: none"
    const m = /kex: client->server cipher: (\S+)/.exec(l);
    if (m) cipher = m[1];
    const cpu = /^bench-client-cpu ([\d.]+) ([\d.]+)$/.exec(l);
    if (cpu) clientCpu = Number(cpu[1]) + Number(cpu[2]);
    else if (!l.startsWith('debug')) tail.push(l);
    if (tail.length > 20) tail.shift();
  });
  const done = new Promise((resolveDone, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => (code === 0 ? resolveDone({ cipher, clientCpu }) : reject(new Error(`sftp exited with ${code ?? signal}: ${tail.join('\n')}`))));
  });
  return { done, kill: () => child.kill('SIGKILL') };
}

async function fileHash(file) {
  const sink = new HashSink();
  await pipeline(createReadStream(file, { highWaterMark: CHUNK }), sink);
  return { bytes: sink.bytes, sha256: sink.digest() };
}

/**
 * 512 MiB (BENCH_SFTP_MIB) up and down four ways in one run: direct to S3, FTP through the bridge,
 * SFTP through the bridge and SFTP through `rclone serve sftp`, OpenSSH's `sftp` the client of both
 * SFTP servers. Uploads read one file of the pattern bytes; SFTP downloads write a file that is hashed
 * afterwards (untimed), the others hash in memory.
 */
async function sftpComparison(ctx, tmp) {
  const { settings, bridge } = ctx;
  const bytes = settings.sftpMiB * MiB;
  const sizeCtx = { ...ctx, settings: { ...settings, bytes } };
  const source = join(tmp, 'sftp-source.bin');
  const pattern = new PatternSource(ctx.base, bytes);
  await pipeline(pattern, createWriteStream(source, { highWaterMark: CHUNK }));
  const sourceSha256 = pattern.digest();
  const rclone = await startRcloneSftp(settings, ctx.backend, ctx.bucket, bridge.password);
  log(`rclone serve sftp pid ${rclone.pid} on 127.0.0.1:${rclone.port} (${rclone.version})`);
  const rcloneMonitor = new Monitor(rclone.pid, ctx.backend.pids);
  onCleanup('rclone monitor', () => rcloneMonitor.stop());
  const rcloneCtx = { ...sizeCtx, monitor: rcloneMonitor };
  const ciphers = {};
  const keys = { direct: 'sftp-direct.bin', ftp: 'sftp-ftp.bin', bridgeSftp: 'sftp-bridge.bin', rclone: 'sftp-rclone.bin' };
  for (const key of Object.values(keys)) ctx.created.add(key);
  const viaSftp = async (c, label, name, port, commands) => {
    let batch;
    let clientCpu;
    const result = await measure(c, label, {
      run: async () => {
        batch = sftpBatch(settings, port, bridge.password, commands, tmp);
        const done = await batch.done;
        ciphers[name] = done.cipher;
        clientCpu = done.clientCpu;
        return { bytes, sha256: sourceSha256 };
      },
      abort: () => batch?.kill(),
    });
    if (clientCpu !== undefined) {
      result.cpuSeconds.client = round(clientCpu, 2);
      result.cpuSeconds.other = round(Math.max(0, result.cpuSeconds.other - clientCpu), 2);
    }
    return result;
  };

  const up = {};
  up.direct = await measure(sizeCtx, `sftp: direct upload   ${keys.direct}`, {
    run: async () => {
      const upload = new Upload({
        client: ctx.s3,
        params: { Bucket: ctx.bucket, Key: keys.direct, Body: createReadStream(source, { highWaterMark: CHUNK }) },
        partSize: settings.partSizeMiB * MiB,
        queueSize: settings.queueSize,
        leavePartsOnError: false,
      });
      await upload.done();
      return { bytes, sha256: sourceSha256 };
    },
  });
  const ftp = await ftpLogin(bridge, settings.timeoutMs);
  try {
    up.ftp = await measure(sizeCtx, `sftp: FTP upload      ${keys.ftp}`, {
      run: async () => {
        await ftp.uploadFrom(createReadStream(source, { highWaterMark: CHUNK }), keys.ftp);
        return { bytes, sha256: sourceSha256 };
      },
      abort: () => ftp.close(),
    });
  } finally {
    ftp.close();
  }
  const pairs = async (transfer) => {
    const bridgeRuns = [];
    const rcloneRuns = [];
    for (let round = 1; round <= settings.sftpRounds; round += 1) {
      const viaBridge = () => transfer(sizeCtx, 'bridge', bridge.sftpPort, round).then((r) => bridgeRuns.push(r));
      const viaRclone = () => transfer(rcloneCtx, 'rclone', rclone.port, round).then((r) => rcloneRuns.push(r));
      const [first, second] = round % 2 ? [viaBridge, viaRclone] : [viaRclone, viaBridge];
      await first();
      await second();
    }
    return { bridgeSftp: pooled(bridgeRuns, bytes), rclone: pooled(rcloneRuns, bytes) };
  };
  Object.assign(
    up,
    await pairs((c, server, port, round) => {
      const key = server === 'bridge' ? keys.bridgeSftp : keys.rclone;
      return viaSftp(c, `sftp: ${server} upload   ${key} (round ${round})`, server, port, [`put ${source} /${key}`]);
    }),
  );
  for (const key of Object.values(keys)) {
    const stored = await withTimeout(`verifying ${key}`, settings.timeoutMs, () => getObjectHash(ctx, key));
    expectHash(`object ${key} in S3`, stored.sha256, sourceSha256);
  }
  log('sftp: all four stored objects verified');

  const down = {};
  const target = join(tmp, 'sftp-download.bin');
  const checkDownload = async (what) => {
    const got = await fileHash(target);
    rmSync(target, { force: true });
    expectHash(what, got.sha256, sourceSha256);
  };
  down.direct = await measure(sizeCtx, `sftp: direct download ${keys.direct}`, { run: () => getObjectHash(ctx, keys.direct) });
  const ftpDown = await ftpLogin(bridge, settings.timeoutMs);
  try {
    down.ftp = await measure(sizeCtx, `sftp: FTP download    ${keys.direct}`, {
      run: async () => {
        const sink = new HashSink();
        await ftpDown.downloadTo(sink, keys.direct);
        return { bytes: sink.bytes, sha256: sink.digest() };
      },
      abort: () => ftpDown.close(),
    });
  } finally {
    ftpDown.close();
  }
  expectHash('FTP download', down.ftp.sha256, sourceSha256);
  Object.assign(
    down,
    await pairs(async (c, server, port, round) => {
      const result = await viaSftp(c, `sftp: ${server} download ${keys.direct} (round ${round})`, `${server}Down`, port, [`get /${keys.direct} ${target}`]);
      await checkDownload(`${server} SFTP download (round ${round})`);
      return result;
    }),
  );

  for (const key of Object.values(keys)) {
    await ctx.s3.send(new DeleteObjectCommand({ Bucket: ctx.bucket, Key: key }));
    ctx.created.delete(key);
  }
  rcloneMonitor.sample();
  const rcloneStatus = procStatus(rclone.pid);
  rcloneMonitor.stop();
  await stopChild(rclone.child);
  rmSync(source, { force: true });
  return { up, down, ciphers, rclone: { version: rclone.version, vmHwmMiB: round(rcloneStatus.hwmKiB / 1024, 1), sampledMaxMiB: round(rcloneMonitor.maxRssKiB / 1024, 1) } };
}

/**
 * Several runs of one transfer of `bytes` as one: the mean time (so MB/s is total bytes over total
 * time) and the mean CPU seconds per run, the highest RSS; the runs themselves under `runs`.
 */
function pooled(runs, bytes) {
  const mean = (f) => runs.reduce((sum, r) => sum + f(r), 0) / runs.length;
  const seconds = mean((r) => r.seconds);
  const cpuSeconds = Object.fromEntries(Object.keys(runs[0].cpuSeconds).map((k) => [k, round(mean((r) => r.cpuSeconds[k] ?? 0), 2)]));
  return {
    ...runs[0],
    label: runs[0].label.replace(/ \(round \d+\)$/, ''),
    seconds: round(seconds, 3),
    mbPerS: round(bytes / seconds / 1e6, 1),
    cpuSeconds,
    bridgeRssMaxMiB: Math.max(...runs.map((r) => r.bridgeRssMaxMiB)),
    runs: runs.map(({ seconds: s, mbPerS, cpuSeconds: cpu, bridgeRssMaxMiB }) => ({ seconds: s, mbPerS, cpuSeconds: cpu, bridgeRssMaxMiB })),
  };
}

/** The SFTP rows: MB/s and ratio against direct, the server's CPU seconds per GiB, its peak RSS per transfer. */
function summarizeSftp(settings, sftp, bridgeHwmMiB) {
  const gib = (settings.sftpMiB * MiB) / GiB;
  const row = (t, direct) => ({
    mbPerS: t.mbPerS,
    ratio: round(t.mbPerS / direct.mbPerS, 3),
    serverCpuPerGiB: round(t.cpuSeconds.bridge / gib, 2),
    s3CpuPerGiB: round(t.cpuSeconds.s3 / gib, 2),
    otherCpuPerGiB: round(t.cpuSeconds.other / gib, 2),
    clientCpuPerGiB: t.cpuSeconds.client === undefined ? undefined : round(t.cpuSeconds.client / gib, 2),
    serverRssMaxMiB: t.bridgeRssMaxMiB,
    ...(t.runs ? { runsMBps: t.runs.map((r) => r.mbPerS) } : {}),
  });
  const dir = (d) => Object.fromEntries(Object.entries(d).map(([k, t]) => [k, row(t, d.direct)]));
  const upload = dir(sftp.up);
  const download = dir(sftp.down);
  const budgetMiB = RSS_BASE_MiB + settings.partSizeMiB * settings.queueSize + SFTP_REORDER_WINDOW_MiB;
  const bridgePeak = Math.max(bridgeHwmMiB, sftp.up.bridgeSftp.bridgeRssMaxMiB, sftp.down.bridgeSftp.bridgeRssMaxMiB);
  return {
    sizeMiB: settings.sftpMiB,
    ciphers: sftp.ciphers,
    rcloneVersion: sftp.rclone.version,
    upload,
    download,
    uploadPass: upload.bridgeSftp.mbPerS >= upload.rclone.mbPerS,
    downloadPass: download.bridgeSftp.mbPerS >= download.rclone.mbPerS,
    rss: { bridgePeakMiB: bridgePeak, rclonePeakMiB: Math.max(sftp.rclone.vmHwmMiB, sftp.rclone.sampledMaxMiB), budgetMiB, pass: bridgePeak <= budgetMiB },
  };
}

function sftpReport(s) {
  const out = [''];
  out.push(`SFTP: ${s.sizeMiB} MiB each way, OpenSSH sftp (batch, password) against the bridge (cipher ${s.ciphers.bridge}) and ${s.rcloneVersion} serve sftp (cipher ${s.ciphers.rclone})`);
  out.push(`${padEnd('direction', 10)}${padEnd('path', 20)}${pad('MB/s', 8)}${pad('/direct', 9)}${pad('server CPU s/GiB', 18)}${pad('S3 CPU s/GiB', 14)}${pad('sftp client s/GiB', 19)}${pad('other s/GiB', 13)}${pad('server RSS max MiB', 20)}`);
  const names = { direct: 'direct S3', ftp: 'FTP via bridge', bridgeSftp: 'SFTP via bridge', rclone: 'rclone serve sftp' };
  for (const dirName of ['upload', 'download']) {
    for (const [k, r] of Object.entries(s[dirName])) {
      const server = k === 'direct' ? '-' : r.serverCpuPerGiB.toFixed(2);
      const rss = k === 'direct' ? '-' : r.serverRssMaxMiB.toFixed(1);
      out.push(`${padEnd(dirName, 10)}${padEnd(names[k], 20)}${pad(r.mbPerS.toFixed(1), 8)}${pad(r.ratio.toFixed(3), 9)}${pad(server, 18)}${pad(r.s3CpuPerGiB.toFixed(2), 14)}${pad(r.clientCpuPerGiB === undefined ? '-' : r.clientCpuPerGiB.toFixed(2), 19)}${pad(r.otherCpuPerGiB.toFixed(2), 13)}${pad(rss, 20)}`);
    }
  }
  if (s.upload.bridgeSftp.runsMBps?.length > 1) {
    const runs = (d) => d.bridgeSftp.runsMBps.map((b, i) => `${b} / ${d.rclone.runsMBps[i]}`).join(', ');
    out.push(`rounds, bridge / rclone MB/s (odd rounds bridge first, even rounds rclone first): upload ${runs(s.upload)}; download ${runs(s.download)}`);
  }
  out.push(`target: SFTP via the bridge at least as fast as rclone serve sftp: upload ${s.uploadPass ? 'PASS' : 'FAIL'}, download ${s.downloadPass ? 'PASS' : 'FAIL'}`);
  out.push(`bridge peak RSS ${s.rss.bridgePeakMiB} MiB vs budget ${s.rss.budgetMiB} MiB (${RSS_BASE_MiB} + partSize x queueSize + ${SFTP_REORDER_WINDOW_MiB} MiB reorder window)  ${s.rss.pass ? 'PASS' : 'FAIL'}; rclone peak RSS ${s.rss.rclonePeakMiB} MiB`);
  return out.join('\n') + '\n';
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
  const scan = rounds[0]?.upload.scanned
    ? (() => {
        const med = (path, k) => median(rounds.map((r) => r.upload[path][k]));
        const scannedMBps = med('scanned', 'mbPerS');
        const extraSeconds = med('scanned', 'seconds') - med('bridge', 'seconds');
        const clamdSeconds = med('clamd', 'seconds');
        return {
          scannedMBps: round(scannedMBps, 1),
          scannedRatio: round(scannedMBps / median(rounds.map((r) => r.upload.direct.mbPerS)), 3),
          clamdAloneMBps: round(med('clamd', 'mbPerS'), 1),
          clamdAloneSeconds: round(clamdSeconds, 2),
          scanAddedSeconds: round(extraSeconds, 2),
          // The bound: the scan may cost at most clamd's own time on the same bytes (+10% for the
          // noise of one measurement against another on a shared machine).
          pass: extraSeconds <= clamdSeconds * 1.1,
        };
      })()
    : undefined;
  return {
    upload: dir('upload'),
    download: dir('download'),
    ...(scan ? { scan } : {}),
    rss: { ...rss, budgetMiB, pass: peak <= budgetMiB },
  };
}

function printReport(result) {
  const { settings: s, machine: m, summary } = result;
  const out = [];
  out.push('');
  out.push(`ftp-s3-bridge transfer bench: ${s.sizeMiB} MiB per transfer, backend ${s.backend}, partSize ${s.partSizeMiB} MiB x queueSize ${s.queueSize}, ${s.rounds} round(s)${s.rounds > 1 ? ' (median)' : ''}, loopback`);
  out.push(`bridge: ${s.bridgeBin} (code ${result.code})${s.bridgeNodeArgs ? ` node args: ${s.bridgeNodeArgs}` : ''}${s.uploadDigests ? ` s3.uploadDigests: [${s.uploadDigests.join(', ')}]` : ''}`);
  out.push(`machine: ${m.cpuModel} x ${m.cpus} CPUs, ${m.totalMemGiB} GiB RAM, ${m.os}, node ${m.node}; load avg ${m.loadavgStart.join(' ')} at start, ${m.loadavgEnd.join(' ')} at end`);
  out.push('');
  out.push(`${padEnd('direction', 10)}${pad('direct MB/s', 13)}${pad('bridge MB/s', 13)}${pad('bridge/direct', 15)}${pad('target', 9)}  result`);
  for (const name of ['upload', 'download']) {
    const d = summary[name];
    out.push(`${padEnd(name, 10)}${pad(d.directMBps.toFixed(1), 13)}${pad(d.bridgeMBps.toFixed(1), 13)}${pad(d.ratio.toFixed(3), 15)}${pad(`>= ${TARGET_RATIO}`, 9)}  ${d.pass ? 'PASS' : 'FAIL'}`);
  }
  if (summary.scan) {
    const sc = summary.scan;
    out.push(`${padEnd('scanned', 10)}${pad('', 13)}${pad(sc.scannedMBps.toFixed(1), 13)}${pad(sc.scannedRatio.toFixed(3), 15)}`);
    out.push(`scan: clamd alone on the same bytes ${sc.clamdAloneMBps.toFixed(1)} MB/s (${sc.clamdAloneSeconds} s); the scanned upload took ${sc.scanAddedSeconds} s more than the unscanned one  ${sc.pass ? 'PASS' : 'FAIL'} (at most clamd's own time + 10%)`);
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
      for (const path of [...rd.order, ...(dirName === 'upload' && rd.upload.scanned ? ['scanned', 'clamd'] : [])]) {
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
  const tmp = tempDir(cleanups, 'ftp-s3-bridge-bench-');
  const base = makeBaseBlock();

  const backend = settings.backend === 'swift' ? await startBenchSwift(settings) : await startS3rver(cleanups);
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

  const clamd = settings.scan ? await startBenchClamd(tmp, settings.sizeMiB) : undefined;
  if (clamd) {
    settings.clamdSocket = clamd.socket;
    log(`clamd pid ${clamd.pid} on ${clamd.socket}`);
  }
  if (settings.sftpMiB > 0) {
    settings.sftpHostKey = join(tmp, 'ssh_host_ed25519_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bench', '-f', settings.sftpHostKey]);
  }
  const bridge = await startBridge(settings, backend, bucket, tmp);
  log(`bridge pid ${bridge.pid} listening on 127.0.0.1:${bridge.port}`);
  // clamd's CPU counts with the store's ("s3" column) in the per-transfer table.
  const monitor = new Monitor(bridge.pid, clamd ? () => [...backend.pids(), clamd.pid] : backend.pids);
  const idle = procStatus(bridge.pid);
  onCleanup('monitor', () => monitor.stop());
  const ctx = { settings, s3, backend, bucket, base, bridge, monitor, created, sourceSha256: undefined };

  const rounds = [];
  for (let r = 1; r <= settings.rounds; r++) rounds.push(await oneRound(ctx, r));

  // Peak RSS of the FTP rounds (the SFTP comparison reports its own).
  monitor.sample();
  const status = procStatus(bridge.pid);
  const ftpSampledMaxKiB = monitor.maxRssKiB;
  const sftp = settings.sftpMiB > 0 ? await sftpComparison(ctx, tmp) : undefined;
  const sftpBridgeHwmMiB = round(procStatus(bridge.pid).hwmKiB / 1024, 1);
  const rss = {
    idleAfterStartMiB: round(idle.rssKiB / 1024, 1),
    vmHwmMiB: round(status.hwmKiB / 1024, 1),
    sampledMaxMiB: round(ftpSampledMaxKiB / 1024, 1),
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
    ...(sftp ? { sftp: { summary: summarizeSftp(settings, sftp, sftpBridgeHwmMiB), upload: sftp.up, download: sftp.down } } : {}),
    rounds,
    bridgeAudit: bridge.audits.map((a) => ({ op: a.operation ?? a.op, path: a.path, bytes: a.bytes, durationMs: a.durationMs, result: a.result })),
  };
  delete result.settings.timeoutMs;
  mkdirSync(dirname(settings.output), { recursive: true });
  writeFileSync(settings.output, JSON.stringify(result, null, 2) + '\n');
  printReport(result);
  if (result.sftp) process.stdout.write(sftpReport(result.sftp.summary));
}

main().then(
  async () => {
    await cleanups.run();
    process.exit(0);
  },
  async (err) => {
    if (stopping) return; // the signal handler cleans up and exits
    process.stderr.write(`[bench] ERROR: ${err?.stack ?? err}\n`);
    if (bridgeLogTail) process.stderr.write(`[bench] last bridge log lines:\n${bridgeLogTail()}\n`);
    await cleanups.run();
    process.exit(1);
  },
);
