import { connect, type Socket } from 'node:net';

/** Where clamd listens: a TCP address (`TCPSocket`/`TCPAddr` in clamd.conf) or a Unix socket (`LocalSocket`). */
export type ClamdAddress = { host: string; port: number } | { socket: string };

/** clamd's answer for one stream. */
export type ClamdVerdict = { infected: false } | { infected: true; signature: string };

/** Why a scan has no verdict: clamd unreachable, too slow, or it answered with an error (e.g. its StreamMaxLength). */
export class ClamdError extends Error {
  constructor(
    readonly reason: 'connect' | 'timeout' | 'closed' | 'clamd' | 'protocol',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ClamdError';
  }
}

const END_OF_STREAM = Buffer.alloc(4);
/** Longest reply kept: a verdict is one short line; anything longer is not clamd. */
const MAX_REPLY_BYTES = 4096;

const GiB = 1024 * 1024 * 1024;

/**
 * One scan with clamd's INSTREAM command (`zINSTREAM\0`, then chunks framed by a 4-byte big-endian
 * length, then a zero length; the reply is `stream: OK`, `stream: <signature> FOUND` or `... ERROR`,
 * NUL-terminated). The connection is opened at once; bytes written before it is up wait in the
 * socket.
 *
 * A chunk is written as it is (no copy): {@link write} resolves once the socket has handed it to
 * the kernel, after which the caller may reuse or free it. So a clamd that reads slowly slows the
 * writer, and the memory held is one chunk. A chunk's write is bounded by `timeoutMs`; the wait for
 * the verdict after the last byte by `timeoutMs` plus `verdictMsPerGiB` for every GiB sent, since
 * clamd scans the spooled stream only then (~27 CPU-s per GiB measured here: a 1 GiB upload would
 * outlast any fixed bound that still notices a hung clamd quickly on a small file).
 *
 * clamd spools the stream to its TemporaryDirectory and scans it after the last chunk; it refuses
 * streams longer than its StreamMaxLength (default 25 MB) with an error reply.
 */
export class ClamdStream {
  private readonly socket: Socket;
  private readonly reply: Promise<string>;
  private failure: ClamdError | undefined;
  private ended = false;
  private bytes = 0;

  constructor(
    address: ClamdAddress,
    private readonly timeoutMs: number,
    private readonly verdictMsPerGiB = 0,
  ) {
    this.socket = 'socket' in address ? connect(address.socket) : connect(address.port, address.host);
    this.reply = new Promise<string>((resolve, reject) => {
      const parts: Buffer[] = [];
      let length = 0;
      let connected = false;
      let replied = false;
      this.socket.once('connect', () => (connected = true));
      this.socket.on('data', (data: Buffer) => {
        parts.push(data);
        length += data.length;
        const text = Buffer.concat(parts, length).toString('latin1');
        const end = text.indexOf('\0');
        if (end >= 0 || length > MAX_REPLY_BYTES) {
          replied = true;
          this.socket.destroy();
          if (end < 0) return reject(this.failWith(new ClamdError('protocol', 'clamd sent an over-long reply')));
          const line = text.slice(0, end);
          // A reply before the end of the stream is a refusal (e.g. "INSTREAM size limit exceeded. ERROR").
          if (!this.ended) this.failWith(new ClamdError('clamd', `clamd refused the stream: ${line}`));
          resolve(line);
        }
      });
      this.socket.once('error', (err) => {
        if (replied) return;
        reject(this.failWith(new ClamdError(connected ? 'closed' : 'connect', `clamd ${connected ? 'connection failed' : 'unreachable'}: ${err.message}`, { cause: err })));
      });
      this.socket.once('close', () => {
        if (!replied) reject(this.failWith(new ClamdError('closed', 'clamd closed the connection without a verdict')));
      });
    });
    this.reply.catch(() => undefined);
    this.socket.write('zINSTREAM\0');
  }

  /** Sends one chunk; resolves once the socket no longer needs it, rejects with a ClamdError. */
  write(chunk: Buffer): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (!chunk.length) return Promise.resolve();
    const header = Buffer.allocUnsafe(4);
    header.writeUInt32BE(chunk.length);
    this.bytes += chunk.length;
    return this.bounded(
      new Promise<void>((resolve, reject) => {
        this.socket.cork();
        this.socket.write(header);
        this.socket.write(chunk, (err) => (err ? reject(this.failure ?? this.failWith(new ClamdError('closed', `clamd connection failed: ${err.message}`, { cause: err }))) : resolve()));
        this.socket.uncork();
      }),
      'clamd took no data',
    );
  }

  /** Ends the stream and waits for the verdict. */
  async end(): Promise<ClamdVerdict> {
    if (this.failure) throw this.failure;
    this.ended = true;
    this.socket.write(END_OF_STREAM);
    const line = await this.bounded(this.reply, 'clamd gave no verdict', this.verdictTimeoutMs());
    if (this.failure) throw this.failure;
    return parseVerdict(line);
  }

  /** Closes the connection (the upload failed or needs no verdict). */
  destroy(): void {
    this.failWith(new ClamdError('closed', 'scan cancelled'));
    this.socket.destroy();
  }

  private failWith(error: ClamdError): ClamdError {
    this.failure ??= error;
    return this.failure;
  }

  /** How long the verdict may take once the last byte is sent: `timeoutMs` plus `verdictMsPerGiB` per GiB sent. */
  verdictTimeoutMs(): number {
    return this.timeoutMs + Math.ceil((this.bytes / GiB) * this.verdictMsPerGiB);
  }

  private bounded<T>(promise: Promise<T>, what: string, timeoutMs = this.timeoutMs): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(this.failWith(new ClamdError('timeout', `${what} within ${timeoutMs} ms`)));
        this.socket.destroy();
      }, timeoutMs);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }
}

/** `stream: OK`, `stream: <signature> FOUND`, or an error line. */
export function parseVerdict(line: string): ClamdVerdict {
  const reply = line.replace(/^stream: /, '');
  if (reply === 'OK') return { infected: false };
  const found = /^(.+) FOUND$/.exec(reply);
  if (found?.[1]) return { infected: true, signature: found[1] };
  if (reply.endsWith(' ERROR')) throw new ClamdError('clamd', `clamd could not scan the stream: ${reply}`);
  throw new ClamdError('protocol', `unexpected clamd reply: ${reply.slice(0, 200)}`);
}

/**
 * clamd's PING: resolves on `PONG`, rejects with a ClamdError when clamd is unreachable, answers
 * anything else, or does not answer within `timeoutMs` (what `/readyz` asks).
 */
export function pingClamd(address: ClamdAddress, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const socket = 'socket' in address ? connect(address.socket) : connect(address.port, address.host);
    let reply = '';
    let connected = false;
    const fail = (error: ClamdError) => {
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(() => fail(new ClamdError('timeout', `clamd did not answer PING within ${timeoutMs} ms`)), timeoutMs);
    socket.once('connect', () => {
      connected = true;
      socket.write('zPING\0');
    });
    socket.on('data', (data: Buffer) => {
      reply += data.toString('latin1');
      const end = reply.indexOf('\0');
      if (end < 0 && reply.length <= MAX_REPLY_BYTES) return;
      clearTimeout(timer);
      socket.destroy();
      if (reply.slice(0, end) === 'PONG') resolve();
      else reject(new ClamdError('protocol', `unexpected clamd reply to PING: ${reply.slice(0, 200)}`));
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      fail(new ClamdError(connected ? 'closed' : 'connect', `clamd ${connected ? 'connection failed' : 'unreachable'}: ${err.message}`, { cause: err }));
    });
    socket.once('close', () => {
      clearTimeout(timer);
      reject(new ClamdError('closed', 'clamd closed the connection without answering PING'));
    });
  });
}
