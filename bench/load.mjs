#!/usr/bin/env node
// bench/load.mjs - many small uploads at once: `npm run load` (builds first).
//
// Loopback only. Starts s3rver and the built bridge as a separate process, then in one run:
//   direct: LOAD_CLIENTS workers each PutObject LOAD_FILES files of LOAD_FILE_KIB straight to S3
//   bridge: LOAD_CLIENTS FTP clients (basic-ftp) each log in and STOR the same number of files
//   idle:   LOAD_IDLE_SESSIONS logged-in idle sessions on a fresh bridge: RSS per session, and a
//           new login's time
// Every stored file is checked by SHA-256 in S3. Prints sessions/s, files/s, p50/p99 STOR latency
// (STOR command to 226, as the client sees it), errors and the bridge's peak RSS, and the ratio to
// direct PutObject (target >= 0.8). Exit 0 when everything was measured with 0 errors and the
// targets hold, 1 otherwise. Every loop is bounded by count and by LOAD_TIMEOUT_S.
// LOAD_S3_BACKEND=swift runs both sides against Swift + s3api (infra/swift-s3, left running).
// LOAD_STORE_ONTO_DIRECTORY=refuse runs the bridge with s3.storeOntoDirectory: refuse (a
// ListObjectsV2 per STOR). Per phase it also prints the CPU seconds of the clients, bridge and S3.
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Client as FtpClient } from 'basic-ftp';
import { Cleanups, hashPassword, intEnv, procCpu, procStatus, runMain, s3Client, startBridge as startBridgeProcess, startS3rver, startSwift, tempDir, writeBridgeConfig } from './lib.mjs';

const KiB = 1024;
const log = (msg) => process.stderr.write(`[load] ${msg}\n`);

const settings = {
  clients: intEnv('LOAD_CLIENTS', 200, 1),
  files: intEnv('LOAD_FILES', 5, 1),
  fileBytes: intEnv('LOAD_FILE_KIB', 300, 1) * KiB,
  idleSessions: intEnv('LOAD_IDLE_SESSIONS', 1000, 0),
  timeoutMs: intEnv('LOAD_TIMEOUT_S', 600, 10) * 1000,
  pasvMin: intEnv('LOAD_PASV_MIN', 41000, 1024),
  // s3.storeOntoDirectory: 'refuse' adds a ListObjectsV2 to every STOR; 'allow' is the default
  storeOntoDirectory: process.env.LOAD_STORE_ONTO_DIRECTORY ?? 'allow',
  backend: process.env.LOAD_S3_BACKEND || 's3rver',
  // another build of the bridge (A/B comparisons), as BENCH_BRIDGE_BIN for npm run bench
  bridgeBin: process.env.LOAD_BRIDGE_BIN ? resolve(process.env.LOAD_BRIDGE_BIN) : undefined,
};
if (!['s3rver', 'swift'].includes(settings.backend)) throw new Error('LOAD_S3_BACKEND must be s3rver or swift');
if (!['refuse', 'allow'].includes(settings.storeOntoDirectory)) throw new Error('LOAD_STORE_ONTO_DIRECTORY must be refuse or allow');
if (settings.clients > 2000 || settings.files > 1000 || settings.idleSessions > 5000) throw new Error('refusing: LOAD_* above the loopback limits (2000 clients, 1000 files, 5000 idle)');

const cleanups = new Cleanups();
const deadline = Date.now() + settings.timeoutMs;
cleanups.exitAfter(settings.timeoutMs, `time limit of ${settings.timeoutMs / 1000}s reached`, log);
cleanups.exitOnSignals();

async function startBridge(s3, bucket) {
  const dir = tempDir(cleanups, 'ftp-s3-bridge-load-');
  // argon2id verifies on libuv's thread pool; bcryptjs would run 200 logins on the event loop
  const hash = hashPassword('pw', { bin: settings.bridgeBin, algorithm: 'argon2id' });
  const pasvMax = settings.pasvMin + Math.max(64, settings.clients + 32) - 1;
  const file = writeBridgeConfig(join(dir, 'bridge.yaml'), {
    store: s3,
    passivePorts: [settings.pasvMin, pasvMax],
    // Every client connects from 127.0.0.1, which the per-address limits (passive ports, memory
    // share) would otherwise treat as one device: as for a fleet behind one NAT address.
    ftp: {
      maxConnections: 0,
      maxConnectionsPerIp: 0,
      passive: { address: '127.0.0.1', portMin: settings.pasvMin, portMax: pasvMax, maxPerClient: pasvMax - settings.pasvMin + 1 },
    },
    s3: { storeOntoDirectory: settings.storeOntoDirectory, memoryShare: { perClientPercent: 100, perAccountPercent: 100 } },
    http: { enabled: false },
    log: { level: 'warn' },
    accounts: [{ username: 'cam', passwordHash: hash, bucket, prefix: 'bridge/' }],
  });
  const bridge = await startBridgeProcess(cleanups, file, { bin: settings.bridgeBin, env: { FTP_S3_BRIDGE__LOG__LEVEL: 'info' } });
  return { port: bridge.port, pid: bridge.pid };
}

/**
 * CPU seconds of this process (the clients), the bridge and the S3 server: each call of the
 * returned function gives those spent since the previous call.
 */
function cpuMeter(pids) {
  const sample = () => {
    const u = process.cpuUsage();
    const of = (list) => list.reduce((sum, pid) => sum + procCpu(pid).user + procCpu(pid).sys, 0);
    return { clients: (u.user + u.system) / 1e6, bridge: of(pids.bridge ? [pids.bridge] : []), s3: of(pids.s3()) };
  };
  let last = sample();
  return () => {
    const now = sample();
    const spent = Object.fromEntries(Object.keys(now).map((k) => [k, +(now[k] - last[k]).toFixed(2)]));
    last = now;
    return spent;
  };
}

const rssMiB = (pid) => procStatus(pid).rssKiB / 1024;
const peakRssMiB = (pid) => procStatus(pid).hwmKiB / 1024;
const sha = (b) => createHash('sha256').update(b).digest('hex');
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

/** Deterministic file content: a shared random block with a per-file head. */
function fileBody(block, tag) {
  const body = Buffer.from(block);
  Buffer.from(tag.padEnd(64)).copy(body, 0);
  return body;
}

async function workers(count, fn) {
  await Promise.all(Array.from({ length: count }, (_, w) => fn(w)));
}

async function direct(s3, bucket, block) {
  const client = s3Client(s3, { maxSockets: settings.clients });
  const lap = cpuMeter({ s3: s3.pids });
  const errors = [];
  const t0 = performance.now();
  await workers(settings.clients, async (w) => {
    for (let f = 0; f < settings.files && Date.now() < deadline; f++) {
      try {
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: `direct/c${w}/f${f}.bin`, Body: fileBody(block, `d ${w} ${f}`) }));
      } catch (err) {
        errors.push(err);
      }
    }
  });
  const seconds = (performance.now() - t0) / 1000;
  const cpuSeconds = lap();
  client.destroy();
  return { files: settings.clients * settings.files, seconds, filesPerSecond: (settings.clients * settings.files - errors.length) / seconds, errors: errors.length, cpuSeconds };
}

async function viaBridge(s3, bridge, block) {
  const lap = cpuMeter({ s3: s3.pids, bridge: bridge.pid });
  const errors = [];
  const latencies = [];
  const clients = [];
  const t0 = performance.now();
  await workers(settings.clients, async (w) => {
    const c = new FtpClient(60_000);
    try {
      await c.access({ host: '127.0.0.1', port: bridge.port, user: 'cam', password: 'pw' });
      clients[w] = c;
    } catch (err) {
      errors.push(err);
      c.close();
    }
  });
  const loginSeconds = (performance.now() - t0) / 1000;
  const loginCpuSeconds = lap();
  const t1 = performance.now();
  await workers(settings.clients, async (w) => {
    const c = clients[w];
    if (!c) return;
    for (let f = 0; f < settings.files && Date.now() < deadline; f++) {
      const started = performance.now();
      try {
        await c.uploadFrom(Readable.from([fileBody(block, `b ${w} ${f}`)]), `c${w}-f${f}.bin`);
        latencies.push(performance.now() - started);
      } catch (err) {
        errors.push(err);
      }
    }
    c.close();
  });
  const seconds = (performance.now() - t1) / 1000;
  const cpuSeconds = lap();
  latencies.sort((a, b) => a - b);
  return {
    sessions: settings.clients,
    sessionsPerSecond: settings.clients / loginSeconds,
    files: settings.clients * settings.files,
    seconds,
    filesPerSecond: latencies.length / seconds,
    storLatencyMs: { p50: pct(latencies, 50), p99: pct(latencies, 99) },
    errors: errors.length,
    firstError: errors[0] ? String(errors[0].message ?? errors[0]) : undefined,
    loginCpuSeconds,
    cpuSeconds,
  };
}

async function verify(s3, bucket, block) {
  const client = s3Client(s3, { maxSockets: 32 });
  let bad = 0;
  const jobs = [];
  for (let w = 0; w < settings.clients; w++) for (let f = 0; f < settings.files; f++) jobs.push([w, f]);
  let next = 0;
  await workers(32, async () => {
    while (next < jobs.length && Date.now() < deadline) {
      const [w, f] = jobs[next++];
      try {
        const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `bridge/c${w}-f${f}.bin` }));
        if (sha(Buffer.from(await got.Body.transformToByteArray())) !== sha(fileBody(block, `b ${w} ${f}`))) bad++;
      } catch {
        bad++;
      }
    }
  });
  client.destroy();
  return bad;
}

/**
 * Raw control connections that log in and then stay idle, on a bridge of their own: after the
 * load, the first bridge holds freed memory that glibc keeps for reuse (bin/ftp-s3-bridge sets a
 * 128 MiB trim threshold), so new sessions there would look free.
 */
async function idle(bridge) {
  const sockets = [];
  const login = (socket) =>
    new Promise((res, rej) => {
      let buffer = '';
      let step = 0;
      socket.setEncoding('utf8');
      socket.on('error', rej);
      socket.on('data', (chunk) => {
        buffer += chunk;
        const lines = buffer.split('\r\n');
        buffer = lines.pop();
        for (const line of lines) {
          if (!/^\d{3} /.test(line)) continue;
          if (step === 0 && line.startsWith('220')) {
            socket.write('USER cam\r\n');
            step = 1;
          } else if (step === 1 && line.startsWith('331')) {
            socket.write('PASS pw\r\n');
            step = 2;
          } else if (step === 2 && line.startsWith('230')) return res();
          else return rej(new Error(line));
        }
      });
    });
  const warmUp = connect(bridge.port, '127.0.0.1');
  await login(warmUp); // loads what a first login loads (password hashing, session modules)
  warmUp.destroy();
  await new Promise((r) => setTimeout(r, 1000));
  const before = rssMiB(bridge.pid);
  let failed = 0;
  for (let i = 0; i < settings.idleSessions && Date.now() < deadline; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, settings.idleSessions - i) }, async () => {
        const s = connect(bridge.port, '127.0.0.1');
        sockets.push(s);
        await login(s).catch(() => failed++);
      }),
    );
  }
  await new Promise((r) => setTimeout(r, 2000));
  const after = rssMiB(bridge.pid);
  const t0 = performance.now();
  const c = new FtpClient(10_000);
  await c.access({ host: '127.0.0.1', port: bridge.port, user: 'cam', password: 'pw' });
  const newLoginMs = performance.now() - t0;
  c.close();
  for (const s of sockets) s.destroy();
  return {
    sessions: sockets.length,
    failed,
    rssBeforeMiB: before,
    rssAfterMiB: after,
    kibPerSession: sockets.length ? ((after - before) * 1024) / sockets.length : 0,
    newLoginMs,
  };
}

async function main() {
  log(`settings: ${JSON.stringify(settings)}`);
  const s3 =
    settings.backend === 'swift'
      ? await startSwift(cleanups, { base: process.env.SWIFT_S3_BASE || '/tmp/ftp-s3-bridge-swift', keep: true })
      : await startS3rver(cleanups, 'ftp-s3-bridge-load-s3rver-');
  const bucket = `load-${Date.now()}`; // Swift is left running between runs
  const admin = s3Client(s3, { maxSockets: 8 });
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  admin.destroy();
  const bridge = await startBridge(s3, bucket);
  const block = randomBytes(settings.fileBytes);
  log(`direct PutObject: ${settings.clients} workers x ${settings.files} files`);
  const d = await direct(s3, bucket, block);
  log(`bridge STOR: ${settings.clients} FTP clients x ${settings.files} files`);
  const b = await viaBridge(s3, bridge, block);
  const peakAfterLoad = peakRssMiB(bridge.pid);
  log('verifying every stored file in S3');
  const bad = await verify(s3, bucket, block);
  log(`idle: ${settings.idleSessions} logged-in sessions`);
  const i = settings.idleSessions ? await idle(await startBridge(s3, bucket)) : undefined;
  const result = {
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memGiB: +(os.totalmem() / 2 ** 30).toFixed(1), node: process.version, s3: `${s3.name} (loopback)` },
    settings,
    direct: d,
    bridge: { ...b, verifyFailures: bad, peakRssMiB: peakAfterLoad },
    ratio: b.filesPerSecond / d.filesPerSecond,
    idle: i,
    bridgePeakRssMiB: peakRssMiB(bridge.pid),
  };
  const f1 = (n) => (Number.isFinite(n) ? n.toFixed(1) : String(n));
  process.stdout.write(
    [
      `clients ${settings.clients}, files/client ${settings.files}, file ${settings.fileBytes / KiB} KiB, s3.storeOntoDirectory ${settings.storeOntoDirectory}, ${result.machine.cpus} CPUs (${result.machine.cpuModel}), ${result.machine.s3}`,
      `direct PutObject : ${f1(d.filesPerSecond)} files/s, errors ${d.errors}, cpu s: clients ${d.cpuSeconds.clients} s3 ${d.cpuSeconds.s3}`,
      `bridge STOR      : ${f1(b.filesPerSecond)} files/s (${f1(result.ratio * 100)}% of direct, target >= 80%), sessions/s ${f1(b.sessionsPerSecond)}, ` +
        `STOR p50 ${f1(b.storLatencyMs.p50)} ms, p99 ${f1(b.storLatencyMs.p99)} ms, errors ${b.errors}, hash mismatches ${bad}, bridge peak RSS ${f1(peakAfterLoad)} MiB, ` +
        `cpu s (STORs): clients ${b.cpuSeconds.clients} bridge ${b.cpuSeconds.bridge} s3 ${b.cpuSeconds.s3}; logins: bridge ${b.loginCpuSeconds.bridge}`,
      i
        ? `idle sessions    : ${i.sessions} (failed ${i.failed}), ${f1(i.kibPerSession)} KiB RSS each (target <= 64), new login in ${f1(i.newLoginMs)} ms (target <= 1000)`
        : 'idle sessions    : skipped',
      JSON.stringify(result),
      '',
    ].join('\n'),
  );
  const ok = d.errors === 0 && b.errors === 0 && bad === 0 && result.ratio >= 0.8 && (!i || (i.failed === 0 && i.kibPerSession <= 64 && i.newLoginMs <= 1000));
  return ok ? 0 : 1;
}

runMain(main, cleanups, log);
