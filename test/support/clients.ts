import { execFile, spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { FtpReplyParser, type FtpReply } from '../../src/ftp/reply-parser.js';
import { expect } from 'vitest';

export interface ProcessResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs a real client program, with a hard time limit; stdin optional. */
export function runProgram(cmd: string, args: string[], options: { input?: Buffer | string; timeoutMs?: number } = {}): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
    // A program that fails early (an upload refused before its end) exits without reading all of
    // its input: EPIPE on its stdin is expected, not an error of the test.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

export const curl = (args: string[], input?: Buffer | string) => runProgram('curl', ['-sS', '--max-time', '60', ...args], { input });

/** Runs a python3 script (ftplib) with arguments; the script prints its results on stdout. */
export const python = (script: string, args: string[]) => runProgram('python3', ['-c', script, ...args]);

export const hasProgram = (name: string): Promise<boolean> =>
  new Promise((resolve) => execFile('sh', ['-c', `command -v ${name}`], (err) => resolve(!err)));

export type { FtpReply };

/** The replies of one control connection, parsed as its data arrives and handed out in order. */
export class FtpReplyQueue {
  private readonly parser = new FtpReplyParser();
  private waiters: ((reply: FtpReply) => void)[] = [];
  private replies: FtpReply[] = [];

  /** Feeds data of the control connection (see {@link FtpReplyParser.push}). */
  push(chunk: Buffer | string): void {
    for (const reply of this.parser.push(chunk)) {
      const waiter = this.waiters.shift();
      if (waiter) waiter(reply);
      else this.replies.push(reply);
    }
  }

  /** The next reply, waiting up to `timeoutMs`. */
  next(timeoutMs: number): Promise<FtpReply> {
    const queued = this.replies.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no FTP reply within ' + timeoutMs + ' ms')), timeoutMs);
      this.waiters.push((r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
  }
}

/**
 * A bare control connection for replaying exact command sequences (device quirks, split commands,
 * connections dropped at precise moments). Replies are parsed per RFC 959 §4.2 (multi-line aware).
 */
export class RawFtp {
  private readonly replies = new FtpReplyQueue();

  private constructor(
    readonly socket: Socket,
    /** The address the client binds its connections to (data connections too); the system's choice when unset. */
    private readonly localAddress?: string,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.replies.push(chunk));
  }

  /** `preamble`: bytes sent before the greeting is awaited (a PROXY protocol header, as a proxy sends it). */
  static async connect(port: number, host = '127.0.0.1', localAddress?: string, preamble?: Buffer | string): Promise<RawFtp> {
    const socket = connect({ port, host, localAddress });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    if (preamble !== undefined) socket.write(preamble);
    const ftp = new RawFtp(socket, localAddress);
    await ftp.reply();
    return ftp;
  }

  /** The next reply, waiting up to `timeoutMs`. */
  reply(timeoutMs = 20_000): Promise<FtpReply> {
    return this.replies.next(timeoutMs);
  }

  send(line: string): void {
    this.socket.write(line + '\r\n');
  }

  async command(line: string): Promise<FtpReply> {
    this.send(line);
    return this.reply();
  }

  async login(user: string, password: string): Promise<void> {
    const u = await this.command(`USER ${user}`);
    if (u.code !== 331) throw new Error('USER: ' + u.text);
    const p = await this.command(`PASS ${password}`);
    if (p.code !== 230) throw new Error('PASS: ' + p.text);
  }

  /** PASV, then opens the data connection to the announced port. */
  async pasv(): Promise<Socket> {
    const r = await this.command('PASV');
    const m = /\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(r.text);
    if (r.code !== 227 || !m) throw new Error('PASV: ' + r.text);
    const port = Number(m[5]) * 256 + Number(m[6]);
    const data = connect({ port, host: `${m[1]}.${m[2]}.${m[3]}.${m[4]}`, localAddress: this.localAddress });
    await new Promise<void>((resolve, reject) => {
      data.once('connect', resolve);
      data.once('error', reject);
    });
    return data;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Reads a data socket to its end. */
export function readAll(socket: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
  });
}

/** A listing command (`LIST`, `NLST`, `MLSD`, …) over a passive data connection, expecting 150 and then 226; returns the listing as UTF-8. */
export async function listText(ftp: RawFtp, command: string): Promise<string> {
  const data = await ftp.pasv();
  const body = readAll(data);
  ftp.send(command);
  expect((await ftp.reply()).code).toBe(150);
  const text = (await body).toString('utf8');
  expect((await ftp.reply()).code).toBe(226);
  return text;
}

/** STOR of `body` over a passive data connection, expecting 150 and then 226 (the commit). */
export async function storBytes(ftp: RawFtp, name: string, body: Buffer): Promise<void> {
  const data = await ftp.pasv();
  ftp.send(`STOR ${name}`);
  expect((await ftp.reply()).code).toBe(150);
  await new Promise<void>((resolve, reject) => data.write(body, (err) => (err ? reject(err) : resolve())));
  data.end();
  expect((await ftp.reply(60_000)).code).toBe(226);
}
