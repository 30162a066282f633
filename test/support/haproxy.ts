import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireProgram } from './programs.js';

/** Debian's HAProxy (2.6), as the scale-out script runs it; HAPROXY overrides. */
export const HAPROXY = process.env.HAPROXY ?? '/usr/sbin/haproxy';

/** A free TCP port on `host` (listened on, then released: a small window in which another may take it). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * One HAProxy process in TCP mode on loopback, with the sections given (frontends, backends,
 * listens) after a fixed global/defaults block. `start` resolves once every bind is in place (a
 * readiness frontend it adds accepts connections) and rejects, with HAProxy's output, when it
 * exits or is not up within `startTimeoutMs`. `stop` ends it (SIGTERM, then SIGKILL after 5 s).
 */
export class Haproxy {
  private output = '';
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
  ) {
    child.stdout?.on('data', (c: Buffer) => (this.output = (this.output + c.toString()).slice(-8000)));
    child.stderr?.on('data', (c: Buffer) => (this.output = (this.output + c.toString()).slice(-8000)));
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  static async start(sections: string, startTimeoutMs = 20_000): Promise<Haproxy> {
    const dir = mkdtempSync(join(tmpdir(), 'haproxy-'));
    const readyPort = await freePort();
    const config = [
      'global',
      '  maxconn 500',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 60s',
      '  timeout server 60s',
      'frontend ready',
      `  bind 127.0.0.1:${readyPort}`,
      '  tcp-request connection reject',
      sections.trim(),
      '',
    ].join('\n');
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(file, config);
    requireProgram(HAPROXY, 'haproxy');
    const child = spawn(HAPROXY, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const haproxy = new Haproxy(child, dir);
    let gone = false;
    void haproxy.exited.then(() => (gone = true));
    const deadline = Date.now() + startTimeoutMs;
    while (!(await accepts(readyPort))) {
      if (gone || Date.now() > deadline) {
        await haproxy.stop();
        throw new Error(`haproxy did not start (${gone ? 'exited' : 'timeout'}): ${haproxy.output}\nconfig:\n${config}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return haproxy;
  }

  /** HAProxy's output so far (its last 8000 characters). */
  get log(): string {
    return this.output;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const killer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(killer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
