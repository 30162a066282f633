/**
 * The one module that knows ftp-srv 4.6.3. ftp-srv owns the control listener and each control
 * connection's socket, greeting and reply writer, and lends its active data connector; everything
 * else is ours: the reading of commands (control-channel.ts), the command table (commands/), and
 * every per-connection state (connection.ts). Its published typings are mostly `any` and its
 * connectors are not exported, so the parts used are typed and loaded by path here. Each touch of
 * its internals says why.
 */
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { FtpSrv } from 'ftp-srv';
import type { Logger } from 'pino';
import type { ActiveDataConnector, Connection, ControlPeer, ReplyLetter } from './connection.js';
import { safeReplyLetter } from './reply-text.js';

const require = createRequire(import.meta.url);

/** ftp-srv's connection object, as far as this module uses it (src/connection.js). */
interface FtpSrvConnection extends EventEmitter {
  id: string;
  commandSocket: Socket;
  log: Logger;
  reply(options: number, ...letters: unknown[]): Promise<void>;
  close(code?: number, message?: string): Promise<void>;
}

/** The FtpSrv instance as used here (its typings do not declare 'connect' or the listener types). */
interface FtpSrvInstance {
  on(event: string, listener: (...args: never[]) => void): unknown;
  listen(): Promise<unknown>;
  close(): Promise<unknown>;
  server: NetServer;
}

// Not exported by ftp-srv. PORT/EPRT use its active connector (connects out to the client after
// checking the address is the client's); it reads the connection's commandSocket and server.
const ActiveConnector = require('ftp-srv/src/connector/active') as new (connection: FtpSrvConnection) => ActiveDataConnector;

/** Events ftp-srv listens for on the original control socket, passed on from a TLS socket over it. */
const FORWARDED_EVENTS = ['end', 'timeout', 'drain', 'error'] as const;

export interface ControlListenerOptions {
  host: string;
  port: number;
  /** Lines before the 220 "Ready". */
  greeting?: string;
  /** Passive settings of ftp-srv's own PASV, which never runs: only to keep its start-up quiet. */
  passive: { portMin: number; portMax: number; address?: string };
  log: Logger;
}

export interface ControlListenerHooks {
  /**
   * A new TCP connection, before ftp-srv sees it (no greeting yet, the socket paused): true to
   * serve it; false when the hook turned it away itself. Lets admission wait on something (Redis).
   */
  gate?(socket: Socket): Promise<boolean>;
  /**
   * A new control connection, at TCP accept (before the greeting, the socket still paused): our
   * Connection for it, or the text of the 421 it is turned away with.
   */
  accept(peer: ControlPeer): Connection | { refuse: string };
  /** The control connection's socket closed. */
  closed(connection: Connection): void;
}

/** Our view of one ftp-srv connection. */
function peerOf(ftp: FtpSrvConnection): ControlPeer {
  return {
    id: ftp.id,
    log: ftp.log,
    get commandSocket() {
      return ftp.commandSocket;
    },
    // ftp-srv's writer: default texts for a bare code, multi-line replies, the guard below.
    reply: (code: number, ...letters: ReplyLetter[]) => ftp.reply(code, ...letters),
    // Replies, then destroys the socket; ftp-srv's 'close' handler drops the connection from its list.
    close: (code?: number, message?: string) => ftp.close(code, message),
    activeConnector: () => new ActiveConnector(ftp),
    startTls(wrap: (plain: Socket) => TLSSocket): TLSSocket {
      const plain = ftp.commandSocket;
      // The plain socket's data listener (our command reader) gets the decrypted bytes from now
      // on. It is taken off the plain socket first: the TLS layer drains what the plain socket
      // buffered (the ClientHello) through its read(), which emits 'data' there.
      const dataListeners = plain.listeners('data') as ((chunk: Buffer) => void)[];
      plain.removeAllListeners('data');
      const secure = wrap(plain);
      secure.on('data', (chunk: Buffer) => {
        for (const listener of dataListeners) listener.call(plain, chunk);
      });
      // ftp-srv's own listeners on the plain socket (errors, end, its idle timeout) keep working.
      for (const event of FORWARDED_EVENTS) secure.on(event, (...args: unknown[]) => plain.emit(event, ...args));
      if (plain.timeout) {
        // The plain socket no longer sees the traffic, so its idle timer would fire mid-session.
        secure.setTimeout(plain.timeout);
        plain.setTimeout(0);
      }
      // ftp-srv writes every reply to commandSocket.
      ftp.commandSocket = secure;
      return secure;
    },
  };
}

/**
 * The control listener: ftp-srv accepting connections and writing replies, with our reader,
 * connections and commands in place of its own.
 */
export class ControlListener {
  private readonly srv: FtpSrvInstance;

  constructor(options: ControlListenerOptions, hooks: ControlListenerHooks) {
    const host = options.host.includes(':') ? `[${options.host}]` : options.host;
    this.srv = new FtpSrv({
      url: `ftp://${host}:${options.port}`,
      pasv_min: options.passive.portMin,
      pasv_max: options.passive.portMax,
      pasv_url: options.passive.address ?? '127.0.0.1',
      greeting: options.greeting,
      anonymous: false,
      // Our idle and login timers close connections (ftp-server.ts); ftp-srv's socket timeout would not wait for a transfer.
      timeout: 0,
      log: options.log.child({ component: 'ftp-srv' }) as never,
    }) as unknown as FtpSrvInstance;
    // ftp-srv emits 'connect' synchronously in its listener's 'connection' handler, right after it
    // made its connection object and before its greeting, with the socket paused.
    this.srv.on('connect', ({ connection: ftp }: { connection: FtpSrvConnection }) => {
      // Every reply, ours and ftp-srv's own (the greeting, a close's 421), passes through safeReplyLetter:
      // a CR or LF in a text would end the reply line and let the rest pose as a reply of its own.
      const reply = ftp.reply.bind(ftp);
      ftp.reply = (code, ...letters) => reply(code, ...letters.map(safeReplyLetter));
      const socket = ftp.commandSocket;
      // ftp-srv's reader (its one 'data' listener, bound in its constructor) is replaced by ours:
      // it strips every '"', takes words like "-x" as flags, splits on Telnet bytes and reads the
      // next command only after the previous one ended, so ABOR could never stop a transfer.
      socket.removeAllListeners('data');
      const accepted = hooks.accept(peerOf(ftp));
      if ('refuse' in accepted) {
        // ftp-srv is about to greet: silenced, the 421 goes out alone.
        ftp.reply = async () => {};
        socket.end(`421 ${accepted.refuse}\r\n`);
        setTimeout(() => socket.destroy(), 2000).unref();
        return;
      }
      socket.on('data', (data: Buffer) => accepted.channel.receive(data));
      socket.once('close', () => {
        accepted.closed();
        hooks.closed(accepted);
      });
    });
    const gate = hooks.gate;
    if (gate) {
      // ftp-srv's own 'connection' handler runs once the gate lets the socket through.
      const server = this.srv.server;
      const handlers = server.listeners('connection') as ((socket: Socket) => void)[];
      server.removeAllListeners('connection');
      server.on('connection', (socket: Socket) => {
        gate(socket).then(
          (serve) => {
            if (serve) for (const handler of handlers) handler.call(server, socket);
          },
          () => socket.destroy(),
        );
      });
    }
    this.srv.on('client-error', ({ error, context }: { error: Error; context: string }) => {
      options.log.debug({ err: error, context }, 'client connection error');
    });
  }

  /** Starts listening on the control port. */
  async listen(): Promise<AddressInfo> {
    await this.srv.listen();
    return this.srv.server.address() as AddressInfo;
  }

  /** Serves a socket accepted elsewhere (implicit FTPS, after its handshake) like one of the control port. */
  serve(socket: Socket): void {
    this.srv.server.emit('connection', socket);
  }

  /** Stops accepting connections; those open stay. */
  stopAccepting(): void {
    const server = this.srv.server;
    const closeServer = server.close.bind(server);
    server.close();
    // ftp-srv's close() closes the listener again, which is no error here.
    server.close = ((callback?: (err?: Error) => void) => (server.listening ? closeServer(callback) : (callback?.(), server))) as typeof server.close;
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    await this.srv.close();
  }
}
