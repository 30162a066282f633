#!/usr/bin/env node
// bench/scale-out.mjs - three bridge replicas behind HAProxy on one machine, restarted one by one
// with SIGTERM while clients upload. Run by .ci/run; needs `npm run build`, curl and haproxy.
//
// Layout (all loopback):
//   S3: s3rver in this process (the embedded S3 of `ftp-s3-bridge dev`).
//   Replica i (i = 1..3): `node dist/cli/main.js` listening on 127.0.1.i (control, passive ports of
//     its own range), metrics/health on the same address; PASV announces 127.0.0.1, HAProxy's address.
//   HAProxy (TCP mode): 127.0.0.1:CONTROL -> the replicas with `balance source` (client-IP
//     affinity, as a Kubernetes Service with sessionAffinity: ClientIP), health-checked on /readyz
//     so that a draining replica leaves the rotation; each replica's passive range is forwarded to
//     that replica only.
//   Clients: curl from 127.0.0.2, 127.0.0.3, ... (--interface), uploading rate-limited files in a
//     loop; a failed upload is retried (bounded).
// Checks: every 226 has an intact object (SHA-256); every failed attempt left no object; every
// file is uploaded in the end; every replica exits 0 after SIGTERM. Prints the figures and writes
// bench/results/scale-out.json. Exit 0 when all checks pass, 1 otherwise.
// Settings: SCALE_OUT_CLIENTS (6), SCALE_OUT_BASE_PORT (12000; below the ephemeral port range), HAPROXY (haproxy on PATH).
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { BIN, ROOT, writeBridgeConfig } from './lib.mjs';

const CLIENTS = Number(process.env.SCALE_OUT_CLIENTS ?? 6);
const BASE = Number(process.env.SCALE_OUT_BASE_PORT ?? 12000);
const HAPROXY = process.env.HAPROXY ?? 'haproxy';
const REPLICAS = 3;
const PASSIVE_PORTS = 20;
const DRAIN_SECONDS = 20;
const MAX_ATTEMPTS = 6;
const RATE = '1500k';
const HARD_LIMIT_MS = Number(process.env.SCALE_OUT_TIME_LIMIT_MS ?? 150_000);
const BUCKET = 'scale-out';
const USER = 'loader';
const PASSWORD = 'scale out';

const { hashPassword } = await import(join(ROOT, 'dist/accounts/passwords.js'));
const { startEmbeddedS3 } = await import(join(ROOT, 'dist/server/embedded-s3.js'));

const work = mkdtempSync(join(tmpdir(), 'ftp-s3-bridge-scale-out-'));
const children = new Set();
const started = Date.now();
const log = (...a) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s]`, ...a);
const sha256 = (b) => createHash('sha256').update(b).digest('hex');

const replica = (i) => ({
  index: i,
  host: `127.0.1.${i}`,
  port: BASE + i,
  httpPort: BASE + 10 + i,
  portMin: BASE + 100 * i,
  portMax: BASE + 100 * i + PASSIVE_PORTS - 1,
});
const replicas = [1, 2, 3].slice(0, REPLICAS).map(replica);

function run(cmd, args, { cwd } = {}) {
  const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let output = '';
  child.stdout.on('data', (c) => (output += c));
  child.stderr.on('data', (c) => (output += c));
  const exited = new Promise((r) => child.once('exit', (code, signal) => (children.delete(child), r({ code, signal }))));
  return { child, exited, output: () => output };
}

async function waitFor(what, check, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const ready = (r) => globalThis.fetch(`http://${r.host}:${r.httpPort}/readyz`).then((res) => res.status === 200);

async function startReplica(r, s3, passwordHash) {
  const file = writeBridgeConfig(join(work, `replica-${r.index}.json`), {
    store: s3,
    passivePorts: [r.portMin, r.portMax],
    ftp: { host: r.host, port: r.port, loginFailureDelayMs: 200, maxConnectionsPerIp: 0 },
    http: { host: r.host, port: r.httpPort, readinessCacheSeconds: 3 },
    accounts: [{ username: USER, passwordHash, bucket: BUCKET }],
    shutdown: { drainTimeoutSeconds: DRAIN_SECONDS },
    log: { level: 'warn' },
  });
  r.proc = run(process.execPath, [BIN, '--config', file]);
  await waitFor(`replica ${r.index} ready`, () => ready(r));
}

function haproxyConfig() {
  const lines = [
    'global',
    '  maxconn 2000',
    ...(process.env.SCALE_OUT_VERBOSE ? ['  log stderr format raw local0'] : []),
    'defaults',
    '  mode tcp',
    ...(process.env.SCALE_OUT_VERBOSE ? ['  log global', '  option tcplog'] : []),
    '  timeout connect 10s',
    '  timeout check 5s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  retries 3',
    '  option redispatch',
    'frontend ftp',
    `  bind 127.0.0.1:${BASE}`,
    '  default_backend replicas',
    'backend replicas',
    '  balance source',
    '  hash-type consistent',
    '  option httpchk GET /readyz',
    ...replicas.map((r) => `  server r${r.index} ${r.host}:${r.port} check port ${r.httpPort} inter 500 fall 2 rise 1`),
  ];
  // A replica's passive ports reach that replica only: its PASV replies name ports of its range.
  for (const r of replicas) {
    lines.push(`listen pasv${r.index}`, `  bind 127.0.0.1:${r.portMin}-${r.portMax}`, `  server r${r.index} ${r.host}`);
  }
  return lines.join('\n') + '\n';
}

const stats = { uploads: 0, ok: 0, failedAttempts: 0, retries: 0, gaveUp: 0, violations: [], byReplicaRestart: [] };

async function objectHash(s3, key) {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return sha256(Buffer.from(await res.Body.transformToByteArray()));
  } catch (err) {
    if (err.name === 'NoSuchKey') return undefined;
    throw err;
  }
}

// curl, asynchronously, with its exit code.
function curlUpload(source, key, body) {
  return new Promise((resolveRun) => {
    const child = spawn(
      'curl',
      [...(process.env.SCALE_OUT_VERBOSE ? ['-v'] : []), '-sS', '--max-time', '30', '--interface', source, '--limit-rate', RATE, '--ftp-create-dirs', '-T', '-', `ftp://${USER}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${BASE}/${key}`],
      { stdio: ['pipe', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    child.on('close', (code) => resolveRun({ code, stderr: stderr.trim() }));
    child.stdin.on('error', () => {});
    child.stdin.end(body);
  });
}

async function uploader(id, s3, stop) {
  const source = `127.0.0.${2 + id}`;
  for (let n = 0; !stop.done; n++) {
    const key = `c${id}/f${n}.bin`;
    const body = randomBytes(256 * 1024 + Math.floor(Math.random() * 1024 * 1024));
    const hash = sha256(body);
    stats.uploads++;
    let attempt = 0;
    for (;;) {
      attempt++;
      const res = await curlUpload(source, key, body);
      const stored = await objectHash(s3, key);
      if (res.code === 0) {
        if (stored !== hash) stats.violations.push(`${key}: 226 but the object is ${stored ? 'different' : 'missing'}`);
        stats.ok++;
        break;
      }
      stats.failedAttempts++;
      if (process.env.SCALE_OUT_VERBOSE) log(`client ${id}: ${key} attempt ${attempt} failed: ${res.stderr.slice(-700)}`);
      if (stored !== undefined) stats.violations.push(`${key}: curl failed (${res.code}: ${res.stderr}) but an object exists`);
      if (attempt >= MAX_ATTEMPTS) {
        stats.gaveUp++;
        log(`client ${id}: ${key} failed ${attempt} times, giving up: ${res.stderr}`);
        break;
      }
      stats.retries++;
      await sleep(300 * attempt);
    }
  }
}

let haproxy;
let s3server;
let exitCode = 1;
const timer = setTimeout(() => {
  console.error(`scale-out: hard time limit of ${HARD_LIMIT_MS} ms reached`);
  cleanup().finally(() => process.exit(1));
}, HARD_LIMIT_MS);

// Never leave replicas or HAProxy behind, whatever ends this process.
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => process.exit(1));

async function cleanup() {
  for (const child of children) child.kill('SIGKILL');
  await s3server?.close().catch(() => {});
  rmSync(work, { recursive: true, force: true });
}

try {
  const check = spawnSync(HAPROXY, ['-v'], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`haproxy not found (${HAPROXY}); apt-get install haproxy`);
  mkdirSync(join(work, 's3'), { recursive: true });
  s3server = await startEmbeddedS3({ directory: join(work, 's3'), buckets: [BUCKET] });
  const s3 = new S3Client({
    endpoint: s3server.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: s3server.accessKeyId, secretAccessKey: s3server.secretAccessKey },
  });
  const passwordHash = await hashPassword(PASSWORD);
  await Promise.all(replicas.map((r) => startReplica(r, s3server, passwordHash)));
  const cfg = join(work, 'haproxy.cfg');
  writeFileSync(cfg, haproxyConfig());
  haproxy = run(HAPROXY, ['-db', '-f', cfg]);
  await waitFor('haproxy', async () => {
    const res = await curlUpload('127.0.0.2', 'probe.bin', 'probe');
    return res.code === 0;
  });
  log(`3 replicas and HAProxy up (${REPLICAS} x ${PASSIVE_PORTS} passive ports); ${CLIENTS} clients start uploading`);

  const stop = { done: false };
  const clients = Array.from({ length: CLIENTS }, (_, id) => uploader(id, s3, stop));
  await sleep(3000);
  for (const r of replicas) {
    const t0 = Date.now();
    r.proc.child.kill('SIGTERM');
    const { code, signal } = await r.proc.exited;
    const drainMs = Date.now() - t0;
    stats.byReplicaRestart.push({ replica: r.index, exitCode: code, signal, drainMs });
    log(`replica ${r.index}: SIGTERM -> exit ${code}${signal ? ` (${signal})` : ''} after ${drainMs} ms; restarting`);
    if (code !== 0) stats.violations.push(`replica ${r.index} exited ${code ?? signal}: ${r.proc.output().slice(-2000)}`);
    await startReplica(r, s3server, passwordHash);
    await sleep(2500);
  }
  await sleep(2000);
  stop.done = true;
  await Promise.all(clients);

  const figures = {
    replicas: REPLICAS,
    clients: CLIENTS,
    restarts: stats.byReplicaRestart,
    uploads: stats.uploads,
    succeeded: stats.ok,
    failedAttempts: stats.failedAttempts,
    retries: stats.retries,
    gaveUp: stats.gaveUp,
    violations: stats.violations,
    seconds: Math.round((Date.now() - started) / 1000),
  };
  console.log(JSON.stringify(figures, null, 2));
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results/scale-out.json'), JSON.stringify(figures, null, 2) + '\n');
  const passed = stats.violations.length === 0 && stats.gaveUp === 0 && stats.ok === stats.uploads && stats.uploads >= CLIENTS;
  log(
    `scale-out: ${stats.uploads} uploads, ${stats.ok} succeeded, ${stats.failedAttempts} failed attempts, ${stats.retries} retries, ` +
      `${stats.gaveUp} given up, ${stats.violations.length} violations -> ${passed ? 'PASS' : 'FAIL'}`,
  );
  for (const v of stats.violations) console.error('violation:', v);
  s3.destroy();
  if (process.env.SCALE_OUT_VERBOSE) console.log(haproxy.output());
  exitCode = passed ? 0 : 1;
} catch (err) {
  console.error('scale-out failed:', err);
  if (haproxy) console.error('haproxy output:', haproxy.output().slice(-2000));
  for (const r of replicas) if (r.proc) console.error(`replica ${r.index} output:`, r.proc.output().slice(-2000));
} finally {
  clearTimeout(timer);
  for (const r of replicas) if (r.proc && r.proc.child.exitCode === null) r.proc.child.kill('SIGTERM');
  await Promise.all(replicas.map((r) => r.proc?.exited));
  haproxy?.child.kill('SIGTERM');
  await haproxy?.exited;
  await cleanup();
}
process.exit(exitCode);
