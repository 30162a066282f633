import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { requireProgram } from './programs.js';

/** Debian's clamd (package clamav-daemon); CLAMD overrides. */
const CLAMD = process.env.CLAMD ?? '/usr/sbin/clamd';

/** The EICAR test file, put together here so that no scanner flags this source file. */
export const EICAR = Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$' + 'EICAR-STANDARD-ANTIVIRUS-' + 'TEST-FILE!$H+H*');
/** A byte pattern our own signature database flags anywhere in a file. */
export const TEST_PATTERN = Buffer.from('FTP-S3-BRIDGE-' + 'SCAN-TEST-PATTERN');
/** clamd names signatures from unsigned databases with this suffix. */
export const EICAR_SIGNATURE = 'Eicar-Test-Signature.UNOFFICIAL';
export const PATTERN_SIGNATURE = 'Bridge.Test.Pattern.UNOFFICIAL';

export interface TestClamd {
  /** clamd's Unix socket. */
  socket: string;
  /** Stops clamd (the socket then refuses connections); `start` brings it back on the same socket. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Freezes clamd (SIGSTOP): connections stay open, nothing is read or answered, as a hung scanner. */
  pause(): void;
  /** Lets a paused clamd run on (SIGCONT). */
  resume(): void;
  /** Stops clamd and removes its directory. */
  close(): Promise<void>;
}

/**
 * A real clamd (Debian's clamav-daemon) in a temp dir: its own socket, a signature database written
 * here (ClamAV's update servers are out of reach; an .ndb with EICAR and TEST_PATTERN, so it starts
 * in well under a second), StreamMaxLength raised to 2 GB so that scan.maxMiB, not clamd, is the limit.
 */
export async function startClamd(options: { streamMaxMiB?: number } = {}): Promise<TestClamd> {
  const dir = await mkdtemp(join(tmpdir(), 'clamd-'));
  const db = join(dir, 'db');
  const spool = join(dir, 'tmp');
  await mkdir(db);
  await mkdir(spool);
  await writeFile(
    join(db, 'bridge-test.ndb'),
    `Eicar-Test-Signature:0:0:${EICAR.toString('hex')}\nBridge.Test.Pattern:0:*:${TEST_PATTERN.toString('hex')}\n`,
  );
  const socket = join(dir, 'clamd.sock');
  const conf = join(dir, 'clamd.conf');
  const maxMiB = options.streamMaxMiB ?? 2000;
  await writeFile(
    conf,
    [
      `LocalSocket ${socket}`,
      `DatabaseDirectory ${db}`,
      `TemporaryDirectory ${spool}`,
      'Foreground yes',
      `StreamMaxLength ${maxMiB}M`,
      `MaxFileSize ${maxMiB}M`,
      `MaxScanSize ${maxMiB * 2}M`,
      'SelfCheck 0',
      `LogFile ${join(dir, 'clamd.log')}`,
      '',
    ].join('\n'),
  );
  let child: ChildProcess | undefined;
  const start = async () => {
    requireProgram(CLAMD, 'clamav-daemon');
    const proc = spawn(CLAMD, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const deadline = Date.now() + 60_000;
    while (!(await ping(socket))) {
      if (proc.exitCode !== null || Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`clamd did not start (exit ${proc.exitCode}): ${stderr.slice(0, 2000)}`);
      }
      await sleep(50);
    }
  };
  const stop = async () => {
    const proc = child;
    proc?.kill('SIGCONT');
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000).then(() => proc.kill('SIGKILL'))]);
    await exited;
    await rm(socket, { force: true });
  };
  await start();
  return {
    socket,
    stop,
    start,
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Whether clamd answers PING on `socket`. */
function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(socket);
    let reply = '';
    s.setTimeout(2000, () => s.destroy());
    s.on('connect', () => s.write('zPING\0'));
    s.on('data', (d: Buffer) => {
      reply += d.toString('latin1');
      if (reply.includes('\0')) s.end();
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve(reply.startsWith('PONG')));
  });
}
