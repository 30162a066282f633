#!/usr/bin/env node
// bench/scale-out.mjs - three bridge replicas behind HAProxy on one machine, sharing a Redis,
// restarted one by one with SIGTERM while hundreds of clients upload and download; Redis is killed
// for a few seconds in the middle. Run by .ci/run (30 s); needs `npm run build`, curl, haproxy and
// redis-server.
//
// Layout (all loopback):
//   S3: s3rver (test/support/s3rver-main.mjs) as a process of its own.
//   Redis: redis-server on 127.0.0.1:BASE+90, no persistence, in a temp dir; `cluster.redis.url` of
//     every replica, each with its own `cluster.replicaId` (stable across its restarts, as in a
//     StatefulSet: a graceful stop must leave nothing behind under its name).
//   Replica i (i = 1..3): `node dist/cli/main.js` on 127.0.1.i (control BASE+i, metrics/health
//     BASE+10+i, passive ports BASE+200i ..); PASV announces 127.0.0.1, HAProxy's address. It trusts
//     PROXY protocol headers from 127.0.0.1 only (HAProxy connects from there: `source 127.0.0.1`).
//   HAProxy (TCP mode), `send-proxy-v2` towards every replica port, so each replica sees the real
//     client address on control and data connections alike:
//       127.0.0.1:BASE -> the replicas, `balance leastconn`, health-checked on /readyz (a draining
//         replica leaves the rotation). No client affinity: with the client address carried in the
//         PROXY header, bans, connection limits and quotas are the cluster's (Redis), whichever
//         replica a connection lands on, and the data connections need none either, as each
//         replica's passive range below reaches that replica only. leastconn rather than
//         roundrobin because FTP sessions are long and uneven: a replica back from a restart is
//         empty and gets the new sessions until it carries its share.
//       127.0.0.1:BASE+20+i -> replica i only ("lanes"): the ban and quota checks pick the replica.
//       127.0.0.1:<replica i's passive range> -> replica i, same port.
//   Clients, each with an address of its own from 127.0.2.1 on (127.0.2.0/23, then 127.0.4.x for
//     the checks), curl with --interface, at most SCALE_OUT_MAX_CURL curl processes at once:
//       "cameras" (75 %) upload 30-300 KiB files at 256 KiB/s, one login per file, with a pause of
//       0.5-1.5 x SCALE_OUT_PAUSE_S in between; "partners" download one of the files seeded at the
//       start (read-only account) at 512 KiB/s, with the same pauses. Both start spread over the
//       first pause. A failed attempt is retried (bounded).
// Timeline: the ban and the quota checks run through the lanes; then the clients start; the
// replicas are restarted one after the other at 15, 40 and 65 % of SCALE_OUT_SECONDS (SIGTERM, wait
// for the exit, start again, wait until ready); at 50 % the ban is checked once more and Redis is
// SIGKILLed for SCALE_OUT_REDIS_OUTAGE_S, then started again, empty, on the same port, and the
// quota check runs again on a second account; the clients stop after SCALE_OUT_SECONDS.
// Checks (exit 1 on any violation):
//   - every 226 upload is an intact object (SHA-256) whose x-amz-meta-ftp-client-ip is the address
//     the client connected from (the PROXY header, end to end, data connections included); every
//     failed attempt left no object; every upload succeeds in the end; at the end every object is
//     still there, of its size; every download is byte-exact; the seeded objects are unchanged;
//   - bans: an attacker sends wrong passwords through replica 1, 2, 3, 1, ... in turn: at most
//     `maxFailures` of them are checked (530), every later attempt is refused (421) on every
//     replica, its right password too, while another address logs in on every replica; half-way,
//     under load, its right password is still refused by every replica that is up (restarted ones
//     included);
//   - quota: 9 parallel uploads of one account with `quota.maxBytes`, three through each replica:
//     the bytes committed under its prefix never exceed maxBytes (and some are committed); before
//     the load, and again right after Redis came back empty;
//   - Redis outage: no upload lost, an upload through each replica that is up succeeds during it,
//     cluster_redis_up of every running replica is 0 during it and 1 after;
//   - every replica exits 0 after SIGTERM.
// Prints the figures and writes bench/results/scale-out.json.
// Settings: SCALE_OUT_CLIENTS (300), SCALE_OUT_SECONDS (120), SCALE_OUT_PAUSE_S (10),
// SCALE_OUT_MAX_CURL (200), SCALE_OUT_PARTNER_PERCENT (25), SCALE_OUT_BASE_PORT (12000; below the
// ephemeral port range), SCALE_OUT_REDIS_OUTAGE_S (5), SCALE_OUT_TIME_LIMIT_S (SECONDS + 150),
// SCALE_OUT_BRIDGE_BIN (another build's dist/cli/main.js), HAPROXY, REDIS_SERVER, SCALE_OUT_VERBOSE.
// Parts switch off with SCALE_OUT_PROXY=0 (no PROXY protocol: client addresses not checked, no ban
// check), SCALE_OUT_REDIS=0 (no Redis, no outage), SCALE_OUT_BANS=0, SCALE_OUT_QUOTA=0,
// SCALE_OUT_RESTARTS=0.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { BIN, CLK_TCK, Cleanups, ROOT, intEnv, procCpu, procStatus, runMain, s3Client, startRedisServer, startS3rver, stopChild, tempDir, writeBridgeConfig } from './lib.mjs';

const CLIENTS = intEnv('SCALE_OUT_CLIENTS', 300, 2);
const SECONDS = intEnv('SCALE_OUT_SECONDS', 120, 10);
const MAX_CURL = intEnv('SCALE_OUT_MAX_CURL', 200, 1);
const PARTNER_PERCENT = intEnv('SCALE_OUT_PARTNER_PERCENT', 25, 0);
const PAUSE_MS = intEnv('SCALE_OUT_PAUSE_S', 10, 0) * 1000;
const BASE = intEnv('SCALE_OUT_BASE_PORT', 12000, 1024);
const OUTAGE_S = intEnv('SCALE_OUT_REDIS_OUTAGE_S', 5, 1);
const HARD_LIMIT_S = intEnv('SCALE_OUT_TIME_LIMIT_S', SECONDS + 150, 30);
const flag = (name) => process.env[name] !== '0';
const PROXY = flag('SCALE_OUT_PROXY');
const REDIS = flag('SCALE_OUT_REDIS');
const BANS = flag('SCALE_OUT_BANS') && PROXY;
const QUOTA = flag('SCALE_OUT_QUOTA');
const RESTARTS = flag('SCALE_OUT_RESTARTS');
const VERBOSE = Boolean(process.env.SCALE_OUT_VERBOSE);
const HAPROXY = process.env.HAPROXY ?? 'haproxy';
// Another build of the bridge (its dist/cli/main.js), e.g. a merge of branches not yet on this one.
const BRIDGE_BIN = process.env.SCALE_OUT_BRIDGE_BIN || BIN;
if (CLIENTS > 500) throw new Error('SCALE_OUT_CLIENTS must be <= 500 (client addresses 127.0.2.1-127.0.3.254)');

const REPLICAS = 3;
const PASSIVE_PORTS = 150;
const DRAIN_SECONDS = 20;
const MAX_ATTEMPTS = 6;
const CURL_MAX_TIME_S = 30;
const BUCKET = 'scale-out';
const CAMERA = { username: 'camera', password: 'camera pass', prefix: 'cameras/' };
const PARTNER = { username: 'partner', password: 'partner pass', prefix: 'seed/' };
const QUOTA_ACCOUNT = { username: 'quota', password: 'quota pass', prefix: 'quota/' };
// The same check once more right after Redis is back (empty), on an account of its own.
const QUOTA_ACCOUNT_2 = { username: 'quota2', password: 'quota2 pass', prefix: 'quota2/' };
const QUOTA_BYTES = 1_000_000;
const QUOTA_UPLOADS_PER_REPLICA = 3;
const QUOTA_UPLOAD_BYTES = 400_000;
const MAX_FAILURES = 5;
const SEED_FILES = 24;
const CAMERA_RATE = '256k';
const PARTNER_RATE = '512k';
const ATTACKER = '127.0.4.66';
const BYSTANDER = '127.0.4.67';

const started = Date.now();
const log = (...a) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s]`, ...a);
const sha256 = (b) => createHash('sha256').update(b).digest('hex');
const between = (min, max) => min + Math.floor(Math.random() * (max - min + 1));
/** The n-th client address (n >= 1): 127.0.2.1 .. 127.0.2.254, 127.0.3.1 .. */
const clientAddress = (n) => `127.0.${2 + Math.floor((n - 1) / 254)}.${((n - 1) % 254) + 1}`;
const lanePort = (r) => BASE + 20 + r.index;

const replicas = Array.from({ length: REPLICAS }, (_, k) => {
  const i = k + 1;
  return { index: i, host: `127.0.1.${i}`, port: BASE + i, httpPort: BASE + 10 + i, portMin: BASE + 200 * i, portMax: BASE + 200 * i + PASSIVE_PORTS - 1, peakRssKiB: 0 };
});

const cleanups = new Cleanups({ onError: (name, err) => log(`cleanup ${name}: ${err}`) });
cleanups.exitOnSignals();
cleanups.exitAfter(HARD_LIMIT_S * 1000, `scale-out: hard time limit of ${HARD_LIMIT_S} s reached`, log);

const violations = [];
const violation = (text) => {
  violations.push(text);
  log(`VIOLATION: ${text}`);
};

// ---- processes ---------------------------------------------------------------------------------------
function run(cmd, args) {
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (c) => (output = (output + c).slice(-20_000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  cleanups.add(() => stopChild(child, 5_000), `${cmd} ${child.pid}`);
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

const httpGet = (r, path) => globalThis.fetch(`http://${r.host}:${r.httpPort}${path}`, { signal: AbortSignal.timeout(2_000) });
const ready = (r) => httpGet(r, '/readyz').then((res) => res.status === 200);
/** A metric of a replica (first sample), or undefined when it does not answer. */
const metric = (r, name) =>
  httpGet(r, '/metrics')
    .then((res) => res.text())
    .then((text) => {
      const m = new RegExp(`^${name}(?:{[^}]*})? (\\d+)`, 'm').exec(text);
      return m ? Number(m[1]) : undefined;
    })
    .catch(() => undefined);
/** cluster_redis_up of a replica: 0, 1, or undefined when it does not answer. */
const redisUp = (r) => metric(r, 'cluster_redis_up');
/** cluster_redis_fallbacks_total of each replica (undefined: no answer). */
const fallbacks = () => Promise.all(replicas.map((r) => metric(r, 'cluster_redis_fallbacks_total')));
/** Decisions taken on the replicas' own state between two `fallbacks()` (a replica restarted meanwhile counts from 0). */
const fallbacksBetween = (before, after) => after.reduce((sum, n, i) => sum + (n === undefined ? 0 : n - (before[i] !== undefined && before[i] <= n ? before[i] : 0)), 0);

function trackRss(r) {
  try {
    r.peakRssKiB = Math.max(r.peakRssKiB, procStatus(r.proc.child.pid).hwmKiB);
  } catch {
    // gone
  }
}

// CPU seconds of the load window, by process: is the machine the limit?
const cpu = { replicas: 0, counting: false };
const cpuOf = (pid) => {
  const c = procCpu(pid);
  return c.user + c.sys;
};
/** CPU of this process's children that have exited and been reaped (curl, replaced replicas). */
function reapedChildrenCpu() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / CLK_TCK; // cutime, cstime: fields 16 and 17 of stat(5)
}
/** Adds a replica incarnation's CPU since the load started (or since it started) as it is stopped. */
function countReplicaCpu(r) {
  if (cpu.counting) cpu.replicas += cpuOf(r.proc.child.pid) - (r.cpuAtLoadStart ?? 0);
  r.cpuAtLoadStart = 0;
}

let redis;
let s3store;
const hashes = {};

async function startReplica(r) {
  const account = (a, extra) => ({ username: a.username, passwordHash: hashes[a.username], bucket: BUCKET, prefix: a.prefix, ...extra });
  const file = writeBridgeConfig(join(work, `replica-${r.index}.json`), {
    store: s3store,
    passivePorts: [r.portMin, r.portMax],
    ftp: {
      host: r.host,
      port: r.port,
      // Without PROXY every client is HAProxy's address: one client to every per-address bound.
      passive: { address: '127.0.0.1', portMin: r.portMin, portMax: r.portMax, ...(PROXY ? {} : { maxPerClient: PASSIVE_PORTS }) },
      loginFailureDelayMs: 200,
      maxConnectionsPerIp: PROXY ? 4 : 0,
      bruteForce: { maxFailures: MAX_FAILURES, windowSeconds: 600, banSeconds: 900 },
      ...(PROXY ? { proxyProtocol: { enabled: true, trustedProxies: ['127.0.0.1/32'], headerTimeoutSeconds: 5 } } : {}),
    },
    http: { host: r.host, port: r.httpPort, readinessCacheSeconds: 3 },
    accounts: [
      account(CAMERA, { permissions: ['list', 'read', 'write'] }),
      account(PARTNER, { permissions: ['list', 'read'] }),
      account(QUOTA_ACCOUNT, { permissions: ['list', 'read', 'write'], quota: { maxBytes: QUOTA_BYTES } }),
      account(QUOTA_ACCOUNT_2, { permissions: ['list', 'read', 'write'], quota: { maxBytes: QUOTA_BYTES } }),
    ],
    // commandTimeoutMs: on a loaded 2-core machine a Redis answer can take longer than the default 500 ms,
    // and each decision would then fall back to the replica's own state (by design), loosening the bounds.
    ...(REDIS ? { cluster: { redis: { url: redis.url, commandTimeoutMs: 3000 }, replicaId: `replica-${r.index}` } } : {}),
    shutdown: { drainTimeoutSeconds: DRAIN_SECONDS },
    log: { level: 'warn' },
  });
  r.proc = run(process.execPath, [BRIDGE_BIN, '--config', file]);
  await waitFor(`replica ${r.index} ready`, async () => {
    if (r.proc.child.exitCode !== null) throw new Error(`replica ${r.index} exited: ${r.proc.output().slice(-3000)}`);
    return ready(r);
  });
}

function haproxyConfig() {
  const proxy = PROXY ? ' source 127.0.0.1 send-proxy-v2' : ' source 127.0.0.1';
  const lines = [
    'global',
    '  maxconn 4000',
    ...(VERBOSE ? ['  log stderr format raw local0'] : []),
    'defaults',
    '  mode tcp',
    '  maxconn 4000',
    ...(VERBOSE ? ['  log global', '  option tcplog'] : []),
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
    '  balance leastconn',
    '  option httpchk GET /readyz',
    // `check port` sends the health checks without a PROXY header, to the HTTP port.
    ...replicas.map((r) => `  server r${r.index} ${r.host}:${r.port}${proxy} check port ${r.httpPort} inter 500 fall 2 rise 1`),
  ];
  for (const r of replicas) {
    lines.push(`listen lane${r.index}`, `  bind 127.0.0.1:${lanePort(r)}`, `  server r${r.index} ${r.host}:${r.port}${proxy}`);
    // A replica's passive ports reach that replica only: its PASV replies name ports of its range.
    lines.push(`listen pasv${r.index}`, `  bind 127.0.0.1:${r.portMin}-${r.portMax}`, `  server r${r.index} ${r.host}${proxy}`);
  }
  return lines.join('\n') + '\n';
}

// ---- curl, bounded ----------------------------------------------------------------------------------------
let curlFree = MAX_CURL;
const curlQueue = [];
let curlPeak = 0;
async function curl(args, input) {
  if (curlFree > 0) curlFree--;
  else await new Promise((r) => curlQueue.push(r));
  curlPeak = Math.max(curlPeak, MAX_CURL - curlFree);
  const t0 = performance.now();
  try {
    return await new Promise((resolveRun) => {
      const child = spawn('curl', [...(VERBOSE ? ['-v'] : []), '-sS', '--max-time', String(CURL_MAX_TIME_S), ...args], { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
      const out = [];
      let stderr = '';
      child.stdout.on('data', (c) => out.push(c));
      child.stderr.on('data', (c) => (stderr = (stderr + c).slice(-4000)));
      child.on('close', (code) => resolveRun({ code, stdout: Buffer.concat(out), stderr: stderr.trim(), ms: performance.now() - t0 }));
      if (input) {
        child.stdin.on('error', () => {});
        child.stdin.end(input);
      }
    });
  } finally {
    const next = curlQueue.shift();
    if (next) next();
    else curlFree++;
  }
}

const ftpUrl = (account, port, path) => `ftp://${account.username}:${encodeURIComponent(account.password)}@127.0.0.1:${port}/${path}`;
const upload = (source, account, port, name, body, rate) => curl(['--interface', source, '--limit-rate', rate, '-T', '-', ftpUrl(account, port, name)], body);
const download = (source, account, port, name, rate) => curl(['--interface', source, '--limit-rate', rate, ftpUrl(account, port, name)]);

// ---- S3 ---------------------------------------------------------------------------------------------------
let s3;
async function storedObject(key) {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    const body = Buffer.from(await res.Body.transformToByteArray());
    return { hash: sha256(body), size: body.length, clientIp: res.Metadata?.['ftp-client-ip'] };
  } catch (err) {
    if (err.name === 'NoSuchKey') return undefined;
    throw err;
  }
}

async function listSizes(prefix) {
  const sizes = new Map();
  let token;
  do {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }));
    for (const o of res.Contents ?? []) sizes.set(o.Key, o.Size);
    token = res.IsTruncated ? res.NextContinuationToken : undefined;
  } while (token);
  return sizes;
}

// ---- the load ---------------------------------------------------------------------------------------------
const stats = {
  uploads: 0,
  uploaded: 0,
  uploadBytes: 0,
  uploadFailedAttempts: 0,
  uploadRetries: 0,
  uploadsGivenUp: 0,
  downloads: 0,
  downloaded: 0,
  downloadBytes: 0,
  downloadFailedAttempts: 0,
  downloadRetries: 0,
  downloadsGivenUp: 0,
  uploadMs: [],
  downloadMs: [],
  committed: new Map(), // S3 key -> size, every 226
  failures: [], // a sample of curl errors
};
const outage = { active: false, from: 0, to: 0, uploadsDuring: 0, downloadsDuring: 0 };

function noteFailure(what, res) {
  if (stats.failures.length < 20) stats.failures.push(`${what}: curl ${res.code}: ${res.stderr.split('\n').pop()}`);
  if (VERBOSE) log(`${what} failed: curl ${res.code}: ${res.stderr.slice(-500)}`);
}

async function camera(id, source, stop) {
  await sleep(between(0, PAUSE_MS));
  for (let n = 0; !stop.done; n++) {
    const name = `cam${id}-${n}.bin`;
    const key = CAMERA.prefix + name;
    const body = randomBytes(between(30, 300) * 1024);
    const hash = sha256(body);
    stats.uploads++;
    for (let attempt = 1; ; attempt++) {
      const res = await upload(source, CAMERA, BASE, name, body, CAMERA_RATE);
      const stored = await storedObject(key);
      if (res.code === 0) {
        if (stored?.hash !== hash) violation(`${key}: 226 but the object is ${stored ? `different (${stored.size} of ${body.length} bytes)` : 'missing'}`);
        else if (PROXY && stored.clientIp !== source) violation(`${key}: uploaded from ${source} but x-amz-meta-ftp-client-ip is ${stored.clientIp}`);
        stats.uploaded++;
        stats.uploadBytes += body.length;
        stats.uploadMs.push(res.ms);
        stats.committed.set(key, body.length);
        if (outage.active) outage.uploadsDuring++;
        break;
      }
      stats.uploadFailedAttempts++;
      noteFailure(`upload ${key} attempt ${attempt}`, res);
      if (stored !== undefined) violation(`${key}: curl failed (${res.code}: ${res.stderr.split('\n').pop()}) but an object exists`);
      if (attempt >= MAX_ATTEMPTS) {
        stats.uploadsGivenUp++;
        violation(`${key}: failed ${attempt} times, given up: ${res.stderr.split('\n').pop()}`);
        break;
      }
      stats.uploadRetries++;
      await sleep(300 * attempt);
    }
    await sleep(between(PAUSE_MS / 2, (PAUSE_MS * 3) / 2));
  }
}

async function partner(id, source, seeds, stop) {
  await sleep(between(0, PAUSE_MS));
  while (!stop.done) {
    const seed = seeds[between(0, seeds.length - 1)];
    stats.downloads++;
    for (let attempt = 1; ; attempt++) {
      const res = await download(source, PARTNER, BASE, seed.name, PARTNER_RATE);
      if (res.code === 0) {
        if (sha256(res.stdout) !== seed.hash) violation(`download of ${seed.name} by ${source}: ${res.stdout.length} of ${seed.size} bytes, not byte-exact`);
        stats.downloaded++;
        stats.downloadBytes += res.stdout.length;
        stats.downloadMs.push(res.ms);
        if (outage.active) outage.downloadsDuring++;
        break;
      }
      stats.downloadFailedAttempts++;
      noteFailure(`download ${seed.name} by ${source} attempt ${attempt}`, res);
      if (attempt >= MAX_ATTEMPTS) {
        stats.downloadsGivenUp++;
        violation(`download of ${seed.name} by ${source}: failed ${attempt} times, given up`);
        break;
      }
      stats.downloadRetries++;
      await sleep(300 * attempt);
    }
    await sleep(between(PAUSE_MS / 2, (PAUSE_MS * 3) / 2));
  }
}

// ---- a raw FTP login, for the ban check ------------------------------------------------------------------
/** Connects from `source` to `port`, logs in with USER/PASS: the last reply code, or 'closed'/'timeout'. */
function ftpLogin(source, port, account, password, timeoutMs = 30_000) {
  return new Promise((resolveLogin) => {
    const socket = createConnection({ host: '127.0.0.1', port, localAddress: source });
    let buffer = '';
    let stage = 'greeting';
    const codes = [];
    const done = (result) => {
      clearTimeout(timer);
      socket.destroy();
      resolveLogin({ result, codes });
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    socket.setEncoding('latin1');
    socket.on('data', (chunk) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl).replace(/\r$/, '');
        buffer = buffer.slice(nl + 1);
        const m = /^(\d{3}) /.exec(line);
        if (!m) continue; // a line of a multi-line reply
        const code = Number(m[1]);
        codes.push(code);
        if (stage === 'greeting') {
          if (code !== 220) return done(code);
          stage = 'user';
          socket.write(`USER ${account.username}\r\n`);
        } else if (stage === 'user') {
          if (code !== 331) return done(code);
          stage = 'pass';
          socket.write(`PASS ${password}\r\n`);
        } else {
          socket.write('QUIT\r\n');
          return done(code);
        }
      }
    });
    socket.on('error', () => done('closed'));
    socket.on('close', () => done('closed'));
  });
}

async function banCheck() {
  const attempts = [];
  let inconclusive = 0;
  // Twice maxFailures plus one per replica, in turn through replica 1, 2, 3, 1, ... An attempt that
  // got no answer (an overloaded machine) proves nothing either way: it is repeated (bounded).
  for (let n = 0; attempts.length < 2 * MAX_FAILURES + REPLICAS && n < 4 * (2 * MAX_FAILURES + REPLICAS); n++) {
    const r = replicas[attempts.length % REPLICAS];
    const { result, codes } = await ftpLogin(ATTACKER, lanePort(r), CAMERA, `wrong password ${n}`);
    if (result === 'timeout' || result === 'closed') inconclusive++;
    else attempts.push({ replica: r.index, result, codes });
  }
  const checked = attempts.filter((a) => a.result === 530).length;
  const firstRefused = attempts.findIndex((a) => a.result === 421);
  const refusedOn = new Set();
  attempts.forEach((a, n) => {
    if (a.result !== 530 && a.result !== 421) violation(`ban: wrong password ${n + 1} on replica ${a.replica}: ${a.result} (${a.codes.join(' ')})`);
    if (firstRefused >= 0 && n >= firstRefused) {
      if (a.result !== 421) violation(`ban: wrong password ${n + 1} on replica ${a.replica} after the ban: ${a.result} (${a.codes.join(' ')}), not 421`);
      else refusedOn.add(a.replica);
    }
  });
  if (checked > MAX_FAILURES) violation(`ban: ${checked} wrong passwords checked (530), maxFailures is ${MAX_FAILURES}`);
  if (firstRefused < 0) violation('ban: the attacker was never refused');
  const rightPassword = [];
  for (const r of replicas) {
    const { result, codes } = await ftpLogin(ATTACKER, lanePort(r), CAMERA, CAMERA.password);
    rightPassword.push({ replica: r.index, result });
    if (result !== 421) violation(`ban: the banned address's right password on replica ${r.index}: ${result} (${codes.join(' ')}), not 421`);
    else refusedOn.add(r.index);
    const bystander = await ftpLogin(BYSTANDER, lanePort(r), CAMERA, CAMERA.password);
    if (bystander.result !== 230) violation(`ban: another address on replica ${r.index} got ${bystander.result} (${bystander.codes.join(' ')}), not 230`);
  }
  const result = { maxFailures: MAX_FAILURES, attempts: attempts.length, inconclusive, checked, refused: attempts.length - checked, refusedOnReplicas: [...refusedOn].sort(), rightPassword };
  log(`ban: ${checked} wrong passwords checked (maxFailures ${MAX_FAILURES}), then ${result.refused} refused; refused on replicas ${result.refusedOnReplicas.join(', ')}`);
  return result;
}

/** Parallel uploads of `account` (quota.maxBytes), QUOTA_UPLOADS_PER_REPLICA through each replica, from client addresses `firstAddress`..; `when` names the round. */
async function quotaCheck(account, firstAddress, when) {
  const fallbacksBefore = await fallbacks();
  let k = 0;
  const runs = [];
  for (const r of replicas) {
    for (let j = 0; j < QUOTA_UPLOADS_PER_REPLICA; j++, k++) {
      const name = `q${k}.bin`;
      const body = randomBytes(QUOTA_UPLOAD_BYTES);
      runs.push(upload(`127.0.4.${firstAddress + k}`, account, lanePort(r), name, body, '200k').then((res) => ({ name, hash: sha256(body), replica: r.index, code: res.code, error: res.stderr.split('\n').pop() })));
    }
  }
  const results = await Promise.all(runs);
  const sizes = await listSizes(account.prefix);
  const committedBytes = [...sizes.values()].reduce((a, b) => a + b, 0);
  for (const res of results) {
    const stored = await storedObject(account.prefix + res.name);
    if (res.code === 0 && stored?.hash !== res.hash) violation(`quota (${when}): ${res.name}: 226 but the object is ${stored ? 'different' : 'missing'}`);
    if (res.code !== 0 && stored) violation(`quota (${when}): ${res.name}: refused (${res.error}) but an object exists`);
  }
  const succeeded = results.filter((r) => r.code === 0);
  // Redis down or slower than commandTimeoutMs: each replica decides on its own (by design), so the bound is per replica.
  const fallbacksDuring = REDIS ? fallbacksBetween(fallbacksBefore, await fallbacks()) : undefined;
  if (fallbacksDuring) log(`quota (${when}): the replicas decided ${fallbacksDuring} times on their own state during the check (Redis slow or down)`);
  if (committedBytes > QUOTA_BYTES) violation(`quota (${when}): ${committedBytes} bytes committed under ${account.prefix}, maxBytes is ${QUOTA_BYTES}`);
  if (succeeded.length === 0) violation('quota: no upload of the quota account succeeded');
  const result = {
    when,
    maxBytes: QUOTA_BYTES,
    uploads: results.length,
    uploadBytes: QUOTA_UPLOAD_BYTES,
    succeeded: succeeded.length,
    succeededByReplica: replicas.map((r) => succeeded.filter((s) => s.replica === r.index).length),
    committedBytes,
    redisFallbacksDuring: fallbacksDuring,
  };
  log(`quota (${when}): ${results.length} parallel uploads of ${QUOTA_UPLOAD_BYTES} bytes through 3 replicas, ${succeeded.length} committed (${result.succeededByReplica.join('/')}), ${committedBytes} bytes of maxBytes ${QUOTA_BYTES}`);
  return result;
}

// ---- restarts and the Redis outage ----------------------------------------------------------------------------
const restarts = [];
const quotaResults = [];
async function rollingRestarts(loadStart) {
  for (const [k, r] of replicas.entries()) {
    // Spread over the run: at 15 %, 40 %, 65 % of it.
    const at = loadStart + (0.15 + 0.25 * k) * SECONDS * 1000;
    if (Date.now() < at) await sleep(at - Date.now());
    trackRss(r);
    countReplicaCpu(r);
    const t0 = Date.now();
    r.proc.child.kill('SIGTERM');
    const { code, signal } = await r.proc.exited;
    const drainMs = Date.now() - t0;
    log(`replica ${r.index}: SIGTERM -> exit ${code}${signal ? ` (${signal})` : ''} after ${drainMs} ms; restarting`);
    if (code !== 0) violation(`replica ${r.index} exited ${code ?? signal} after SIGTERM: ${r.proc.output().slice(-2000)}`);
    const t1 = Date.now();
    await startReplica(r);
    restarts.push({ replica: r.index, exitCode: code, signal, drainMs, readyAgainMs: Date.now() - t1, peakRssKiBBefore: r.peakRssKiB });
  }
}

async function redisOutage(loadStart) {
  const at = loadStart + 0.5 * SECONDS * 1000;
  if (Date.now() < at) await sleep(at - Date.now());
  const running = () => replicas.filter((r) => r.proc.child.exitCode === null);
  // The ban is held in Redis: under load, and on the replicas restarted since, the attacker is still refused.
  const banHeld = [];
  if (BANS) {
    for (const r of running()) {
      if (!(await ready(r).catch(() => false))) continue;
      const { result, codes } = await ftpLogin(ATTACKER, lanePort(r), CAMERA, CAMERA.password);
      if (result === 'timeout' || result === 'closed') continue;
      banHeld.push({ replica: r.index, result });
      if (result !== 421) violation(`ban: under load, the banned address's right password on replica ${r.index}: ${result} (${codes.join(' ')}), not 421`);
    }
    log(`ban: under load, the banned address refused on replicas ${banHeld.filter((b) => b.result === 421).map((b) => b.replica).join(', ') || 'none'}`);
  }
  const before = await Promise.all(replicas.map(redisUp));
  log(`Redis: SIGKILL (cluster_redis_up before: ${before.join(' ')})`);
  outage.from = Date.now();
  outage.active = true;
  await redis.kill();
  const seenDown = new Set();
  const deadline = Date.now() + OUTAGE_S * 1000;
  while (Date.now() < deadline) {
    await Promise.all(
      running().map(async (r) => {
        if ((await redisUp(r)) === 0 && Date.now() < deadline) seenDown.add(r.index);
      }),
    );
    await sleep(Math.min(200, Math.max(0, deadline - Date.now())));
  }
  // One upload through each replica that is up, while Redis is still down: each serves on its own state.
  const probes = [];
  for (const r of running()) {
    if (!(await ready(r).catch(() => false))) continue;
    const name = `outage-${r.index}.bin`;
    const body = randomBytes(64 * 1024);
    const source = `127.0.4.${40 + r.index}`;
    const res = await upload(source, CAMERA, lanePort(r), name, body, '10M');
    const stored = await storedObject(CAMERA.prefix + name);
    const ok = res.code === 0 && stored?.hash === sha256(body) && (!PROXY || stored.clientIp === source);
    probes.push({ replica: r.index, ok });
    if (res.code === 0) stats.committed.set(CAMERA.prefix + name, body.length);
    if (!ok && r.proc.child.exitCode === null) violation(`Redis outage: an upload through replica ${r.index}: curl ${res.code} (${res.stderr.split('\n').pop()}), object ${stored ? `${stored.size} bytes from ${stored.clientIp}` : 'missing'}`);
  }
  if (!probes.some((p) => p.ok)) violation('Redis outage: no upload through any replica succeeded');
  const startAt = Date.now();
  await redis.start();
  outage.to = Date.now();
  outage.active = false;
  log(`Redis: started again after ${outage.to - outage.from} ms (the start itself took ${outage.to - startAt} ms); cluster_redis_up 0 seen on replicas ${[...seenDown].sort().join(', ')}`);
  if (seenDown.size < REPLICAS - 1) violation(`Redis outage: cluster_redis_up 0 seen on replicas ${[...seenDown].join(', ') || 'none'} only`);
  const seenUp = new Set();
  const upDeadline = Date.now() + 30_000;
  while (Date.now() < upDeadline && seenUp.size < REPLICAS) {
    await Promise.all(
      replicas.map(async (r) => {
        if ((await redisUp(r)) === 1) seenUp.add(r.index);
      }),
    );
    await sleep(200);
  }
  const backMs = Date.now() - outage.to;
  if (seenUp.size < REPLICAS) violation(`Redis outage: cluster_redis_up back to 1 on replicas ${[...seenUp].join(', ') || 'none'} only, 30 s after Redis restarted`);
  else log(`Redis: cluster_redis_up 1 on every replica ${backMs} ms after the restart`);
  // Redis came back empty: the bound must hold again from the first upload on.
  if (QUOTA) quotaResults.push(await quotaCheck(QUOTA_ACCOUNT_2, 30, 'right after Redis restarted'));
  return { banHeldBeforeOutage: banHeld, uploadsThroughEachReplica: probes, outageMs: outage.to - outage.from, downSeenOn: [...seenDown].sort(), upAgainOn: [...seenUp].sort(), upAgainAfterMs: backMs };
}

// ---- main -------------------------------------------------------------------------------------------------------
const percentile = (values, p) => {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]);
};

let work;
async function main() {
  for (const [tool, args] of [
    [HAPROXY, ['-v']],
    ['curl', ['--version']],
  ]) {
    if (spawnSync(tool, args).status !== 0) throw new Error(`${tool} not found; apt-get install haproxy curl redis-server`);
  }
  work = tempDir(cleanups, 'ftp-s3-bridge-scale-out-');
  const { hashPassword } = await import(join(dirname(dirname(BRIDGE_BIN)), 'accounts/passwords.js'));
  s3store = await startS3rver(cleanups, 'ftp-s3-bridge-scale-out-s3-');
  s3 = s3Client(s3store, { maxSockets: 64 });
  cleanups.add(() => s3.destroy(), 's3 client');
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  if (REDIS) redis = await startRedisServer(cleanups, { port: BASE + 90, dir: join(work, 'redis') });
  // argon2id (~20 ms of CPU per check) rather than the default bcrypt cost 10 (~50 ms): every
  // upload and download here is a login of its own, as with cameras that connect per file.
  for (const a of [CAMERA, PARTNER, QUOTA_ACCOUNT, QUOTA_ACCOUNT_2]) hashes[a.username] = await hashPassword(a.password, 'argon2id');

  const seeds = [];
  for (let k = 0; k < SEED_FILES; k++) {
    const body = randomBytes(between(32, 512) * 1024);
    const name = `p${k}.bin`;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: PARTNER.prefix + name, Body: body }));
    seeds.push({ name, hash: sha256(body), size: body.length });
  }

  await Promise.all(replicas.map((r) => startReplica(r)));
  const cfg = join(work, 'haproxy.cfg');
  writeFileSync(cfg, haproxyConfig());
  const haproxy = run(HAPROXY, ['-db', '-f', cfg]);
  await waitFor('haproxy', async () => (await download('127.0.4.1', PARTNER, BASE, seeds[0].name, '10M')).code === 0, 30_000);

  const partners = Math.round((CLIENTS * PARTNER_PERCENT) / 100);
  const cameras = CLIENTS - partners;
  log(
    `${REPLICAS} replicas (${PASSIVE_PORTS} passive ports each) behind HAProxy (PROXY v2: ${PROXY ? 'on' : 'OFF'}), Redis: ${REDIS ? 'on' : 'OFF'}; ` +
      `${cameras} cameras and ${partners} partners for ${SECONDS} s, at most ${MAX_CURL} curl processes at once`,
  );
  // The ban and quota checks first, on the idle cluster: through the lanes they need every replica
  // up, and the restarts below keep to their times whatever the load does to the checks' duration.
  const bans = BANS ? await banCheck() : undefined;
  if (QUOTA) quotaResults.push(await quotaCheck(QUOTA_ACCOUNT, 10, 'at the start'));

  const stop = { done: false };
  const loadStart = Date.now();
  for (const r of replicas) r.cpuAtLoadStart = cpuOf(r.proc.child.pid);
  const cpuStart = { self: process.cpuUsage(), children: reapedChildrenCpu(), s3: cpuOf(s3store.pid), haproxy: cpuOf(haproxy.child.pid) };
  cpu.counting = true;
  const clients = [
    ...Array.from({ length: cameras }, (_, id) => camera(id, clientAddress(id + 1), stop)),
    ...Array.from({ length: partners }, (_, id) => partner(id, clientAddress(cameras + id + 1), seeds, stop)),
  ];
  const [, redisResult] = await Promise.all([RESTARTS ? rollingRestarts(loadStart) : undefined, REDIS ? redisOutage(loadStart) : undefined]);
  const stopAt = loadStart + SECONDS * 1000;
  if (Date.now() < stopAt) await sleep(stopAt - Date.now());
  stop.done = true;
  const loadSeconds = (Date.now() - loadStart) / 1000;
  for (const r of replicas) countReplicaCpu(r);
  cpu.counting = false;
  const self = process.cpuUsage(cpuStart.self);
  const cpuSeconds = {
    replicas: cpu.replicas,
    s3rver: cpuOf(s3store.pid) - cpuStart.s3,
    haproxy: cpuOf(haproxy.child.pid) - cpuStart.haproxy,
    bench: (self.user + self.system) / 1e6,
    // curl, and the drain of the replicas stopped meanwhile (their CPU before SIGTERM is in `replicas`)
    curlAndExited: reapedChildrenCpu() - cpuStart.children,
  };
  const cpuTotal = Object.values(cpuSeconds).reduce((a, b) => a + b, 0);
  const uploadedInTime = stats.uploaded;
  const downloadedInTime = stats.downloaded;
  log(`stopping the clients (${uploadedInTime} uploads, ${downloadedInTime} downloads so far)`);
  await Promise.all(clients);
  for (const r of replicas) trackRss(r);

  // Every object that got a 226 is still there, of its size; the seeded objects are unchanged.
  const sizes = await listSizes(CAMERA.prefix);
  let lost = 0;
  for (const [key, size] of stats.committed) {
    if (sizes.get(key) !== size) {
      lost++;
      if (lost <= 10) violation(`${key}: committed with ${size} bytes, now ${sizes.has(key) ? `${sizes.get(key)} bytes` : 'missing'}`);
    }
  }
  if (lost > 10) violation(`${lost} committed objects lost or changed in all`);
  for (const seed of seeds) {
    const stored = await storedObject(PARTNER.prefix + seed.name);
    if (stored?.hash !== seed.hash) violation(`seeded ${seed.name} changed`);
  }
  if (stats.uploaded !== stats.uploads) violation(`${stats.uploads - stats.uploaded} uploads never succeeded`);
  if (cameras > 0 && stats.uploaded === 0) violation('no upload succeeded');
  if (partners > 0 && stats.downloaded === 0) violation('no download succeeded');

  // The replicas stop as in production; each must exit 0.
  const finalStops = await Promise.all(
    replicas.map(async (r) => {
      trackRss(r);
      const t0 = Date.now();
      r.proc.child.kill('SIGTERM');
      const { code, signal } = await r.proc.exited;
      if (code !== 0) violation(`replica ${r.index} exited ${code ?? signal} after the final SIGTERM: ${r.proc.output().slice(-2000)}`);
      return { replica: r.index, exitCode: code, drainMs: Date.now() - t0 };
    }),
  );
  await stopChild(haproxy.child);
  if (VERBOSE) console.log(haproxy.output());

  const figures = {
    date: new Date().toISOString(),
    replicas: REPLICAS,
    proxyProtocol: PROXY,
    redis: REDIS,
    clients: CLIENTS,
    cameras,
    partners,
    seconds: SECONDS,
    loadSeconds: Number(loadSeconds.toFixed(1)),
    maxCurl: MAX_CURL,
    curlPeak,
    uploads: { started: stats.uploads, succeeded: stats.uploaded, inTime: uploadedInTime, perSecond: Number((uploadedInTime / loadSeconds).toFixed(1)), MiB: Number((stats.uploadBytes / 2 ** 20).toFixed(1)), p50Ms: percentile(stats.uploadMs, 50), p99Ms: percentile(stats.uploadMs, 99), failedAttempts: stats.uploadFailedAttempts, retries: stats.uploadRetries, givenUp: stats.uploadsGivenUp },
    downloads: { started: stats.downloads, succeeded: stats.downloaded, inTime: downloadedInTime, perSecond: Number((downloadedInTime / loadSeconds).toFixed(1)), MiB: Number((stats.downloadBytes / 2 ** 20).toFixed(1)), p50Ms: percentile(stats.downloadMs, 50), p99Ms: percentile(stats.downloadMs, 99), failedAttempts: stats.downloadFailedAttempts, retries: stats.downloadRetries, givenUp: stats.downloadsGivenUp },
    objectsChecked: stats.committed.size,
    restarts,
    finalStops,
    cpuSeconds: Object.fromEntries(Object.entries(cpuSeconds).map(([k, v]) => [k, Number(v.toFixed(1))])),
    coresBusy: Number((cpuTotal / loadSeconds).toFixed(2)),
    loadAverage: loadavg().map((l) => Number(l.toFixed(1))),
    peakRssMiB: Object.fromEntries(replicas.map((r) => [`replica${r.index}`, Number((r.peakRssKiB / 1024).toFixed(1))])),
    bans,
    quota: QUOTA ? quotaResults : undefined,
    redisOutage: redisResult && { ...redisResult, uploadsDuring: outage.uploadsDuring, downloadsDuring: outage.downloadsDuring },
    failureSample: stats.failures,
    violations,
  };
  console.log(JSON.stringify(figures, null, 2));
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results/scale-out.json'), JSON.stringify(figures, null, 2) + '\n');
  const passed = violations.length === 0;
  const { uploads: u, downloads: d } = figures;
  log(
    `scale-out: ${u.succeeded} uploads (${u.perSecond}/s, p50 ${u.p50Ms} ms, p99 ${u.p99Ms} ms), ${d.succeeded} downloads (${d.perSecond}/s, p50 ${d.p50Ms} ms, p99 ${d.p99Ms} ms), ` +
      `${u.failedAttempts + d.failedAttempts} failed attempts, ${u.retries + d.retries} retries, ${violations.length} violations -> ${passed ? 'PASS' : 'FAIL'}`,
  );
  for (const v of violations) console.error('violation:', v);
  if (!passed) for (const r of replicas) console.error(`replica ${r.index} output:`, r.proc.output().slice(-3000));
  return passed ? 0 : 1;
}

runMain(main, cleanups, log);
