import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { requireProgram } from './programs.js';

/** A free port on loopback (redis-server cannot be told to pick one and report it). */
function freePort(): Promise<number> {
  return new Promise((done, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

/** Sends PING, resolves true on +PONG within `timeoutMs`. */
function ping(port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    let reply = '';
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.on('error', () => done(false));
  });
}

/**
 * A real redis-server (Debian's `redis-server` package) on loopback, without persistence, in a
 * temp dir. `kill` and `start` again on the same port simulate an outage of Redis.
 */
export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** Stops the server at once (SIGKILL), as a crash or a network partition would. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: nothing was persisted). */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  stop(): Promise<void>;
  /**
   * A client for the test to look at (or change) what the bridges wrote; one retry per command,
   * so it reconnects after `start()`; errors while the server is down are the test's to expect.
   * The caller disconnects it.
   */
  client(): Redis;
}

const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server';

export async function startRedis(): Promise<TestRedis> {
  requireProgram(REDIS_SERVER, 'redis-server');
  const dir = mkdtempSync(join(tmpdir(), 'bridge-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = '';

  const start = async () => {
    const proc = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    exited = new Promise<void>((resolve) => (proc.exitCode !== null ? resolve() : proc.once('exit', () => resolve())));
    const keep = (c: Buffer) => (output = (output + c.toString()).slice(-4000));
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && proc.exitCode === null) {
      if (await ping(port)) return;
      await sleep(50);
    }
    proc.kill('SIGKILL');
    await exited;
    throw new Error(`redis-server did not start on 127.0.0.1:${port}: ${output}`);
  };
  const kill = async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    start,
    client() {
      const client = new Redis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
      client.on('error', () => undefined);
      return client;
    },
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
