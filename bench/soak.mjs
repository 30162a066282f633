#!/usr/bin/env node
// bench/soak.mjs - mixed traffic with faults for a while: `npm run soak` (builds first).
//
// Loopback only. Starts s3rver, a fault-injecting HTTP proxy in front of it and the built bridge
// (a separate process) behind the proxy, then runs SOAK_CLIENTS FTP clients for SOAK_SECONDS
// (default 600) doing STOR, RETR, LIST, RNFR/RNTO and DELE in directories of their own, with
// random disconnects in the middle of uploads, while SOAK_FAULT_PERCENT (default 5) of S3 requests
// fail (503 SlowDown, 500 InternalError, connection reset before the answer, GetObject bodies reset
// half-way). Every client keeps a model of what its directory must hold. Afterwards it checks and
// prints the invariants:
//   - every STOR that got 226 is in S3 byte-exact (and every rename/delete is reflected);
//   - no STOR that did not get 226 left a visible object or a new version of one;
//   - no open multipart upload remains after `sweep-uploads` (on stores that list them);
//   - passive ports in use, open file descriptors and RSS are back within 10% of their values at
//     the start (measured after a warm-up).
// RSS at the end is taken once the connections settled and the bridge has freed its spare part
// buffers; the peak of the first half of the run is printed next to it (a leak grows past it).
// Exit 0 when every invariant holds, 1 otherwise.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { createServer, get, request } from 'node:http';
import { connect } from 'node:net';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateBucketCommand, GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Client as FtpClient } from 'basic-ftp';
import { BIN, Cleanups, hashPassword, numEnv, procStatus, runMain, s3Client, startBridge as startBridgeProcess, startS3rver, startSwift, tempDir, writeBridgeConfig } from './lib.mjs';

const KiB = 1024;
const log = (msg) => process.stderr.write(`[soak] ${msg}\n`);

const settings = {
  seconds: numEnv('SOAK_SECONDS', 600, 5),
  clients: numEnv('SOAK_CLIENTS', 50, 1),
  faultPercent: numEnv('SOAK_FAULT_PERCENT', 5, 0),
  pasvMin: numEnv('SOAK_PASV_MIN', 42000, 1024),
  backend: process.env.SOAK_S3_BACKEND || 's3rver',
};
if (!['s3rver', 'swift'].includes(settings.backend)) throw new Error('SOAK_S3_BACKEND must be s3rver or swift');
if (settings.clients > 500 || settings.seconds > 24 * 3600) throw new Error('refusing: SOAK_CLIENTS <= 500 and SOAK_SECONDS <= 86400');

const cleanups = new Cleanups();
cleanups.exitAfter((settings.seconds + 300) * 1000, 'hard time limit reached', log);
cleanups.exitOnSignals();

/** The S3 under test: s3rver, or Swift + s3api (infra/swift-s3), started if it does not run yet and left running. */
async function startS3() {
  if (settings.backend !== 'swift') return { ...(await startS3rver(cleanups, 'ftp-s3-bridge-soak-s3rver-')), listsMultipartUploads: false };
  const swift = await startSwift(cleanups, { base: process.env.SWIFT_S3_BASE || '/tmp/ftp-s3-bridge-swift', keep: true });
  return { ...swift, listsMultipartUploads: true };
}

/** Faults that never let a request reach S3 (or only its read-only answer), so outcomes stay exact. */
async function startFaultProxy(upstream) {
  const target = new URL(upstream);
  const counts = { requests: 0, faults: 0 };
  const server = createServer((req, res) => {
    counts.requests++;
    const fault = Math.random() * 100 < settings.faultPercent;
    const isGet = req.method === 'GET' && /^\/[^/?]+\/[^?]+/.test(req.url ?? '') && !/[?&]uploadId=/.test(req.url ?? '');
    const kind = !fault ? 'none' : isGet ? ['503', 'reset', 'reset-body'][Math.floor(Math.random() * 3)] : ['503', '500', 'reset'][Math.floor(Math.random() * 3)];
    if (fault) counts.faults++;
    if (kind === 'reset') return req.socket.resetAndDestroy();
    if (kind === '503' || kind === '500') {
      req.resume();
      req.once('end', () => {
        const code = kind === '503' ? 'SlowDown' : 'InternalError';
        const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>injected</Message><RequestId>soak</RequestId></Error>`;
        res.writeHead(Number(kind), { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }
    const out = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      if (kind !== 'reset-body') return up.pipe(res);
      let sent = 0;
      const half = Math.floor(Number(up.headers['content-length'] ?? 0) / 2);
      up.on('data', (chunk) => {
        if (sent >= half) return;
        const part = chunk.subarray(0, half - sent);
        sent += part.length;
        if (sent >= half) {
          res.write(part, () =>
            setTimeout(() => {
              up.destroy();
              req.socket.resetAndDestroy();
            }, 1),
          );
        } else res.write(part);
      });
      up.on('end', () => sent < half && res.end());
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  cleanups.add(
    () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { endpoint: `http://127.0.0.1:${server.address().port}`, counts };
}

async function startBridge(endpoint, s3, bucket, file) {
  writeBridgeConfig(file, {
    store: { ...s3, endpoint },
    passivePorts: [settings.pasvMin, settings.pasvMin + settings.clients * 2 + 20],
    ftp: { maxConnectionsPerIp: 0, maxConnections: 0, dataConnectionTimeoutSeconds: 10, loginFailureDelayMs: 0 },
    s3: { partSizeMiB: 5, requestTimeoutSeconds: 10 },
    http: { host: '127.0.0.1', port: 0 },
    log: { level: 'warn' },
    accounts: [{ username: 'soak', passwordHash: hashPassword('pw'), bucket }],
  });
  const bridge = await startBridgeProcess(cleanups, file, { env: { FTP_S3_BRIDGE__LOG__LEVEL: 'info' } });
  return { ftp: bridge.port, http: bridge.httpPort, pid: bridge.pid, child: bridge.child };
}

const sha = (b) => createHash('sha256').update(b).digest('hex');
/** After the clients stop: time for their connections to close before ports and descriptors are counted. */
const SETTLE_MS = 8000;
const { SPARE_IDLE_MS } = await import(join(dirname(dirname(BIN)), 'storage/memory-budget.js'));
const rssMiB = (pid) => {
  try {
    return procStatus(pid).rssKiB / 1024;
  } catch {
    return NaN; // the process is gone
  }
};
const fds = (pid) => {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
};
async function passivePortsInUse(bridge) {
  if (!bridge.http) return NaN;
  const text = await new Promise((res, rej) =>
    get(`http://127.0.0.1:${bridge.http}/metrics`, (r) => {
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (c) => (body += c));
      r.on('end', () => res(body));
    }).on('error', rej),
  ).catch(() => '');
  return Number(/ftp_passive_ports\{state="in_use"\} (\d+)/.exec(text)?.[1] ?? NaN);
}
const pick = (arr) => arr[Math.floor(Math.random() * arr.length)];

/** One client: its own directory, its own model of what S3 must hold there. */
async function runClient(n, bridge, until, stats, model) {
  const dir = `c${n}`;
  const own = [...model.keys()].filter((k) => k.startsWith(dir + '/'));
  let seq = 0;
  const connectClient = async () => {
    const c = new FtpClient(30_000);
    await c.access({ host: '127.0.0.1', port: bridge.ftp, user: 'soak', password: 'pw' });
    await c.ensureDir(`/${dir}`);
    return c;
  };
  let c;
  while (Date.now() < until) {
    try {
      c ??= await connectClient();
      const r = Math.random() * 100;
      if (r < 35 || own.length < 3) {
        const key = `${dir}/f${seq++ % 40}.bin`;
        const body = randomBytes(pick([1, 30, 300, 1200, 6000]) * KiB);
        const before = model.get(key);
        try {
          await c.uploadFrom(Readable.from([body]), `/${key}`);
          model.set(key, { hash: sha(body) });
          if (!own.includes(key)) own.push(key);
          stats.stor226++;
        } catch {
          // not 226: the old content (or nothing) must still be there
          if (before) model.set(key, before);
          stats.storFailed++;
          c.close();
          c = undefined;
        }
      } else if (r < 40) {
        // a client that disconnects in the middle of an upload
        const key = `${dir}/cut${seq++ % 10}.bin`;
        await disconnectMidStor(bridge, key);
        stats.disconnects++;
      } else if (r < 60 && own.length) {
        const key = pick(own);
        const expected = model.get(key);
        const chunks = [];
        try {
          await c.downloadTo(new Writable({ write: (chunk, _e, cb) => (chunks.push(chunk), cb()) }), `/${key}`);
          if (sha(Buffer.concat(chunks)) !== expected.hash) stats.retrMismatch.push(key);
          stats.retr226++;
        } catch {
          stats.retrFailed++;
          c.close();
          c = undefined;
        }
      } else if (r < 75) {
        try {
          const list = await c.list(`/${dir}`);
          stats.list226++;
          if (list.length > 60) stats.listOdd++;
        } catch {
          stats.listFailed++;
          c.close();
          c = undefined;
        }
      } else if (r < 88 && own.length) {
        const from = pick(own);
        const to = `${dir}/r${seq++ % 20}.bin`;
        if (from === to) continue;
        try {
          await c.rename(`/${from}`, `/${to}`);
          model.set(to, model.get(from));
          model.delete(from);
          own.splice(own.indexOf(from), 1);
          if (!own.includes(to)) own.push(to);
          stats.rename250++;
        } catch (err) {
          // 451 "both names": copied, not removed; any other error: unchanged
          if (/both names/.test(String(err?.message))) {
            model.set(to, model.get(from));
            if (!own.includes(to)) own.push(to);
          } else if (/^4|^5/.test(String(err?.code ?? ''))) {
            // rename refused before any copy
          } else {
            model.set(from, { ...model.get(from), uncertain: true });
            model.set(to, { hash: model.get(from).hash, uncertain: true });
            if (!own.includes(to)) own.push(to);
          }
          stats.renameFailed++;
          c?.close();
          c = undefined;
        }
      } else if (own.length) {
        const key = pick(own);
        try {
          await c.remove(`/${key}`);
          model.delete(key);
          own.splice(own.indexOf(key), 1);
          stats.dele250++;
        } catch {
          model.set(key, { ...model.get(key), uncertain: true });
          stats.deleFailed++;
          c?.close();
          c = undefined;
        }
      }
    } catch {
      stats.sessionErrors++;
      c?.close();
      c = undefined;
      await sleep(100);
    }
  }
  c?.close();
}

/** STOR over a raw connection, then both connections dropped half-way: nothing may become visible. */
async function disconnectMidStor(bridge, key) {
  const control = connect(bridge.ftp, '127.0.0.1');
  control.on('error', () => undefined);
  let buffer = '';
  const waitFor = (code) =>
    new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error('timeout')), 20_000);
      const check = () => {
        const m = new RegExp(`^${code}[ -].*$`, 'm').exec(buffer);
        if (m) {
          clearTimeout(timer);
          buffer = buffer.slice(m.index + m[0].length);
          control.off('data', onData);
          res(m[0]);
        } else if (/^[45]\d\d /m.test(buffer)) {
          clearTimeout(timer);
          control.off('data', onData);
          rej(new Error(buffer));
        }
      };
      const onData = (c) => {
        buffer += c;
        check();
      };
      control.on('data', onData);
      check();
    });
  try {
    control.setEncoding('utf8');
    await waitFor(220);
    control.write('USER soak\r\n');
    await waitFor(331);
    control.write('PASS pw\r\n');
    await waitFor(230);
    control.write('TYPE I\r\n');
    await waitFor(200);
    control.write('PASV\r\n');
    const pasv = await waitFor(227);
    const m = /\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(pasv);
    const data = connect(Number(m[5]) * 256 + Number(m[6]), '127.0.0.1');
    data.on('error', () => undefined);
    await new Promise((r) => data.once('connect', r));
    control.write(`STOR /${key}\r\n`);
    await waitFor(150);
    data.write(randomBytes(pick([100, 3000, 7000]) * KiB));
    await sleep(Math.random() * 300);
    if (Math.random() < 0.5) {
      data.resetAndDestroy();
    } else {
      data.end();
      control.destroy();
    }
    control.destroy();
  } catch {
    control.destroy();
  }
}

async function main() {
  log(`settings: ${JSON.stringify(settings)}`);
  const s3 = await startS3();
  const proxy = await startFaultProxy(s3.endpoint);
  const dir = tempDir(cleanups, 'ftp-s3-bridge-soak-');
  const bucket = `soak-${randomBytes(4).toString('hex')}`;
  const admin = s3Client(s3);
  cleanups.add(async () => admin.destroy());
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  const configFile = join(dir, 'bridge.yaml');
  const bridge = await startBridge(proxy.endpoint, s3, bucket, configFile);

  const stats = {
    stor226: 0, storFailed: 0, disconnects: 0, retr226: 0, retrFailed: 0, retrMismatch: [], list226: 0, listFailed: 0, listOdd: 0,
    rename250: 0, renameFailed: 0, dele250: 0, deleFailed: 0, sessionErrors: 0,
  };
  const model = new Map();
  const started = Date.now();
  const until = started + settings.seconds * 1000;
  const warmup = Math.min(60_000, settings.seconds * 250); // a quarter of the run, at most a minute
  const clients = Promise.all(Array.from({ length: settings.clients }, (_, n) => sleep(n * 20).then(() => runClient(n, bridge, until, stats, model))));
  const samples = [];
  const sampler = setInterval(() => samples.push({ t: Date.now(), rss: rssMiB(bridge.pid) }), 1000);
  await sleep(warmup);
  const atStart = { rssMiB: rssMiB(bridge.pid), fds: fds(bridge.pid), passivePortsInUse: await passivePortsInUse(bridge) };
  // The first half's RSS peak is reported beside the reference: a leak keeps growing past it.
  const half = started + warmup + (until - started - warmup) / 2;
  log(`warm-up done; running until ${new Date(until).toISOString()}`);
  await clients;
  log('clients done; letting connections settle');
  await sleep(SETTLE_MS);
  clearInterval(sampler);
  const firstHalf = samples.filter((x) => x.t >= started + warmup && x.t <= half).map((x) => x.rss);
  const rssSeries = { atWarmup: atStart.rssMiB, firstHalfMax: Math.max(atStart.rssMiB, ...firstHalf), max: Math.max(...samples.map((x) => x.rss)) };
  const atEnd = { fds: fds(bridge.pid), passivePortsInUse: await passivePortsInUse(bridge) };
  // RSS once idle: the bridge keeps returned part buffers as spares for reuse until no upload has
  // asked for one for 5 s (SPARE_IDLE_MS, src/storage/memory-budget.ts); the settle time covers it.
  await sleep(Math.max(0, SPARE_IDLE_MS + 1000 - SETTLE_MS));
  atEnd.rssMiB = rssMiB(bridge.pid);

  // Invariants
  const violations = [];
  if (bridge.child.exitCode !== null || bridge.child.signalCode !== null) violations.push(`the bridge died (exit ${bridge.child.exitCode}, signal ${bridge.child.signalCode})`);
  const listed = [];
  let token;
  do {
    const page = await admin.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    listed.push(...(page.Contents ?? []).map((o) => o.Key));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const present = new Set(listed.filter((k) => !k.endsWith('/')));
  for (const [key, want] of model) {
    if (!present.has(key)) {
      if (!want.uncertain) violations.push(`missing: ${key}`);
      continue;
    }
    const got = await admin.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const hash = sha(Buffer.from(await got.Body.transformToByteArray()));
    if (hash !== want.hash) violations.push(`content differs: ${key}`);
  }
  for (const key of present) if (!model.has(key)) violations.push(`unexpected object (a STOR without 226?): ${key}`);
  for (const key of stats.retrMismatch) violations.push(`RETR 226 with wrong bytes: ${key}`);
  let sweep = 'not checked: s3rver does not list multipart uploads';
  if (s3.listsMultipartUploads) {
    const open = async () => ((await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).length;
    const before = await open();
    // the operator's sweep talks to S3 directly, not through the fault proxy
    const res = spawnSync(process.execPath, [BIN, 'sweep-uploads', '--config', configFile, '--older-than', '0s'], {
      encoding: 'utf8',
      env: { ...process.env, FTP_S3_BRIDGE__S3__ENDPOINT: s3.endpoint },
    });
    const after = await open();
    sweep = `${after} (before the sweep: ${before}; sweep-uploads: ${res.stdout.trim() || res.stderr.trim().slice(0, 300)})`;
    if (res.status !== 0) violations.push(`sweep-uploads failed: ${res.stderr.trim().slice(0, 300)}`);
    if (after !== 0) violations.push(`${after} multipart uploads still open after the sweep`);
  }
  const within = (a, b, slack) => b <= a * 1.1 + slack;
  if (!within(atStart.rssMiB, atEnd.rssMiB, 0)) violations.push(`RSS ${atEnd.rssMiB.toFixed(1)} MiB > start ${atStart.rssMiB.toFixed(1)} MiB + 10%`);
  if (!within(atStart.fds, atEnd.fds, 2)) violations.push(`open fds ${atEnd.fds} > start ${atStart.fds} + 10%`);
  if (atEnd.passivePortsInUse > 0 && !within(atStart.passivePortsInUse, atEnd.passivePortsInUse, 0)) violations.push(`passive ports in use ${atEnd.passivePortsInUse} at the end`);

  const { retrMismatch, ...counts } = stats;
  const result = {
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version, s3: `${settings.backend} (loopback) behind a fault proxy` },
    settings,
    seconds: (Date.now() - started) / 1000,
    operations: { ...counts, retrMismatch: retrMismatch.length },
    s3Requests: proxy.counts.requests,
    s3FaultsInjected: proxy.counts.faults,
    objectsChecked: model.size,
    atStart,
    atEnd,
    rss: rssSeries,
    sweep,
    violations,
  };
  process.stdout.write(
    [
      `soak: ${settings.clients} clients, ${result.seconds.toFixed(0)} s, ${proxy.counts.faults} of ${proxy.counts.requests} S3 requests faulted (${((100 * proxy.counts.faults) / Math.max(1, proxy.counts.requests)).toFixed(1)}%)`,
      `operations: STOR 226 ${stats.stor226} / failed ${stats.storFailed}, disconnects mid-STOR ${stats.disconnects}, RETR 226 ${stats.retr226} / failed ${stats.retrFailed}, LIST ${stats.list226} / failed ${stats.listFailed}, RNTO 250 ${stats.rename250} / failed ${stats.renameFailed}, DELE 250 ${stats.dele250} / failed ${stats.deleFailed}`,
      `objects checked byte-exact: ${model.size}; unexpected or wrong: ${violations.filter((v) => /unexpected|differs|missing|RETR/.test(v)).length}`,
      `open multipart uploads after sweep: ${sweep}`,
      `start (after warm-up, under load): RSS ${atStart.rssMiB.toFixed(1)} MiB, fds ${atStart.fds}, passive ports in use ${atStart.passivePortsInUse}`,
      `end (idle):                        RSS ${atEnd.rssMiB.toFixed(1)} MiB, fds ${atEnd.fds}, passive ports in use ${atEnd.passivePortsInUse}`,
      `RSS: start ${atStart.rssMiB.toFixed(1)} MiB (the reference), first-half peak ${rssSeries.firstHalfMax.toFixed(1)} MiB, run peak ${rssSeries.max.toFixed(1)} MiB, end ${atEnd.rssMiB.toFixed(1)} MiB (limit ${(atStart.rssMiB * 1.1).toFixed(1)})`,
      violations.length ? `VIOLATIONS:\n  ${violations.slice(0, 50).join('\n  ')}` : 'all invariants hold',
      JSON.stringify(result),
      '',
    ].join('\n'),
  );
  return violations.length ? 1 : 0;
}

runMain(main, cleanups, log);
