import { isIP, type Socket } from 'node:net';
import { clientKey, normalizeIp } from '../../sessions/access-control.js';
import type { Connection, DataConnector } from '../connection.js';
import { FtpError } from '../errors.js';
import { PoolExhaustedError, type PassiveLease } from '../passive-ports.js';
import { replyFor } from '../replies.js';
import { protectData, type CommandSpec } from './context.js';

/**
 * The passive data connection of one PASV/EPSV. It accepts exactly one connection, and only from
 * the control connection's address: any other peer is dropped and logged (port stealing, RFC 2577)
 * while the real client may still come. The pool port is returned the moment the connection is
 * accepted, the listener idles out, or the connector is ended (transfer done or failed, another
 * PASV/PORT, control connection closed).
 */
export class PassiveDataConnector implements DataConnector {
  readonly type = 'passive' as const;
  private dataSocket: Socket | null = null;
  private lease: PassiveLease | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private ended = false;
  private waiters: { resolve(s: Socket): void; reject(e: Error): void }[] = [];

  /** `protect` gives the accepted socket the data protection in force (TLS under PROT P). */
  constructor(
    private readonly connection: Connection,
    private readonly idleTimeoutMs: number,
    private readonly protect: (socket: Socket) => Socket = (socket) => socket,
  ) {}

  get socket(): Socket | null {
    return this.dataSocket;
  }

  get port(): number | undefined {
    return this.lease?.port;
  }

  /** Takes a port from the pool and listens on it. */
  async open(acquire: (onConnection: (s: Socket) => void) => Promise<PassiveLease>): Promise<number> {
    this.lease = await acquire((socket) => this.accept(socket));
    if (this.ended) {
      this.lease.release();
      throw new Error('connector ended while opening');
    }
    this.idleTimer = setTimeout(() => {
      this.connection.log.info({ port: this.lease?.port }, 'passive data connection not used in time; port released');
      this.fail(new Error('no data connection within the timeout'));
    }, this.idleTimeoutMs);
    this.idleTimer.unref();
    return this.lease.port;
  }

  /**
   * A connection to the passive port. From a trusted PROXY protocol source its header names the
   * client first; from anywhere else the bytes are the file's and are not looked at.
   */
  private accept(socket: Socket): void {
    if (this.dataSocket || this.ended) {
      socket.destroy();
      return;
    }
    const gate = this.connection.server.proxyProtocol;
    if (!gate?.trusts(socket.remoteAddress)) return this.acceptFrom(socket, normalizeIp(socket.remoteAddress));
    void gate.origin(socket).then((origin) => {
      if ('refused' in origin) {
        this.connection.server.proxyRefused?.(this.connection, normalizeIp(socket.remoteAddress), origin.refused);
        socket.destroy();
        return;
      }
      if (this.dataSocket || this.ended) {
        socket.destroy();
        return;
      }
      this.acceptFrom(socket, origin.clientAddress);
    });
  }

  private acceptFrom(socket: Socket, peer: string): void {
    const control = this.connection.clientAddress;
    if (peer !== control) {
      this.connection.log.warn(
        { event: 'port-stealing-refused', dataPeer: peer, controlPeer: control, port: this.lease?.port },
        'data connection from another address than the control connection refused',
      );
      socket.destroy();
      return;
    }
    // One data connection per PASV: the listener (and its pool port) is done.
    clearTimeout(this.idleTimer);
    this.lease?.release();
    socket.on('error', (err) => this.connection.log.debug({ err }, 'data connection error'));
    // Under PROT P the TLS server side starts now: a client may handshake before it sends the
    // transfer command (and wait for the server's hello before sending it).
    this.ready(this.protect(socket));
  }

  private ready(socket: Socket): void {
    if (this.ended) {
      socket.destroy();
      return;
    }
    this.dataSocket = socket;
    for (const w of this.waiters.splice(0)) w.resolve(socket);
  }

  private fail(err: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
    this.end();
  }

  waitForConnection({ timeout = 30_000 }: { timeout?: number } = {}): Promise<Socket> {
    if (this.dataSocket) return Promise.resolve(this.dataSocket);
    if (this.ended) return Promise.reject(new Error('no passive data connection set up'));
    return new Promise<Socket>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error('data connection timeout'));
        this.end();
      }, timeout);
      const waiter = {
        resolve: (s: Socket) => {
          clearTimeout(timer);
          resolve(s);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.push(waiter);
    });
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.idleTimer);
    this.lease?.release();
    const socket = this.dataSocket;
    this.dataSocket = null;
    if (socket && !socket.destroyed) socket.end(() => socket.destroy());
    for (const w of this.waiters.splice(0)) w.reject(new Error('data connection closed'));
    this.connection.dropDataConnector(this);
  }
}

/** Ends whatever data connection a previous PASV/EPSV/PORT/EPRT left (its port goes back to the pool). */
function dropPrevious(conn: Connection): void {
  conn.endDataConnection();
}

type ParsedActive = { host: string; port: number; family: 4 | 6 } | { error: string };

/** PORT h1,h2,h3,h4,p1,p2 */
export function parsePort(arg: string): ParsedActive {
  const parts = arg.trim().split(',');
  if (parts.length !== 6 || !parts.every((p) => /^\d{1,3}$/.test(p.trim()) && Number(p) <= 255)) {
    return { error: 'Syntax error in PORT parameters' };
  }
  const n = parts.map(Number);
  return { host: n.slice(0, 4).join('.'), port: (n[4] as number) * 256 + (n[5] as number), family: 4 };
}

/** EPRT |1|132.235.1.2|6275| (RFC 2428); any delimiter character. */
export function parseEprt(arg: string): ParsedActive {
  const s = arg.trim();
  const d = s[0];
  if (!d) return { error: 'Syntax error in EPRT parameters' };
  const fields = s.split(d);
  if (fields.length !== 5 || fields[0] !== '' || fields[4] !== '') return { error: 'Syntax error in EPRT parameters' };
  const [, proto, host = '', portText = ''] = fields;
  if (proto !== '1' && proto !== '2') return { error: 'Network protocol not supported, use (1,2)' };
  const family = proto === '1' ? 4 : 6;
  if (isIP(host) !== family || !/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    return { error: 'Syntax error in EPRT parameters' };
  }
  return { host, port: Number(portText), family };
}

/** PASV/EPSV: a passive data connector over the server's port pool; the port. */
async function passive(conn: Connection): Promise<number> {
  dropPrevious(conn);
  const ctx = conn.server;
  const connector = new PassiveDataConnector(conn, ctx.dataConnectionTimeoutMs, (socket) => protectData(conn, socket));
  conn.dataConnector = connector;
  try {
    // The holder of the port for ftp.passive.maxPerClient: the client address, as the connection limits count it.
    const client = clientKey(conn.clientAddress, ctx.ipv6PrefixLength);
    return await connector.open((onConnection) => ctx.passivePorts.acquire(ctx.passiveListenHost, client, onConnection));
  } catch (err) {
    connector.end();
    throw err;
  }
}

function passiveFailure(conn: Connection, err: unknown): Promise<void> {
  if (err instanceof FtpError) {
    const reply = replyFor(err);
    conn.log.warn({ event: 'passive-refused', reason: err.code }, reply.message);
    return conn.reply(reply.code, reply.message);
  }
  if (err instanceof PoolExhaustedError) {
    conn.log.warn({ event: 'passive-ports-exhausted' }, err.message);
    return conn.reply(425, 'No passive port free; try again later');
  }
  conn.log.error({ err }, 'passive listener failed');
  return conn.reply(425, "Can't open passive connection");
}

/** PORT/EPRT: an active data connector to the address given, which must be the client's. */
async function active(conn: Connection, verb: string, parsed: ParsedActive): Promise<void> {
  if ('error' in parsed) return conn.reply(parsed.error.startsWith('Network') ? 522 : 501, parsed.error);
  if (conn.epsvAll) return conn.reply(503, `${verb} not allowed after EPSV ALL`);
  // The bridge would connect to the client around the proxy, which it is not meant to reach.
  if (conn.origin.proxied) return conn.reply(502, `${verb} not available through a proxy; use PASV or EPSV`);
  const control = conn.clientAddress;
  const reason =
    normalizeIp(parsed.host) !== control ? 'address is not the client address' : parsed.port < 1024 ? 'port below 1024' : undefined;
  if (reason) {
    conn.log.warn(
      { event: 'active-refused', command: verb, target: `${parsed.host}:${parsed.port}`, controlPeer: control, reason },
      'active data connection refused (RFC 2577 bounce protection)',
    );
    return conn.reply(504, `${verb} refused: ${reason}`);
  }
  dropPrevious(conn);
  const connector = conn.peer.activeConnector();
  conn.dataConnector = connector;
  try {
    await connector.setupConnection(parsed.host, parsed.port, parsed.family);
  } catch (err) {
    conn.log.info({ err }, 'active data connection failed');
    conn.endDataConnection();
    return conn.reply(425, "Can't open data connection");
  }
  return conn.reply(200, `${verb} command successful`);
}

/** Data connection set-up: PASV, EPSV (ours, over our port pool) and PORT, EPRT (ftp-srv's active connector, checked first). */
export const dataConnectionCommands: Record<string, CommandSpec> = {
  PASV: {
    handler: async (conn) => {
      if (conn.epsvAll) return conn.reply(503, 'PASV not allowed after EPSV ALL');
      if (isIP(conn.clientAddress) === 6) return conn.reply(522, 'PASV needs IPv4; use EPSV');
      let address: string;
      try {
        address = await conn.server.passiveAddress(conn);
      } catch (err) {
        conn.log.error({ err }, 'passive address could not be resolved');
        return conn.reply(425, "Can't open passive connection: passive address unresolvable");
      }
      if (isIP(address) !== 4) return conn.reply(425, 'PASV needs an IPv4 address; use EPSV');
      let port: number;
      try {
        port = await passive(conn);
      } catch (err) {
        return passiveFailure(conn, err);
      }
      return conn.reply(227, `Entering Passive Mode (${address.replace(/\./g, ',')},${port >> 8},${port & 255})`);
    },
    loginRequired: true,
    syntax: 'PASV',
    help: 'Passive data connection (IPv4)',
    feat: ['PASV', 'EPSV', 'EPRT'],
  },
  EPSV: {
    handler: async (conn, raw) => {
      const arg = raw.trim().toUpperCase();
      if (arg === 'ALL') {
        conn.epsvAll = true;
        return conn.reply(200, 'EPSV ALL ok');
      }
      if (arg !== '' && arg !== '1' && arg !== '2') return conn.reply(522, 'Network protocol not supported, use (1,2)');
      const family = isIP(conn.clientAddress);
      if (arg !== '' && Number(arg) !== (family === 6 ? 2 : 1)) {
        return conn.reply(522, `Network protocol not supported, use (${family === 6 ? 2 : 1})`);
      }
      let port: number;
      try {
        port = await passive(conn);
      } catch (err) {
        return passiveFailure(conn, err);
      }
      return conn.reply(229, `Entering Extended Passive Mode (|||${port}|)`);
    },
    loginRequired: true,
    syntax: 'EPSV [1|2|ALL]',
    help: 'Extended passive data connection (RFC 2428)',
  },
  PORT: {
    handler: async (conn, arg) => active(conn, 'PORT', parsePort(arg)),
    loginRequired: true,
    syntax: 'PORT <h1,h2,h3,h4,p1,p2>',
    help: 'Active data connection to the client (IPv4)',
  },
  EPRT: {
    handler: async (conn, arg) => active(conn, 'EPRT', parseEprt(arg)),
    loginRequired: true,
    syntax: 'EPRT |<protocol>|<address>|<port>|',
    help: 'Extended active data connection to the client (RFC 2428)',
  },
};
