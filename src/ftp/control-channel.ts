import type { Socket } from 'node:net';
import { CommandLineReader, LINE_TOO_LONG, parseCommandLine, type ReadLine } from './command-line.js';
import { HeaderSniffer } from '../sessions/proxy-protocol.js';
import type { Connection } from './connection.js';
import { FtpError } from './errors.js';
import { TransferControl } from './transfer-control.js';

/** Commands waiting to run beyond which the client is no longer read (until half have run). */
const MAX_QUEUED = 256;
/** Reply bytes a client may leave unread before its commands wait for them to drain. */
const MAX_UNSENT_REPLY_BYTES = 64 * 1024;

/** A command line as parsed: the directive upper-cased, the argument verbatim (null when none). */
export interface FtpCommand {
  directive: string;
  arg: string | null;
}

/** What the channel needs of the command table (commands/index.ts). */
export interface CommandTable {
  /** Runs one command: 502 for an unknown verb, 530 before login, else its handler. */
  dispatch(connection: Connection, command: FtpCommand): Promise<void>;
  /** Whether the directive moves data over a data connection: it runs with a {@link TransferControl}. */
  isTransfer(directive: string): boolean;
  /** Whether the directive acts at once while a transfer runs (ABOR, STAT, QUIT). */
  actsDuringTransfer(directive: string): boolean;
}

interface Queued {
  /** The control socket the command came in on: one sent in the clear before AUTH TLS never runs after it. */
  source: Socket;
  run(): Promise<unknown>;
}

/**
 * The reading side of one control connection. Commands run one at a time, in the order sent,
 * each after the previous one's final reply; while a transfer runs, ABOR, STAT and QUIT act at
 * once (RFC 959 §4.1.3): STAT answers 213 with the bytes moved, ABOR and QUIT abort the transfer
 * (its command replies 426), then ABOR answers 226 and QUIT 221. Every other command waits its
 * turn. A line with a control character is answered 501 and goes no further: no handler, no log
 * line, no echo. A client that sends commands faster than they run is no longer read from
 * MAX_QUEUED on, so neither lines nor the queue can grow memory without bound.
 */
export class ControlChannel {
  private readonly reader = new CommandLineReader();
  private source: Socket | undefined;
  private readonly queue: Queued[] = [];
  private running = false;
  private throttled: Socket | undefined;
  /** A STAT reply during the transfer not yet written: further STATs wait their turn. */
  private statPending = false;
  /** The transfer running now. */
  transfer: TransferControl | undefined;
  /** With ftp.proxyProtocol on: the first bytes, until they cannot be a PROXY header any more. */
  private sniffer: HeaderSniffer | undefined;
  private sniffed: Buffer[] = [];

  constructor(
    private readonly connection: Connection,
    private readonly commands: CommandTable,
    private readonly dataIdleTimeoutMs: number,
  ) {
    if (connection.server.proxyProtocol?.enabled) this.sniffer = new HeaderSniffer();
  }

  /** Bytes of the control connection (decrypted, after AUTH TLS). */
  receive(data: Buffer): void {
    this.connection.lastActivity = Date.now();
    if (this.sniffer) {
      // A header where none is due (an untrusted source, or a second one): the connection is closed unread.
      const verdict = this.sniffer.push(data);
      this.sniffed.push(data);
      if (verdict === 'undecided') return;
      const held = Buffer.concat(this.sniffed.splice(0));
      this.sniffer = undefined;
      if (verdict === 'header') {
        const conn = this.connection;
        conn.server.proxyRefused?.(conn, conn.origin.peerAddress, conn.origin.proxied ? 'proxy-header-unexpected' : 'proxy-header-untrusted');
        conn.commandSocket.destroy();
        return;
      }
      data = held;
    }
    const source = this.connection.commandSocket;
    // After a TLS upgrade nothing that came in the clear is joined to what follows.
    if (this.source !== source) {
      this.source = source;
      this.reader.reset();
    }
    for (const line of this.reader.push(data)) this.accept(line, source);
  }

  private accept(line: ReadLine, source: Socket): void {
    const conn = this.connection;
    if (line === LINE_TOO_LONG) return this.enqueue(source, () => conn.reply(500, 'Command line too long'));
    const parsed = parseCommandLine(line);
    if ('invalid' in parsed) {
      return this.enqueue(source, () =>
        parsed.invalid === 'control-characters'
          ? conn.reply(501, 'Control characters are not allowed in commands')
          : conn.reply(500, 'Syntax error, command unrecognized'),
      );
    }
    const command: FtpCommand = { directive: parsed.directive, arg: parsed.arg };
    if (this.transfer && this.commands.actsDuringTransfer(command.directive) && this.actNow(command, this.transfer, source)) return;
    this.enqueue(source, () => this.run(command));
  }

  /** ABOR, STAT and QUIT during a transfer; false for any other command (it waits its turn). */
  private actNow(command: FtpCommand, transfer: TransferControl, source: Socket): boolean {
    const conn = this.connection;
    switch (command.directive) {
      case 'STAT':
        if (this.statPending) return false;
        this.statPending = true;
        void conn.reply(213, `Transfer in progress: ${transfer.bytes} bytes transferred`).finally(() => (this.statPending = false));
        return true;
      case 'ABOR':
        if (transfer.signal.aborted) return false;
        transfer.abort(new FtpError('TRANSFER_ABORTED', 'Transfer aborted'));
        // Right after the transfer's own 426, ahead of anything queued behind it.
        this.queue.unshift({
          source,
          run: () => {
            conn.endDataConnection();
            return conn.reply(226, 'ABOR successful; data connection closed');
          },
        });
        return true;
      case 'QUIT':
        transfer.abort(new FtpError('TRANSFER_ABORTED', 'Transfer aborted: the client quit'));
        this.queue.length = 0;
        this.queue.unshift({ source, run: () => this.run(command) });
        return true;
      default:
        return false;
    }
  }

  private enqueue(source: Socket, run: () => Promise<unknown>): void {
    this.queue.push({ source, run });
    if (this.queue.length > MAX_QUEUED && !this.throttled) {
      // Paused: an AUTH TLS still queued may replace it as the command socket.
      this.throttled = this.connection.commandSocket;
      this.throttled.pause();
    }
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const conn = this.connection;
    try {
      for (let item = this.queue.shift(); item; item = this.queue.shift()) {
        this.unthrottle();
        if (item.source !== conn.commandSocket) {
          conn.log.warn('command sent in the clear before the TLS upgrade ignored');
          continue;
        }
        try {
          await this.repliesFlushed();
          await item.run();
        } catch (err) {
          conn.log.error({ err }, 'command handler failed');
        }
      }
    } finally {
      this.running = false;
    }
  }

  /**
   * Replies a client does not read pile up in the socket's buffer (a reply's write completes once
   * the kernel takes it, and handlers need not wait for that): no further command runs until they
   * drain, so the queue fills and reading stops (MAX_QUEUED) instead of memory growing per reply.
   */
  private async repliesFlushed(): Promise<void> {
    const socket = this.connection.commandSocket;
    if (socket.destroyed || socket.writableLength <= MAX_UNSENT_REPLY_BYTES) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        socket.off('drain', done);
        socket.off('close', done);
        resolve();
      };
      socket.on('drain', done);
      socket.on('close', done);
    });
  }

  private unthrottle(): void {
    if (!this.throttled || this.queue.length > MAX_QUEUED / 2) return;
    const paused = this.throttled;
    this.throttled = undefined;
    if (!paused.destroyed) paused.resume();
    const current = this.connection.commandSocket;
    if (current !== paused && !current.destroyed) current.resume();
  }

  /** Hands a command to the command table (authentication check, then its handler). */
  private async run(command: FtpCommand): Promise<void> {
    const conn = this.connection;
    // Nothing sent after QUIT runs.
    if (command.directive === 'QUIT') this.queue.length = 0;
    const transfer = this.commands.isTransfer(command.directive) && conn.authenticated ? new TransferControl(this.dataIdleTimeoutMs) : undefined;
    this.transfer = transfer;
    try {
      await this.commands.dispatch(conn, command);
    } finally {
      transfer?.end();
      if (this.transfer === transfer) this.transfer = undefined;
    }
  }
}
