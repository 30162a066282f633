// bench/lib.mjs - what the bench scripts share: settings from the environment, cleanup on exit and
// on signals, temporary directories, a loopback S3 (s3rver, or Swift + s3api), S3 clients, and the
// built bridge as a separate process. Loopback only.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { Agent as HttpAgent } from 'node:http';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The built CLI (`npm run build`). */
export const BIN = join(ROOT, 'dist/cli/main.js');

// ---- settings --------------------------------------------------------------------------------------
function envNumber(name, def, min, integer) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!(integer ? Number.isInteger(n) : Number.isFinite(n)) || n < min) throw new Error(`${name} must be ${integer ? 'an integer' : 'a number'} >= ${min} (got "${raw}")`);
  return n;
}

/** An integer setting from the environment: `def` when unset or empty; throws below `min`. */
export const intEnv = (name, def, min) => envNumber(name, def, min, true);

/** A number setting from the environment: `def` when unset or empty; throws below `min`. */
export const numEnv = (name, def, min) => envNumber(name, def, min, false);

// ---- cleanup -----------------------------------------------------------------------------------------
/** Cleanup steps, run last-in first-out once (a second `run()` waits for the first). */
export class Cleanups {
  /** @param {{ onError?: (name: string, err: unknown) => void }} options what to do with a failed step (default: nothing) */
  constructor({ onError } = {}) {
    this.steps = [];
    this.onError = onError;
    this.running = undefined;
  }

  add(fn, name = 'cleanup') {
    this.steps.push({ name, fn });
  }

  run() {
    this.running ??= (async () => {
      while (this.steps.length) {
        const { name, fn } = this.steps.pop();
        try {
          await fn();
        } catch (err) {
          this.onError?.(name, err);
        }
      }
    })();
    return this.running;
  }

  /** On each signal: `before(signal)`, run the cleanups, exit with the signal's code. */
  exitOnSignals(codes = [['SIGINT', 130], ['SIGTERM', 130]], before = () => undefined) {
    for (const [signal, code] of codes) {
      process.once(signal, () => {
        before(signal);
        void this.run().finally(() => process.exit(code));
      });
    }
  }

  /** A hard time limit: after `ms`, logs `message`, cleans up and exits 1 (does not keep the process alive). */
  exitAfter(ms, message, log) {
    const timer = setTimeout(() => {
      log(message);
      void this.run().then(() => process.exit(1));
    }, ms);
    timer.unref();
    return timer;
  }
}

/** Runs `main`, cleans up, and exits with the code `main` resolves (1 when it throws, after logging the error). */
export function runMain(main, cleanups, log) {
  main()
    .then(async (code) => {
      await cleanups.run();
      process.exit(code);
    })
    .catch(async (err) => {
      log(`error: ${err.stack ?? err}`);
      await cleanups.run();
      process.exit(1);
    });
}

/** A new temporary directory, removed by `cleanups`. */
export function tempDir(cleanups, prefix) {
  const dir = mkdtempSync(join(os.tmpdir(), prefix));
  cleanups.add(() => rmSync(dir, { recursive: true, force: true }), `temp dir ${dir}`);
  return dir;
}

// ---- processes -----------------------------------------------------------------------------------------
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const waitExit = (child) =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', r));

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child is gone. */
export async function stopChild(child, graceMs = 10_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const exited = await Promise.race([waitExit(child).then(() => true), sleep(graceMs).then(() => false)]);
  if (!exited) {
    child.kill('SIGKILL');
    await waitExit(child);
  }
}

/** Runs `run()` with a deadline; on expiry calls `abort()` and rejects. */
export async function withTimeout(label, ms, run, abort) {
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

/** Keeps the last lines a stream carries, for error messages. */
export function tailOf(stream, keep = 60) {
  const lines = [];
  createInterface({ input: stream }).on('line', (l) => {
    lines.push(l);
    if (lines.length > keep) lines.shift();
  });
  return () => lines.join('\n');
}

/** `KEY=value` lines (the output of infra/swift-s3/start-swift-s3.sh) as an object. */
export function parseKeyValues(text) {
  return Object.fromEntries(
    text
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

// ---- S3 ---------------------------------------------------------------------------------------------------
/**
 * s3rver (test/support/s3rver-main.mjs) in a temporary directory, stopped and removed by `cleanups`.
 * Resolves `{ name, endpoint, region, accessKeyId, secretAccessKey, pid, pids() }`.
 */
export async function startS3rver(cleanups, prefix = 'ftp-s3-bridge-bench-s3rver-') {
  const dir = tempDir(cleanups, prefix);
  const child = spawn(process.execPath, ['--openssl-legacy-provider', join(ROOT, 'test/support/s3rver-main.mjs'), dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanups.add(() => stopChild(child), 's3rver');
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
    pid: child.pid,
    pids: () => [child.pid],
  };
}

/**
 * Swift + s3api via infra/swift-s3/start-swift-s3.sh in `base` (started unless it runs there
 * already). `env` adds to the script's environment (its SWIFT_S3_*_PORT variables). Afterwards it
 * is stopped and `base` purged, unless `keep` or it was running before.
 * Resolves like {@link startS3rver}; `pids()` lists every process whose command line names `base`.
 */
export async function startSwift(cleanups, { base, env = {}, keep = false, log = () => undefined }) {
  const stop = async () => {
    const res = spawnSync('bash', [join(ROOT, 'infra/swift-s3/stop-swift-s3.sh'), base, '--purge'], { encoding: 'utf8', timeout: 180_000 });
    if (res.status !== 0) throw new Error(`stop-swift-s3.sh exited ${res.status}: ${res.stderr}`);
  };
  const child = spawn('bash', [join(ROOT, 'infra/swift-s3/start-swift-s3.sh'), base], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  // Registered before it is up: an interrupted start still gets stopped (the script also cleans up
  // after its own failures).
  let preExisting = false;
  cleanups.add(async () => {
    await stopChild(child);
    if (preExisting || keep) {
      log(`leaving Swift in ${base} running (${preExisting ? 'it was running before' : 'asked to keep it'})`);
      return;
    }
    if (existsSync(join(base, 'run/pids')) || existsSync(join(base, 'run/mounted')) || existsSync(base)) await stop();
  }, 'swift');
  const code = await withTimeout('starting Swift', 15 * 60_000, () => new Promise((r) => child.once('exit', (c) => r(c))));
  if (code !== 0) throw new Error(`start-swift-s3.sh exited ${code}:\n${stderr.split('\n').slice(-30).join('\n')}`);
  preExisting = /already running/.test(stderr);
  const vars = parseKeyValues(stdout);
  const pids = () => {
    const found = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (readFileSync(`/proc/${entry}/cmdline`, 'latin1').includes(base)) found.push(Number(entry));
      } catch {
        // gone
      }
    }
    return found;
  };
  return {
    name: 'swift',
    endpoint: vars.S3_ENDPOINT,
    region: vars.S3_REGION || 'us-east-1',
    accessKeyId: vars.S3_ACCESS_KEY_ID,
    secretAccessKey: vars.S3_SECRET_ACCESS_KEY,
    pids,
  };
}

/**
 * An S3 client for `s3` ({@link startS3rver}), path-style, checksums only where required; with
 * `maxSockets`, a keep-alive agent of that many sockets. `options` go to S3Client as they are.
 */
export function s3Client(s3, { maxSockets, ...options } = {}) {
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region ?? 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...(maxSockets ? { requestHandler: new NodeHttpHandler({ httpAgent: new HttpAgent({ keepAlive: true, maxSockets }) }) } : {}),
    ...options,
  });
}

// ---- the bridge --------------------------------------------------------------------------------------------
/** A password hash made by the bridge's own `hash-password` (bcrypt, or `algorithm`). */
export function hashPassword(password, { bin = BIN, algorithm } = {}) {
  const args = [bin, 'hash-password', ...(algorithm ? ['--algorithm', algorithm] : [])];
  const res = spawnSync(process.execPath, args, { input: password + '\n', encoding: 'utf8', timeout: 60_000 });
  const hash = res.stdout?.trim();
  if (res.status !== 0 || !hash) throw new Error(`hash-password failed (${res.status}): ${res.stderr}`);
  return hash;
}

/**
 * Writes a bridge config for loopback, readable by its owner only, and returns `file`: FTP on
 * 127.0.0.1 with a free port and the passive ports `passivePorts` ([min, max]) announced as
 * 127.0.0.1; path-style S3 at `store` ({@link startS3rver}) with its credentials. `ftp` and `s3`
 * add to (or replace keys of) those sections; every other key is a section of its own. The file is
 * JSON, which the YAML loader reads as is.
 */
export function writeBridgeConfig(file, { store, passivePorts: [portMin, portMax], ftp = {}, s3 = {}, ...sections }) {
  const config = {
    ftp: { host: '127.0.0.1', port: 0, passive: { address: '127.0.0.1', portMin, portMax }, ...ftp },
    s3: { endpoint: store.endpoint, forcePathStyle: true, credentials: { accessKeyId: store.accessKeyId, secretAccessKey: store.secretAccessKey }, ...s3 },
    ...sections,
  };
  writeFileSync(file, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  return file;
}

/**
 * Starts the bridge (its launcher, or `node [nodeArgs] <bin> --config <file>`), stopped by `cleanups`; resolves once
 * it logs "FTP listening": `{ child, pid, port, httpPort, tail() }` (httpPort: undefined without the
 * HTTP server). `onLine` sees every line it writes to stdout (its JSON log). stderr: 'inherit', or
 * 'pipe' to keep its last lines for `tail()` and error messages.
 */
export async function startBridge(cleanups, file, { bin = BIN, nodeArgs = [], env = {}, stderr = 'inherit', timeoutMs = 30_000, onLine } = {}) {
  // What production runs: the build's launcher (bin/ftp-s3-bridge: malloc and V8 settings), with
  // this Node first on PATH and any extra node flags through NODE_OPTIONS; `node <bin>` without it.
  const launcher = join(dirname(dirname(dirname(bin))), 'bin', 'ftp-s3-bridge');
  const [command, args, launchEnv] = existsSync(launcher)
    ? [launcher, ['--config', file], { PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, ...(nodeArgs.length ? { NODE_OPTIONS: nodeArgs.join(' ') } : {}) }]
    : [process.execPath, [...nodeArgs, bin, '--config', file], {}];
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', stderr], env: { ...process.env, ...launchEnv, ...env } });
  cleanups.add(() => stopChild(child), 'bridge');
  const lines = [];
  const keep = (line) => {
    if (lines.push(line) > 60) lines.shift();
  };
  const tail = () => lines.join('\n');
  if (stderr === 'pipe') createInterface({ input: child.stderr }).on('line', keep);
  let httpPort;
  const port = await withTimeout('starting the bridge', timeoutMs, () =>
    new Promise((resolvePort, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        keep(line);
        onLine?.(line);
        if (!line.includes('listening"')) return;
        let entry;
        try {
          entry = JSON.parse(line);
        } catch {
          return; // not a log line
        }
        if (entry.msg === 'HTTP (metrics, health) listening') httpPort = entry.port;
        if (entry.msg === 'FTP listening' && Number.isInteger(entry.port)) resolvePort(entry.port);
      });
      child.once('exit', (code, signal) => reject(new Error(`bridge exited (${code ?? signal}):\n${tail()}`)));
    }),
  );
  return { child, pid: child.pid, port, httpPort, tail };
}

// ---- process CPU --------------------------------------------------------------------------------------------
export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export function procStatus(pid) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM') };
}

/** utime and stime of a process, in seconds (0 if it is gone). */
export function procCpu(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / CLK_TCK, sys: Number(fields[12]) / CLK_TCK }; // fields 14 and 15 of stat(5)
  } catch {
    return { user: 0, sys: 0 };
  }
}

// ---- Redis --------------------------------------------------------------------------------------------------
/** Sends PING to 127.0.0.1:`port`; resolves true on +PONG within `timeoutMs`. */
function redisPing(port, timeoutMs = 1_000) {
  return new Promise((resolvePing) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok) => {
      clearTimeout(timer);
      socket.destroy();
      resolvePing(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    let reply = '';
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk;
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.on('error', () => done(false));
  });
}

/**
 * redis-server (Debian's package, or `REDIS_SERVER`) on 127.0.0.1:`port`, without persistence, in
 * `dir`; stopped by `cleanups`. Resolves `{ url, port, kill(), start(), pid() }`: `kill` SIGKILLs it
 * (an outage), `start` starts it again on the same port, empty.
 */
export async function startRedisServer(cleanups, { port, dir }) {
  mkdirSync(dir, { recursive: true });
  let child;
  let output = '';
  const start = async () => {
    const proc = spawn(process.env.REDIS_SERVER ?? 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    const keep = (c) => (output = (output + c).slice(-4000));
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    proc.on('error', keep);
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && proc.exitCode === null) {
      if (await redisPing(port)) return;
      await sleep(50);
    }
    await stopChild(proc, 0);
    throw new Error(`redis-server did not start on 127.0.0.1:${port}: ${output}`);
  };
  const kill = async () => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await waitExit(child);
  };
  cleanups.add(kill, 'redis-server');
  await start();
  return { url: `redis://127.0.0.1:${port}`, port, kill, start, pid: () => child.pid };
}
