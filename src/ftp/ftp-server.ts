import { lookup } from 'node:dns/promises';
import { createServer as createNetServer, isIP, type AddressInfo, type Server as NetServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { FtpSrv } from 'ftp-srv';
import type { Logger } from 'pino';
import type { Authenticator } from '../accounts/authenticator.js';
import type { AccountConfig, BridgeConfig } from '../config/schema.js';
import type { FileStore } from '../storage/object-store.js';
import { buildCommands, type CommandContext } from './commands/index.js';
import type { OperationListener } from './operations.js';
import { ControlChannel } from './control-channel.js';
import { commandRegistry, installCommandReader, type FtpConnection, type FtpSrvInstance } from './ftp-srv-internals.js';
import { Session } from './session.js';
import { controlProtected, dataProtection, handshake, serverTlsSocket, type TlsCredentials } from './tls.js';
import type { TransferPolicy } from './transfer-policy.js';
import { AddressSet, BruteForceGuard, ConnectionLimiter, normalizeIp } from './access-control.js';
import { PassivePortPool, passiveWarnings } from './passive-ports.js';

export interface FtpServerOptions {
  ftp: BridgeConfig['ftp'];
  authenticator: Authenticator;
  storeFor(account: AccountConfig, session: { clientIp: string }): FileStore;
  logger: Logger;
  /** Told of every finished or failed file operation (audit log, metrics, events). */
  onOperation: OperationListener;
  /** Quotas and bandwidth limits of transfers. */
  transferPolicy?: TransferPolicy;
  /** Told of every login attempt's outcome (metrics). */
  onLogin?(result: 'ok' | 'failed'): void;
  /** The FTPS certificate (ftp.tls); without it AUTH TLS is refused and there is no implicit listener. */
  tls?: TlsCredentials;
  /** Whether the local account of that name has requireTls (read at each USER: accounts reload). */
  accountRequiresTls?(username: string): boolean;
}

/** An implicit FTPS client that connects and never completes the handshake is dropped after this. */
const IMPLICIT_HANDSHAKE_TIMEOUT_MS = 30_000;

/** ftp-srv server instance → our context. The command registry is process-wide; contexts are not. */
const contexts = new WeakMap<object, CommandContext>();
let registered = false;
/** Connections with a command handler running (a transfer is never idle). */
const busy = new WeakMap<FtpConnection, number>();

/** Puts our handlers over ftp-srv's in its (process-wide) command registry, once. */
function registerCommands(): void {
  if (registered) return;
  registered = true;
  installCommandReader((connection, data) =>
    ControlChannel.of(connection, contexts.get(connection.server)?.dataIdleTimeoutMs ?? 0).receive(data),
  );
  const commands = buildCommands((connection) => {
    const ctx = contexts.get(connection.server);
    if (!ctx) throw new Error('connection of an unknown server');
    return ctx;
  });
  for (const [directive, spec] of Object.entries(commands)) {
    const handler = spec.handler;
    commandRegistry[directive] = {
      directive,
      handler: async function (this: FtpConnection, ctx) {
        busy.set(this, (busy.get(this) ?? 0) + 1);
        try {
          return await handler.call(this, ctx);
        } finally {
          busy.set(this, (busy.get(this) ?? 1) - 1);
        }
      },
      syntax: spec.syntax,
      description: spec.syntax,
      flags: spec.noAuth ? { no_auth: true } : {},
    };
  }
}

/** Access to ftp-srv's own file system is never given: every file command is ours. */
const NO_LOCAL_FS = Object.freeze({});

/** The FTP front end: ftp-srv for connections and data channels, our handlers for every command on files. */
export class FtpServer {
  private readonly srv: FtpSrvInstance;
  private readonly sessions = new WeakMap<FtpConnection, Session>();
  /** Whether a session's account came from the local accounts or from the auth hook. */
  private readonly loginSources = new WeakMap<Session, 'local' | 'hook'>();
  readonly connections = new Set<FtpConnection>();
  private readonly passivePorts: PassivePortPool;
  private readonly passiveOverrides: { clients: AddressSet; address: string }[];
  private readonly bruteForce: BruteForceGuard;
  private readonly limiter: ConnectionLimiter;
  /** The implicit FTPS listener (ftp.tls.implicitPort), once listening. */
  private implicit: NetServer | undefined;

  constructor(private readonly options: FtpServerOptions) {
    registerCommands();
    const { ftp, logger } = options;
    const host = ftp.host.includes(':') ? `[${ftp.host}]` : ftp.host;
    this.srv = new FtpSrv({
      url: `ftp://${host}:${ftp.port}`,
      pasv_min: ftp.passive.portMin,
      pasv_max: ftp.passive.portMax,
      pasv_url: ftp.passive.address ?? '127.0.0.1',
      greeting: ftp.greeting,
      anonymous: false,
      timeout: 0,
      log: logger.child({ component: 'ftp-srv' }) as never,
    }) as unknown as FtpSrvInstance;
    this.passivePorts = new PassivePortPool(ftp.passive.portMin, ftp.passive.portMax);
    this.passiveOverrides = ftp.passive.overrides.map((o) => ({ clients: new AddressSet([o.cidr]), address: o.address }));
    this.bruteForce = new BruteForceGuard(ftp.bruteForce);
    this.limiter = new ConnectionLimiter(ftp.maxConnections, ftp.maxConnectionsPerIp);
    contexts.set(this.srv, {
      sessionOf: (connection) => this.sessions.get(connection),
      dataConnectionTimeoutMs: ftp.dataConnectionTimeoutSeconds * 1000,
      mkdExistingDirectory: ftp.mkdExistingDirectory,
      passiveAddress: (connection) => this.passiveAddress(connection),
      passivePorts: this.passivePorts,
      passiveListenHost: ftp.host,
      onOperation: (event) => options.onOperation(event),
      transferPolicy: options.transferPolicy,
      dataIdleTimeoutMs: ftp.dataIdleTimeoutSeconds * 1000,
      commandEnded: (connection) => {
        if (this.draining) setImmediate(() => this.closeIfIdle(connection));
      },
      tls: options.tls,
      tlsRequired: (connection, username = connection.username ?? '') =>
        ftp.requireTls ||
        this.sessions.get(connection)?.account.requireTls === true ||
        options.accountRequiresTls?.(username) === true,
    });
    // Implicit FTPS: the control connection is TLS from the start, and so are data connections
    // until the client asks for PROT C.
    this.srv.on('connect', ({ connection }: { connection: FtpConnection }) => {
      if (controlProtected(connection.commandSocket)) dataProtection(connection).level = 'P';
    });
    this.srv.on('connect', ({ connection }: { connection: FtpConnection }) => this.onConnect(connection));
    this.srv.on('login', (data: { connection: FtpConnection; username: string; password: string }, resolve: (v: unknown) => void, reject: (e: Error) => void) => {
      this.login(data.connection, data.username, data.password).then(
        (v) => (options.onLogin?.('ok'), resolve(v)),
        (e: Error) => (options.onLogin?.('failed'), reject(e)),
      );
    });
    this.srv.on('client-error', ({ error, context }: { error: Error; context: string }) => {
      logger.debug({ err: error, context }, 'client connection error');
    });
  }

  /** Admission (limits, bans) and the login and idle timers of a new control connection. */
  private onConnect(connection: FtpConnection): void {
    const { ftp, logger } = this.options;
    const socket = connection.commandSocket;
    const clientIp = normalizeIp(socket.remoteAddress);
    const refuse = (reason: string, message: string) => {
      logger.warn({ event: 'connection-refused', clientIp, reason }, 'connection refused');
      // ftp-srv already listens for commands and is about to greet: silence both.
      socket.removeAllListeners('data');
      connection.reply = async () => {};
      socket.end(`421 ${message}\r\n`);
      setTimeout(() => socket.destroy(), 2000).unref();
    };
    const bannedMs = this.bruteForce.bannedFor(clientIp);
    if (bannedMs > 0) return refuse('banned', 'Too many failed logins; try again later');
    const admitted = this.limiter.admit(clientIp);
    if ('refused' in admitted) {
      return refuse(admitted.refused, admitted.refused === 'max-connections' ? 'Too many connections' : 'Too many connections from your address');
    }
    this.connections.add(connection);

    const timeout = (what: string) => {
      clearTimeout(loginTimer);
      clearTimeout(idleTimer);
      logger.info({ event: 'timeout', session: connection.id, clientIp, what }, `${what} timeout; closing connection`);
      void connection.close(421, `${what === 'login' ? 'Login' : 'Idle'} timeout; closing connection`);
    };
    const loginTimer = setTimeout(() => {
      if (!connection.authenticated) timeout('login');
    }, ftp.loginTimeoutSeconds * 1000);
    let lastActivity = Date.now();
    let idleTimer: NodeJS.Timeout | undefined;
    const idleMs = ftp.idleTimeoutSeconds * 1000;
    const checkIdle = () => {
      if (socket.destroyed) return;
      const due = lastActivity + idleMs - Date.now();
      if ((busy.get(connection) ?? 0) > 0) lastActivity = Date.now();
      else if (due <= 0) return timeout('idle');
      idleTimer = setTimeout(checkIdle, Math.max(due, 1000));
    };
    if (idleMs > 0) idleTimer = setTimeout(checkIdle, idleMs);
    socket.on('data', () => (lastActivity = Date.now()));
    socket.once('close', () => {
      clearTimeout(loginTimer);
      clearTimeout(idleTimer);
      admitted.release();
      this.connections.delete(connection);
    });
  }

  private async login(connection: FtpConnection, username: string, password: string): Promise<unknown> {
    const clientIp = normalizeIp(connection.ip);
    const log = this.options.logger.child({ session: connection.id, clientIp, user: username });
    if (this.bruteForce.bannedFor(clientIp) > 0) {
      log.warn({ event: 'login', result: 'banned' }, 'login refused: address banned after too many failures');
      await sleep(this.options.ftp.loginFailureDelayMs);
      throw new Error('Login incorrect');
    }
    const result = await this.options.authenticator.login(username, password, clientIp);
    if (!result.ok) {
      log.warn({ event: 'login', result: 'failed', reason: result.reason }, 'login failed');
      if (this.bruteForce.recordFailure(clientIp)) {
        log.warn({ event: 'brute-force-ban', banSeconds: this.options.ftp.bruteForce.banSeconds }, 'address banned after too many failed logins');
      }
      throw new Error('Login incorrect');
    }
    if (result.account.allowFrom && !new AddressSet(result.account.allowFrom).has(clientIp)) {
      log.warn({ event: 'login', result: 'address-not-allowed' }, 'login refused: client address not in allowFrom');
      this.bruteForce.recordFailure(clientIp);
      await sleep(this.options.ftp.loginFailureDelayMs);
      throw new Error('Login incorrect');
    }
    // An auth-hook account's requireTls is known only now (a local one was refused at USER).
    if (result.account.requireTls && !controlProtected(connection.commandSocket)) {
      log.warn({ event: 'login', result: 'tls-required' }, 'login refused: account requires TLS');
      throw new Error('TLS required: use AUTH TLS (explicit FTPS) or implicit FTPS before logging in');
    }
    const session = new Session(result.account, this.options.storeFor(result.account, { clientIp }), log);
    this.loginSources.set(session, result.source);
    this.sessions.set(connection, session);
    log.info({ event: 'login', result: 'ok', bucket: result.account.bucket, prefix: result.account.prefix }, 'login');
    return { fs: NO_LOCAL_FS, cwd: '/' };
  }

  private async passiveAddress(connection: FtpConnection): Promise<string> {
    const override = this.passiveOverrides.find((o) => o.clients.has(connection.commandSocket.remoteAddress));
    const configured = override?.address ?? this.options.ftp.passive.address;
    if (configured) {
      if (isIP(configured)) return configured;
      return (await lookup(configured, { family: 4 })).address;
    }
    // Unset: the address the client reached us on, which is right on a flat network.
    return (connection.commandSocket.localAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
  }

  async listen(): Promise<AddressInfo> {
    await this.srv.listen();
    const address = this.srv.server.address() as AddressInfo;
    for (const warning of passiveWarnings(this.options.ftp, address.port)) {
      this.options.logger.warn({ event: 'misconfiguration' }, warning);
    }
    return address;
  }

  /**
   * Starts the implicit FTPS listener when ftp.tls.implicitPort is set: each connection's TLS
   * handshake is done first, then it is served exactly like one on the control port.
   */
  async listenImplicit(): Promise<AddressInfo | undefined> {
    const { ftp, tls, logger } = this.options;
    if (!tls || ftp.tls.implicitPort === undefined) return undefined;
    // The same secure context as AUTH TLS and data connections: a client resuming the control
    // connection's TLS session on a data connection (lftp/GnuTLS) finds it, and reloads apply to all.
    const server = createNetServer({ pauseOnConnect: true }, (socket) => {
      const secure = serverTlsSocket(socket, tls.secureContext, IMPLICIT_HANDSHAKE_TIMEOUT_MS, logger);
      handshake(secure).then(
        () => this.srv.server.emit('connection', secure),
        () => logger.debug({ clientIp: normalizeIp(socket.remoteAddress) }, 'implicit FTPS handshake failed'),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(ftp.tls.implicitPort, ftp.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => logger.error({ err }, 'implicit FTPS listener error'));
    this.implicit = server;
    return server.address() as AddressInfo;
  }

  /**
   * Closes (421) the control connection of every session of the local accounts named (accounts
   * removed from the accounts file); a transfer in flight is aborted. Returns how many were closed.
   */
  closeSessionsOf(usernames: ReadonlySet<string>): number {
    let closed = 0;
    for (const connection of this.connections) {
      const session = this.sessions.get(connection);
      if (!session || this.loginSources.get(session) !== 'local' || !usernames.has(session.account.username)) continue;
      session.log.info({ event: 'session-closed', reason: 'account-removed' }, 'account removed; closing session');
      void connection.close(421, 'Account removed; closing connection').catch(() => undefined);
      closed++;
    }
    return closed;
  }

  /** Passive ports of the range and how many are held now (metrics). */
  passivePortUsage(): { total: number; inUse: number } {
    return { total: this.passivePorts.size, inUse: this.passivePorts.inUse };
  }

  /**
   * Graceful shutdown: stops accepting connections, closes idle ones with 421 at once and the
   * others as soon as their command (transfer) in flight has replied; at `timeoutMs` whatever still
   * runs is cut off (its control connection destroyed, so an upload aborts its multipart upload
   * and nothing is committed). Resolves when every connection is gone and ftp-srv is closed.
   */
  async drain(timeoutMs: number): Promise<{ cutOff: number }> {
    const { logger } = this.options;
    this.draining = true;
    const server = this.srv.server;
    const closeServer = server.close.bind(server);
    server.close();
    // ftp-srv's close() below closes the listener again, which is no error here.
    server.close = ((callback?: (err?: Error) => void) => (server.listening ? closeServer(callback) : (callback?.(), server))) as typeof server.close;
    this.implicit?.close();
    this.srv.on('connect', ({ connection }: { connection: FtpConnection }) => void this.closeIfIdle(connection));
    for (const connection of this.connections) void this.closeIfIdle(connection);
    logger.info({ event: 'drain', connections: this.connections.size, timeoutMs }, 'draining: waiting for transfers in flight');
    const deadline = Date.now() + timeoutMs;
    while (this.connections.size > 0 && Date.now() < deadline) {
      await sleep(Math.min(100, deadline - Date.now()));
      // Commands outside sessionCommand (PASV, TYPE, ...) do not report their end: look again.
      for (const connection of this.connections) void this.closeIfIdle(connection);
    }
    const cutOff = this.connections.size;
    if (cutOff > 0) {
      logger.warn({ event: 'drain-timeout', connections: cutOff }, 'drain timeout: aborting what still runs');
      const cut = [...this.connections];
      for (const connection of cut) connection.commandSocket.destroy();
      // Let the aborted handlers finish (abort their multipart uploads) before the process goes.
      const abortDeadline = Date.now() + 15_000;
      while (cut.some((c) => (busy.get(c) ?? 0) > 0) && Date.now() < abortDeadline) await sleep(50);
    }
    await this.close();
    return { cutOff };
  }

  private draining = false;
  private readonly drainingClosed = new WeakSet<FtpConnection>();

  /** While draining: a connection with no command in flight gets 421 and is closed. */
  private async closeIfIdle(connection: FtpConnection): Promise<void> {
    if ((busy.get(connection) ?? 0) > 0 || this.drainingClosed.has(connection)) return;
    this.drainingClosed.add(connection);
    const socket = connection.commandSocket;
    try {
      await connection.reply(421, 'Service shutting down; closing control connection');
    } catch {
      // Already gone.
    }
    socket.end();
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  /** Stops listening and closes every connection; transfers in flight are aborted. */
  async close(): Promise<void> {
    this.implicit?.close();
    await this.srv.close();
  }
}
