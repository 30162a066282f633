import { lookup } from 'node:dns/promises';
import { createServer as createNetServer, isIP, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Authenticator, LoginResult } from '../accounts/authenticator.js';
import type { AccountConfig, BridgeConfig } from '../config/schema.js';
import type { FileStore } from '../storage/object-store.js';
import { commandTable, type CommandContext } from './commands/index.js';
import { Connection, type ControlPeer } from './connection.js';
import { ControlListener } from './ftp-srv-adapter.js';
import type { OperationListener } from '../sessions/operations.js';
import { Session } from '../sessions/session.js';
import { controlProtected, handshake, serverTlsSocket, type TlsCredentials } from './tls.js';
import type { TransferPolicy } from '../sessions/transfer-policy.js';
import { AddressSet, BruteForceGuard, clientKey, ConnectionLimiter, LogThrottle, normalizeIp, type ConnectionRefusal } from '../sessions/access-control.js';
import { PassivePortPool, passiveWarnings } from './passive-ports.js';
import { CLIENT_BANNED, LOGIN_REFUSED } from './replies.js';

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
  /** The brute-force guard and connection limits, when shared with another front end (SFTP); else its own from `ftp`. */
  bruteForce?: BruteForceGuard;
  limiter?: ConnectionLimiter;
}

/** A connection's slot in the connection limits; `release` (idempotent) when it closes. */
type Admission = { release: () => void };
/** Why a connection is turned away, and the text of its 421. */
type Refusal = { refused: 'banned' | ConnectionRefusal; message: string };

/** A limiter's verdict with the text of the 421 of a refusal. */
function refusalText(admitted: Admission | { refused: ConnectionRefusal }): Admission | Refusal {
  if (!('refused' in admitted)) return admitted;
  const message = admitted.refused === 'max-connections' ? 'Too many connections' : 'Too many connections from your address';
  return { refused: admitted.refused, message };
}

/** The FTP front end: ftp-srv (ftp-srv-adapter.ts) accepts connections, our command table answers every command. */
export class FtpServer {
  private readonly listener: ControlListener;
  private readonly context: CommandContext;
  readonly connections = new Set<Connection>();
  private readonly passivePorts: PassivePortPool;
  private readonly passiveOverrides: { clients: AddressSet; address: string }[];
  private readonly bruteForce: BruteForceGuard;
  private readonly limiter: ConnectionLimiter;
  /** The implicit FTPS listener (ftp.tls.implicitPort), once listening. */
  private implicit: NetServer | undefined;
  /**
   * Admissions taken before ftp-srv sees the socket (`gate`; an implicit FTPS connection's at TCP
   * accept, before its handshake), which onConnect takes instead of counting the connection again.
   */
  private readonly admitted = new WeakMap<Socket, Admission>();

  constructor(private readonly options: FtpServerOptions) {
    const { ftp, logger } = options;
    this.passivePorts = new PassivePortPool(ftp.passive.portMin, ftp.passive.portMax, ftp.passive.maxPerClient);
    this.passiveOverrides = ftp.passive.overrides.map((o) => ({ clients: new AddressSet([o.cidr]), address: o.address }));
    this.bruteForce = options.bruteForce ?? new BruteForceGuard(ftp.bruteForce);
    this.limiter = options.limiter ?? new ConnectionLimiter(ftp.maxConnections, ftp.maxConnectionsPerIp, ftp.bruteForce.ipv6PrefixLength);
    this.context = {
      dataConnectionTimeoutMs: ftp.dataConnectionTimeoutSeconds * 1000,
      tlsHandshakeTimeoutMs: ftp.tls.handshakeTimeoutSeconds * 1000,
      mkdExistingDirectory: ftp.mkdExistingDirectory,
      passiveAddress: (connection) => this.passiveAddress(connection),
      passivePorts: this.passivePorts,
      passiveListenHost: ftp.host,
      ipv6PrefixLength: ftp.bruteForce.ipv6PrefixLength,
      onOperation: (event) => options.onOperation(event),
      transferPolicy: options.transferPolicy,
      dataIdleTimeoutMs: ftp.dataIdleTimeoutSeconds * 1000,
      commandEnded: (connection) => {
        if (this.draining) setImmediate(() => this.closeIfIdle(connection));
      },
      tls: options.tls,
      tlsRequired: (connection) => ftp.requireTls || connection.session?.account.requireTls === true,
      login: (connection, username, password) =>
        this.login(connection, username, password).then(
          () => options.onLogin?.('ok'),
          (err: unknown) => {
            options.onLogin?.('failed');
            throw err;
          },
        ),
    };
    this.listener = new ControlListener(
      { host: ftp.host, port: ftp.port, greeting: ftp.greeting, passive: ftp.passive, log: logger },
      { gate: (socket) => this.gate(socket), accept: (peer) => this.onConnect(peer), closed: (connection) => this.connections.delete(connection) },
    );
  }

  /** One "connection refused" line per client and reason every 10 s, with the count of those suppressed. */
  private readonly refusalLog = new LogThrottle(10_000);

  private logRefusal(clientIp: string, reason: string, listener?: 'implicit'): void {
    const suppressed = this.refusalLog.admit(`${clientKey(clientIp, this.options.ftp.bruteForce.ipv6PrefixLength)} ${reason}`);
    if (suppressed === undefined) return;
    this.options.logger.warn({ event: 'connection-refused', clientIp, reason, ...(listener ? { listener } : {}), ...(suppressed ? { suppressed } : {}) }, 'connection refused');
  }

  /**
   * Bans and connection limits for a new connection from `clientIp`: a slot to release when it
   * closes, or why not. The limits are cluster-wide when Redis is available (`admitShared`).
   */
  private async admit(clientIp: string): Promise<Admission | Refusal> {
    if (this.bruteForce.bannedFor(clientIp) > 0) return { refused: 'banned', message: CLIENT_BANNED.message };
    return refusalText(await this.limiter.admitShared(clientIp));
  }

  /**
   * Admission of a control-port connection before ftp-srv greets it (the limits may ask Redis,
   * within its command time-out); a refused one gets its 421 here and is closed.
   */
  private async gate(socket: Socket): Promise<boolean> {
    if (this.admitted.has(socket)) return true;
    socket.on('error', () => undefined);
    const clientIp = normalizeIp(socket.remoteAddress);
    const admitted = await this.admit(clientIp);
    if ('refused' in admitted) {
      this.logRefusal(clientIp, admitted.refused);
      socket.end(`421 ${admitted.message}\r\n`);
      setTimeout(() => socket.destroy(), 2000).unref();
      return false;
    }
    if (socket.destroyed) {
      admitted.release();
      return false;
    }
    this.admitted.set(socket, admitted);
    return true;
  }

  /** `admit` on this replica's own counts, for a connection that did not pass `gate`. */
  private admitLocal(clientIp: string): Admission | Refusal {
    if (this.bruteForce.bannedFor(clientIp) > 0) return { refused: 'banned', message: CLIENT_BANNED.message };
    return refusalText(this.limiter.admit(clientIp));
  }

  /**
   * The login and idle timers of a new control connection, admitted already (limits, bans) by
   * `gate` at TCP accept, or for an implicit FTPS connection before its handshake (listenImplicit).
   * ftp-srv emits 'connect' synchronously in its listener's 'connection' handler, before its
   * greeting and with the socket paused.
   */
  private onConnect(peer: ControlPeer): Connection | { refuse: string } {
    const { ftp, logger } = this.options;
    const socket = peer.commandSocket;
    const clientIp = normalizeIp(socket.remoteAddress);
    const admitted = this.admitted.get(socket) ?? this.admitLocal(clientIp);
    this.admitted.delete(socket);
    if ('refused' in admitted) {
      this.logRefusal(clientIp, admitted.refused);
      return { refuse: admitted.message };
    }
    const connection = new Connection(peer, this.context, commandTable);
    // Implicit FTPS: the control connection is TLS from the start, and so are data connections
    // until the client asks for PROT C.
    if (controlProtected(socket)) connection.protection.level = 'P';
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
    let idleTimer: NodeJS.Timeout | undefined;
    const idleMs = ftp.idleTimeoutSeconds * 1000;
    const checkIdle = () => {
      if (socket.destroyed) return;
      const due = connection.lastActivity + idleMs - Date.now();
      if (connection.busy > 0) connection.lastActivity = Date.now();
      else if (due <= 0) return timeout('idle');
      idleTimer = setTimeout(checkIdle, Math.max(due, 1000));
    };
    if (idleMs > 0) idleTimer = setTimeout(checkIdle, idleMs);
    socket.once('close', () => {
      clearTimeout(loginTimer);
      clearTimeout(idleTimer);
      admitted.release();
    });
    if (this.draining) void this.closeIfIdle(connection);
    return connection;
  }

  /**
   * PASS. The attempt takes its brute-force slot before the password is checked, and every
   * refusal — whatever its reason — answers the same `LOGIN_REFUSED` at the same time after the
   * PASS arrived (`authenticator.refusalDelayMs`, or a multiple of it), which hides how long the
   * check took.
   */
  private async login(connection: Connection, username: string, password: string): Promise<void> {
    const arrived = performance.now();
    const clientIp = normalizeIp(connection.remoteAddress);
    const log = this.options.logger.child({ session: connection.id, clientIp, user: username });
    // A check that outlasts the delay (a loaded machine) is rounded up to a whole multiple of
    // it, so the reply time still tells at most which multiple, not how long the check took.
    const answerRefusal = async () => {
      const step = this.options.authenticator.refusalDelayMs;
      const elapsed = performance.now() - arrived;
      if (step > 0) await sleep(Math.max(1, Math.ceil(elapsed / step)) * step - elapsed);
    };
    const attempt = await this.bruteForce.begin(clientIp);
    if (attempt === 'banned') {
      log.warn({ event: 'login', result: 'banned' }, 'login refused: address banned after too many failed logins');
      await answerRefusal();
      // The PASS handler's own reply then finds the connection closed.
      await connection.close(CLIENT_BANNED.code, CLIENT_BANNED.message);
      throw new Error(CLIENT_BANNED.message);
    }
    let refusal: { result: string; reason?: string } | undefined;
    let result: LoginResult | undefined;
    try {
      result = await this.options.authenticator.login(username, password, clientIp);
      if (!result.ok) refusal = { result: 'failed', reason: result.reason };
      else if (result.account.allowFrom && !new AddressSet(result.account.allowFrom).has(clientIp)) refusal = { result: 'address-not-allowed' };
      // Known only now for every account, so a USER in the clear tells nothing about the name.
      else if (result.account.requireTls && !controlProtected(connection.commandSocket)) refusal = { result: 'tls-required' };
    } catch (err) {
      log.error({ err }, 'login check failed');
      refusal = { result: 'error' };
    }
    if (refusal || !result?.ok) {
      log.warn({ event: 'login', ...refusal }, 'login failed');
      if (await attempt.failed()) {
        log.warn({ event: 'brute-force-ban', banSeconds: this.options.ftp.bruteForce.banSeconds }, 'address banned after too many failed logins');
      }
      await answerRefusal();
      throw new Error(LOGIN_REFUSED.message);
    }
    attempt.succeeded();
    connection.session = new Session(result.account, this.options.storeFor(result.account, { clientIp }), log);
    connection.loginSource = result.source;
    log.info({ event: 'login', result: 'ok', bucket: result.account.bucket, prefix: result.account.prefix }, 'login');
  }

  private async passiveAddress(connection: Connection): Promise<string> {
    const override = this.passiveOverrides.find((o) => o.clients.has(connection.remoteAddress));
    const configured = override?.address ?? this.options.ftp.passive.address;
    if (configured) {
      if (isIP(configured)) return configured;
      return (await lookup(configured, { family: 4 })).address;
    }
    // Unset: the address the client reached us on, which is right on a flat network.
    return normalizeIp(connection.commandSocket.localAddress ?? '127.0.0.1');
  }

  async listen(): Promise<AddressInfo> {
    const address = await this.listener.listen();
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
      // Bans and limits apply here, at accept: a connection that never handshakes holds a slot.
      const clientIp = normalizeIp(socket.remoteAddress);
      socket.on('error', () => undefined);
      void this.admit(clientIp).then((admitted) => {
        if ('refused' in admitted || socket.destroyed) {
          if ('refused' in admitted) this.logRefusal(clientIp, admitted.refused, 'implicit');
          else admitted.release();
          // Before TLS there is no way to say 421: closed at once, without a handshake.
          socket.destroy();
          return;
        }
        const secure = serverTlsSocket(socket, tls.secureContext, ftp.tls.handshakeTimeoutSeconds * 1000, logger);
        secure.once('close', admitted.release);
        handshake(secure).then(
          () => {
            this.admitted.set(secure, admitted);
            this.listener.serve(secure);
          },
          () => logger.debug({ clientIp: normalizeIp(socket.remoteAddress) }, 'implicit FTPS handshake failed'),
        );
      });
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
      const session = connection.session;
      if (!session || connection.loginSource !== 'local' || !usernames.has(session.account.username)) continue;
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
    this.listener.stopAccepting();
    this.implicit?.close();
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
      while (cut.some((c) => c.busy > 0) && Date.now() < abortDeadline) await sleep(50);
    }
    await this.close();
    return { cutOff };
  }

  private draining = false;

  /** While draining: a connection with no command in flight gets 421 and is closed. */
  private async closeIfIdle(connection: Connection): Promise<void> {
    if (connection.busy > 0 || connection.drainClosed) return;
    connection.drainClosed = true;
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
    await this.listener.close();
  }
}
