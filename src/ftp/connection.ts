import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { DIGEST_ALGORITHMS, type DigestAlgorithm } from '../storage/digests.js';
import type { CommandContext } from './commands/context.js';
import { ControlChannel, type CommandTable } from './control-channel.js';
import type { Session } from '../sessions/session.js';
import { directOrigin, type ClientOrigin } from '../sessions/proxy-protocol.js';
import type { DataProtection } from './tls.js';
import type { TransferControl } from './transfer-control.js';

/** A data connection set up by PASV/EPSV/PORT/EPRT, taken by the next transfer command. */
export interface DataConnector {
  readonly type: 'passive' | 'active' | false;
  readonly socket: Socket | null;
  waitForConnection(options?: { timeout?: number }): Promise<Socket>;
  end(): void;
}

/** No data connection set up: before PASV/EPSV/PORT/EPRT, and after each transfer. */
export const NO_DATA_CONNECTION: DataConnector = Object.freeze({
  type: false as const,
  socket: null,
  waitForConnection: () => Promise.reject(new Error('No data connection set up: send PASV, EPSV, PORT or EPRT')),
  end: () => undefined,
});

/** An active data connector: connects out to the address PORT/EPRT named. */
export interface ActiveDataConnector extends DataConnector {
  setupConnection(host: string, port: number, family: 4 | 6): Promise<void>;
}

/** One line of a reply: a text (numbered like the reply), or a line sent exactly as given (`raw`). */
export type ReplyLetter = string | { message: string; raw?: true };

/**
 * What a {@link Connection} needs of the control connection's owner: ftp-srv's connection through
 * ftp-srv-adapter.ts in the server, a fake in unit tests.
 */
export interface ControlPeer {
  readonly id: string;
  readonly log: Logger;
  /** The socket commands arrive on; a TLS socket after AUTH TLS or on the implicit listener. */
  readonly commandSocket: Socket;
  /** Sends a reply (`code` alone: the standard text of that code); resolves once written. */
  reply(code: number, ...letters: ReplyLetter[]): Promise<void>;
  /** Replies `code` (none when 0) and closes the control connection. */
  close(code?: number, message?: string): Promise<void>;
  /** A new active data connector (PORT, EPRT). */
  activeConnector(): ActiveDataConnector;
  /**
   * AUTH TLS: wraps the plain command socket with `secure` and reads commands from the TLS socket
   * from now on. Returns the TLS socket.
   */
  startTls(secure: (plain: Socket) => TLSSocket): TLSSocket;
}

/**
 * Everything one control connection knows, from accept to close: who logged in (the session:
 * account, store, cwd, REST offset, RNFR path), the data connection set up, the protection level,
 * the options it picked, the transfer in flight, and the counters the server looks at.
 */
export class Connection {
  /** The logged-in session; undefined before PASS succeeded. */
  session: Session | undefined;
  /** Whether the session's account came from the local accounts or from the auth hook. */
  loginSource: 'local' | 'hook' | undefined;
  /** The name USER gave, taken by the PASS after it. */
  username: string | undefined;
  /** TYPE A or I; objects pass through unchanged in both. */
  transferType: 'ascii' | 'binary' = 'binary';
  /** The directive of the command running now. */
  directive: string | undefined;
  /** The directive of the last command that ran to its end (RNTO must follow RNFR). */
  previousDirective: string | undefined;
  /** Command handlers running (a transfer is never idle). */
  busy = 0;
  /** When the client last sent a byte (the idle timeout). */
  lastActivity = Date.now();
  /** A draining server has sent this connection its 421. */
  drainClosed = false;
  /** The algorithm HASH uses, as picked by OPTS HASH. */
  hashAlgorithm: DigestAlgorithm = DIGEST_ALGORITHMS[0];
  /** The facts MLSD/MLST send, as picked by OPTS MLST (all until then). */
  mlstFacts: ReadonlySet<string> | undefined;
  /** EPSV ALL was sent: PASV, PORT and EPRT are refused from now on. */
  epsvAll = false;
  /** PBSZ/PROT state (RFC 4217 §8, §9). */
  readonly protection: DataProtection = { pbsz: false, level: 'C' };
  /** ALLO n: the size of the next upload, checked against the quota when it starts. */
  allocatedBytes: number | undefined;
  /** The data connection PASV/EPSV/PORT/EPRT set up, taken by the next transfer command. */
  dataConnector: DataConnector = NO_DATA_CONNECTION;
  /** The reading side: commands in order, ABOR/STAT/QUIT during a transfer. */
  readonly channel: ControlChannel;

  constructor(
    readonly peer: ControlPeer,
    /** The server around the connection: settings and shared resources. */
    readonly server: CommandContext,
    commands: CommandTable,
    /** Where the connection comes from: its PROXY header's client, else the socket's peer. */
    readonly origin: ClientOrigin = directOrigin(peer.commandSocket),
  ) {
    this.channel = new ControlChannel(this, commands, server.dataIdleTimeoutMs);
  }

  get id(): string {
    return this.peer.id;
  }

  get log(): Logger {
    return this.peer.log;
  }

  get commandSocket(): Socket {
    return this.peer.commandSocket;
  }

  /**
   * The client's address, the one bans, limits, `allowFrom`, the data connection check, logs,
   * metrics and object metadata use: the PROXY header's when a trusted proxy sent one.
   */
  get clientAddress(): string {
    return this.origin.clientAddress;
  }

  get authenticated(): boolean {
    return this.session !== undefined;
  }

  /** The transfer running now, if any. */
  get transfer(): TransferControl | undefined {
    return this.channel.transfer;
  }

  reply(code: number, ...letters: ReplyLetter[]): Promise<void> {
    return this.peer.reply(code, ...letters);
  }

  close(code?: number, message?: string): Promise<void> {
    return this.peer.close(code, message);
  }

  /** Closes the data connection set up (its listener, its socket); none is set up afterwards. */
  endDataConnection(): void {
    const connector = this.dataConnector;
    this.dataConnector = NO_DATA_CONNECTION;
    connector.end();
  }

  /** A connector that ended on its own (idle, timeout) is no longer the one set up. */
  dropDataConnector(connector: DataConnector): void {
    if (this.dataConnector === connector) this.dataConnector = NO_DATA_CONNECTION;
  }

  /** The control connection closed: whatever data connection is set up goes with it. */
  closed(): void {
    this.endDataConnection();
  }
}
