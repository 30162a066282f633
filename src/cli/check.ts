import { randomBytes } from 'node:crypto';
import { connect, createServer, isIP, type AddressInfo, type Socket } from 'node:net';
import { normalizeIp } from '../sessions/access-control.js';
import { FtpReplyParser, type FtpReply as Reply } from '../ftp/reply-parser.js';

/**
 * `ftp-s3-bridge check`: talks to a running bridge the way a client does and says in plain words
 * which step failed. Each step is printed as it completes.
 */
export interface CheckOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  /** Where step results go (a line each). */
  out: (line: string) => void;
  timeoutMs?: number;
}

class StepFailed extends Error {}

/** A minimal FTP control connection: one command, one reply. */
class Control {
  private readonly parser = new FtpReplyParser();
  private waiting: ((r: Reply | Error) => void) | undefined;
  private queued: (Reply | Error)[] = [];

  constructor(
    readonly socket: Socket,
    private readonly timeoutMs: number,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      for (const reply of this.parser.push(chunk)) this.push(reply);
    });
    socket.on('close', () => this.push(new Error('the server closed the control connection')));
    socket.on('error', (err) => this.push(err));
  }

  private push(r: Reply | Error): void {
    const w = this.waiting;
    this.waiting = undefined;
    if (w) w(r);
    else this.queued.push(r);
  }

  reply(): Promise<Reply> {
    const q = this.queued.shift();
    if (q) return q instanceof Error ? Promise.reject(q) : Promise.resolve(q);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error(`no reply within ${this.timeoutMs / 1000} s`));
      }, this.timeoutMs);
      this.waiting = (r) => {
        clearTimeout(timer);
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
    });
  }

  command(line: string): Promise<Reply> {
    this.socket.write(line + '\r\n');
    return this.reply();
  }
}

function connectTo(host: string, port: number, timeoutMs: number, localAddress?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, ...(localAddress ? { localAddress } : {}) });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function readAll(socket: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
  });
}

const why = (err: unknown): string => {
  const code = (err as NodeJS.ErrnoException).code;
  const text: Record<string, string> = {
    ECONNREFUSED: 'connection refused (nothing listens there, or a firewall rejects it)',
    ETIMEDOUT: 'timed out (a firewall or NAT drops the packets, or the address is not routed)',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
    ECONNRESET: 'connection reset by the server',
    ENOTFOUND: 'host name not found',
  };
  return (code && text[code]) ?? (err as Error).message;
};

/** Runs every step; resolves true when all passed. */
export async function runCheck(options: CheckOptions): Promise<boolean> {
  const { host, port, user, password, out } = options;
  const timeoutMs = options.timeoutMs ?? 15_000;
  const ok = (step: string) => out(`OK    ${step}`);
  let control: Control | undefined;
  let step = '';
  const expect = async (line: string, codes: number[], what: string): Promise<Reply> => {
    const r = await (control as Control).command(line);
    if (!codes.includes(r.code)) {
      const shown = line.startsWith('PASS ') ? 'PASS ********' : line;
      throw new StepFailed(`${what}: the server answered "${r.text}" to ${shown}`);
    }
    return r;
  };
  const name = `ftp-s3-bridge-check-${randomBytes(6).toString('hex')}.txt`;
  const body = Buffer.from(`ftp-s3-bridge check ${new Date().toISOString()}\n`);
  let stored = false;

  /** Opens the passive data connection, with the advertised address:port in any failure. */
  const passive = async (): Promise<Socket> => {
    const r = await expect('PASV', [227], 'passive mode (PASV) was refused');
    const m = /\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(r.text);
    if (!m) throw new StepFailed(`could not parse the PASV reply "${r.text}"`);
    const address = `${m[1]}.${m[2]}.${m[3]}.${m[4]}`;
    const dataPort = Number(m[5]) * 256 + Number(m[6]);
    try {
      return await connectTo(address, dataPort, timeoutMs);
    } catch (err) {
      throw new StepFailed(
        `the server advertised ${address}:${dataPort} for the passive data connection ("${r.text}"), ` +
          `but connecting to it failed: ${why(err)}. Clients cannot reach that address and port: set ` +
          'ftp.passive.address to the address clients connect to (the public IP or DNS name behind NAT, ' +
          'the LoadBalancer address in Kubernetes), forward/expose the whole range ftp.passive.portMin-portMax, ' +
          'and use ftp.passive.overrides for clients on internal networks.',
      );
    }
  };

  /** Opens a listener for an active (PORT) data connection on the address our control connection uses. */
  const active = async (): Promise<{ accepted: Promise<Socket>; close(): void }> => {
    const local = (control as Control).socket.localAddress ?? '127.0.0.1';
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, local, resolve);
    });
    const dataPort = (server.address() as AddressInfo).port;
    const accepted = new Promise<Socket>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new StepFailed(`the server did not connect to our active-mode listener ${local}:${dataPort} within ${timeoutMs / 1000} s (a firewall between the server and this machine blocks it?)`)),
        timeoutMs,
      );
      server.once('connection', (s: Socket) => {
        clearTimeout(timer);
        resolve(s);
      });
    });
    accepted.catch(() => {});
    const plain = normalizeIp(local);
    const cmd = isIP(plain) === 6 ? `EPRT |2|${plain}|${dataPort}|` : `PORT ${plain.replace(/\./g, ',')},${dataPort >> 8},${dataPort & 255}`;
    await expect(cmd, [200], 'active mode (PORT/EPRT) was refused');
    return { accepted, close: () => server.close() };
  };

  try {
    step = `connect to ${host}:${port}`;
    let socket: Socket;
    try {
      socket = await connectTo(host, port, timeoutMs);
    } catch (err) {
      throw new StepFailed(`could not connect to the FTP control port ${host}:${port}: ${why(err)}`);
    }
    control = new Control(socket, timeoutMs);
    const greeting = await control.reply();
    if (greeting.code !== 220) throw new StepFailed(`the server greeted with "${greeting.text}" instead of 220`);
    ok(step);

    step = `log in as ${user}`;
    await expect(`USER ${user}`, [331, 230], 'USER was refused');
    await expect(`PASS ${password}`, [230], 'login failed (wrong user or password, account not allowed from this address, or this address is banned)');
    await expect('TYPE I', [200], 'TYPE I was refused');
    ok(step);

    step = `store ${name} over a passive data connection`;
    {
      const data = await passive();
      const r = await control.command(`STOR ${name}`);
      if (r.code !== 150 && r.code !== 125) throw new StepFailed(`STOR was refused: "${r.text}"`);
      data.end(body);
      const done = await control.reply();
      if (done.code !== 226) throw new StepFailed(`the upload did not complete: "${done.text}"`);
      stored = true;
    }
    ok(step);

    step = 'list over a passive data connection';
    {
      const data = await passive();
      const reading = readAll(data);
      const r = await control.command('NLST');
      if (r.code !== 150 && r.code !== 125) throw new StepFailed(`NLST was refused: "${r.text}"`);
      const listing = (await reading).toString('utf8');
      const done = await control.reply();
      if (done.code !== 226) throw new StepFailed(`the listing did not complete: "${done.text}"`);
      if (!listing.split(/\r?\n/).some((l) => l.replace(/^\//, '') === name)) {
        throw new StepFailed(`the stored file ${name} is missing from the listing`);
      }
    }
    ok(step);

    step = 'retrieve over an active (PORT) data connection';
    {
      const listener = await active();
      try {
        const r = await control.command(`RETR ${name}`);
        if (r.code !== 150 && r.code !== 125) throw new StepFailed(`RETR was refused: "${r.text}"`);
        const data = await listener.accepted;
        const got = await readAll(data);
        const done = await control.reply();
        if (done.code !== 226) throw new StepFailed(`the download did not complete: "${done.text}"`);
        if (!got.equals(body)) throw new StepFailed(`the downloaded bytes differ from the uploaded ones (${got.length} vs ${body.length} bytes)`);
      } finally {
        listener.close();
      }
    }
    ok(step);

    step = `delete ${name}`;
    await expect(`DELE ${name}`, [250], 'delete failed');
    stored = false;
    ok(step);
    await control.command('QUIT').catch(() => undefined);
    out('all checks passed');
    return true;
  } catch (err) {
    out(`FAIL  ${step}`);
    out(`      ${err instanceof StepFailed ? err.message : why(err)}`);
    if (stored && control) await control.command(`DELE ${name}`).catch(() => undefined);
    return false;
  } finally {
    control?.socket.destroy();
  }
}
