import { randomUUID } from 'node:crypto';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import ssh2, { type AuthContext, type Connection, type ServerChannel } from 'ssh2';
import type { Authenticator } from '../accounts/authenticator.js';
import type { AccountConfig, BridgeConfig } from '../config/schema.js';
import { AddressSet, type BruteForceGuard, type ConnectionLimiter, normalizeIp } from '../sessions/access-control.js';
import type { OperationListener } from '../sessions/operations.js';
import { Session } from '../sessions/session.js';
import type { TransferPolicy } from '../sessions/transfer-policy.js';
import type { FileStore } from '../storage/object-store.js';
import type { HostKey } from './host-keys.js';
import { SftpSession } from './sftp-session.js';
import type { ReorderMemory } from './upload.js';

export interface SftpServerOptions {
  sftp: BridgeConfig['sftp'];
  /** A connection not logged in after this is closed (the same limit as FTP's `ftp.loginTimeoutSeconds`). */
  loginTimeoutSeconds: number;
  hostKeys: readonly HostKey[];
  authenticator: Authenticator;
  /** Shared with the FTP front end: failures of either count toward one ban. */
  bruteForce: BruteForceGuard;
  /** Shared with the FTP front end: one count of connections per client and in total. */
  limiter: ConnectionLimiter;
  storeFor(account: AccountConfig, session: { clientIp: string; protocol: 'sftp' }): FileStore;
  logger: Logger;
  onOperation: OperationListener;
  transferPolicy?: TransferPolicy;
  /** Memory for out-of-order writes of an account's upload from a client (the shared budget). */
  reorderMemory?(account: AccountConfig, clientIp: string): ReorderMemory;
  onLogin?(result: 'ok' | 'failed'): void;
}

/** Failed authentication attempts (password, or a signature that does not verify) before the connection is closed, as OpenSSH's MaxAuthTries. */
const MAX_AUTH_FAILURES = 6;
const AUTH_METHODS: ('publickey' | 'password')[] = ['publickey', 'password'];

/** How long a connection whose transfer just ended may stay during a drain, to leave by itself. */
const DRAIN_GRACE_MS = 2000;
/** How long a connection told to go may take to close its side before its socket is destroyed. */
const HANG_UP_GRACE_MS = 2000;

/**
 * Ends a connection: SSH disconnect and FIN, then, unless the peer closes too, the socket is
 * destroyed (a client that never reads or never answers would otherwise keep it half-open).
 */
function hangUp(client: Connection): void {
  client.end();
  const socket = (client as unknown as { _sock?: { destroyed: boolean; destroy(): void } })._sock;
  if (socket && !socket.destroyed) setTimeout(() => socket.destroy(), HANG_UP_GRACE_MS).unref();
}

interface PendingSocket {
  socket: Socket;
  loginTimer: NodeJS.Timeout;
}

/** One SSH connection and what it holds. */
interface SftpConnection {
  id: string;
  client: Connection;
  clientIp: string;
  log: Logger;
  account?: AccountConfig;
  loginSource?: 'local' | 'hook';
  channels: Set<SftpSession>;
  sessionsOpen: number;
  authFailures: number;
}

/**
 * The SFTP front end: an ssh2 server that serves only the `sftp` subsystem (shell, exec, port and
 * agent forwarding, X11 are refused) over the same accounts, brute-force guard, connection limits,
 * quotas, bandwidth and storage as FTP.
 */
export class SftpServer {
  readonly connections = new Set<SftpConnection>();
  private readonly server: ssh2.Server;
  private listener: NetServer | undefined;
  /** Admitted sockets until they close, by remote address and port (ssh2 reports both). */
  private readonly accepted = new Map<string, PendingSocket>();
  private draining = false;

  constructor(private readonly options: SftpServerOptions) {
    const { sftp, hostKeys } = options;
    this.server = new ssh2.Server(
      {
        hostKeys: hostKeys.map((k) => k.privateKey),
        algorithms: {
          kex: [...sftp.algorithms.kex],
          cipher: [...sftp.algorithms.cipher],
          hmac: [...sftp.algorithms.hmac],
          serverHostKey: [...sftp.algorithms.serverHostKey],
          compress: ['none'],
        } as ssh2.Algorithms,
        ident: 'ftp-s3-bridge',
      },
      (client, info) => this.onConnection(client, info),
    );
  }

  /**
   * Listens on our own TCP server and hands each admitted socket to ssh2: ssh2 itself sees a
   * connection only once the client sent its SSH version line, so limits, bans and the login
   * time-out apply here, at accept, or a client that never sends it would hold a socket forever.
   */
  async listen(): Promise<AddressInfo> {
    const { host, port } = this.options.sftp;
    const listener = createNetServer((socket) => void this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(port, host, () => {
        listener.off('error', reject);
        resolve();
      });
    });
    listener.on('error', (err: Error) => this.options.logger.error({ err }, 'SFTP listener error'));
    this.listener = listener;
    return listener.address() as AddressInfo;
  }

  /** Admission (bans, limits: cluster-wide when Redis is available) and the login time-out of a new TCP connection. */
  private async accept(socket: Socket): Promise<void> {
    const { logger, bruteForce, limiter, loginTimeoutSeconds } = this.options;
    const clientIp = normalizeIp(socket.remoteAddress);
    socket.on('error', () => undefined);
    const refusal = this.draining ? 'shutting-down' : bruteForce.bannedFor(clientIp) > 0 ? 'banned' : undefined;
    const admitted = refusal ? undefined : await limiter.admitShared(clientIp);
    if (refusal || !admitted || 'refused' in admitted) {
      const reason = refusal ?? (admitted && 'refused' in admitted ? admitted.refused : 'refused');
      logger.warn({ event: 'connection-refused', clientIp, protocol: 'sftp', reason }, 'connection refused');
      socket.destroy();
      return;
    }
    if (socket.destroyed) {
      admitted.release();
      return;
    }
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    const pending: PendingSocket = {
      socket,
      loginTimer: setTimeout(() => {
        logger.info({ event: 'timeout', clientIp, protocol: 'sftp', what: 'login' }, 'login timeout; closing connection');
        socket.destroy();
      }, loginTimeoutSeconds * 1000),
    };
    this.accepted.set(key, pending);
    socket.once('close', () => {
      clearTimeout(pending.loginTimer);
      admitted.release();
      this.accepted.delete(key);
    });
    this.server.injectSocket(socket);
  }

  private onConnection(client: Connection, info: { ip: string; port: number }): void {
    const { logger, sftp } = this.options;
    const clientIp = normalizeIp(info.ip);
    const id = randomUUID();
    const log = logger.child({ session: id, clientIp, protocol: 'sftp' });
    client.on('error', (err) => log.debug({ err }, 'SSH connection error'));
    const pending = this.accepted.get(`${info.ip}:${info.port}`);
    if (!pending) {
      hangUp(client);
      return;
    }
    const conn: SftpConnection = { id, client, clientIp, log, channels: new Set(), sessionsOpen: 0, authFailures: 0 };
    this.connections.add(conn);

    let lastActivity = Date.now();
    let idleTimer: NodeJS.Timeout | undefined;
    const idleMs = sftp.idleTimeoutSeconds * 1000;
    const checkIdle = () => {
      const due = lastActivity + idleMs - Date.now();
      if ([...conn.channels].some((c) => c.busy)) lastActivity = Date.now();
      else if (due <= 0) {
        log.info({ event: 'timeout', what: 'idle' }, 'idle timeout; closing connection');
        return hangUp(client);
      }
      idleTimer = setTimeout(checkIdle, Math.max(due, 1000));
    };
    client.once('close', () => {
      clearTimeout(idleTimer);
      for (const channel of conn.channels) channel.end();
      this.connections.delete(conn);
    });

    client.on('authentication', (ctx) => void this.authenticate(conn, ctx));
    client.on('ready', () => {
      clearTimeout(pending.loginTimer);
      if (idleMs > 0) idleTimer = setTimeout(checkIdle, idleMs);
      client.on('session', (accept, reject) => {
        if (conn.sessionsOpen >= sftp.maxSessionsPerConnection || this.draining) return reject();
        conn.sessionsOpen++;
        const session = accept();
        let counted = true;
        const release = () => {
          if (counted) conn.sessionsOpen--;
          counted = false;
        };
        session.once('close', release);
        session.on('sftp', (acceptSftp) => {
          const account = conn.account as AccountConfig;
          const channel = acceptSftp();
          const fileSession = new Session(account, this.options.storeFor(account, { clientIp, protocol: 'sftp' }), log.child({ user: account.username }));
          const served = new SftpSession(channel, {
            session: fileSession,
            sessionId: id,
            clientIp,
            transferPolicy: this.options.transferPolicy,
            onOperation: this.options.onOperation,
            memory: this.options.reorderMemory?.(account, clientIp),
            reorderWindowBytes: sftp.writeReorderWindowKiB * 1024,
            maxOpenHandles: sftp.maxOpenHandlesPerSession,
            onActivity: () => (lastActivity = Date.now()),
            isDraining: () => this.draining,
          });
          conn.channels.add(served);
          (channel as unknown as ServerChannel).once('close', () => {
            served.end();
            conn.channels.delete(served);
            release();
            if (this.draining) this.closeIfIdle(conn);
          });
        });
        // Everything but the sftp subsystem is refused.
        for (const refused of ['pty', 'shell', 'exec', 'subsystem', 'x11', 'auth-agent', 'env', 'signal', 'window-change']) {
          session.on(refused as 'shell', (_accept: unknown, rejectRequest?: () => void) => rejectRequest?.());
        }
      });
      client.on('tcpip', (_accept, rejectChannel) => rejectChannel());
      client.on('openssh.streamlocal', (_accept, rejectChannel) => rejectChannel());
      client.on('request', (_accept, rejectRequest) => rejectRequest?.());
    });
  }

  /**
   * One authentication request. Passwords go through the Authenticator (local hashes, else the
   * auth hook) under the shared brute-force guard, and a refusal is answered at the same delay
   * as FTP's; a public key is looked up among the local account's `publicKeys` (a key that is not
   * listed is no failed attempt: clients offer every key they hold), and a signature that does not
   * verify counts as a failed attempt. `allowFrom` applies to both.
   */
  private async authenticate(conn: SftpConnection, ctx: AuthContext): Promise<void> {
    const { authenticator, bruteForce, onLogin } = this.options;
    const { clientIp } = conn;
    const log = conn.log.child({ user: ctx.username });
    if (ctx.method !== 'password' && ctx.method !== 'publickey') return ctx.reject(AUTH_METHODS);
    if (ctx.method === 'publickey' && !ctx.signature) {
      // The client asks whether a key would do, before it signs with it: no secret involved.
      return authenticator.publicKeyLogin(ctx.username, ctx.key.data) ? ctx.accept() : ctx.reject(AUTH_METHODS);
    }
    const arrived = performance.now();
    const answerRefusal = async () => {
      const step = authenticator.refusalDelayMs;
      const elapsed = performance.now() - arrived;
      if (step > 0) await sleep(Math.max(1, Math.ceil(elapsed / step)) * step - elapsed);
    };
    const attempt = await bruteForce.begin(clientIp);
    if (attempt === 'banned') {
      log.warn({ event: 'login', result: 'banned' }, 'login refused: address banned after too many failed logins');
      await answerRefusal();
      onLogin?.('failed');
      hangUp(conn.client);
      return;
    }
    let account: AccountConfig | undefined;
    let source: 'local' | 'hook' = 'local';
    let refusal: { result: string; reason?: string } | undefined;
    try {
      if (ctx.method === 'password') {
        const result = await authenticator.login(ctx.username, ctx.password, clientIp, 'sftp');
        if (result.ok) {
          account = result.account;
          source = result.source;
        } else refusal = { result: 'failed', reason: result.reason };
      } else {
        const found = authenticator.publicKeyLogin(ctx.username, ctx.key.data);
        if (found && ctx.blob && ctx.signature && found.key.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) account = found.account;
        else refusal = { result: 'failed', reason: 'public key signature does not verify' };
      }
      if (account?.allowFrom && !new AddressSet(account.allowFrom).has(clientIp)) refusal = { result: 'address-not-allowed' };
    } catch (err) {
      log.error({ err }, 'login check failed');
      refusal = { result: 'error' };
    }
    if (refusal || !account) {
      log.warn({ event: 'login', method: ctx.method, ...refusal }, 'login failed');
      if (await attempt.failed()) log.warn({ event: 'brute-force-ban' }, 'address banned after too many failed logins');
      await answerRefusal();
      onLogin?.('failed');
      conn.authFailures++;
      if (conn.authFailures >= MAX_AUTH_FAILURES || bruteForce.bannedFor(clientIp) > 0) {
        ctx.reject();
        hangUp(conn.client);
        return;
      }
      return ctx.reject(AUTH_METHODS);
    }
    attempt.succeeded();
    conn.account = account;
    conn.loginSource = source;
    onLogin?.('ok');
    log.info({ event: 'login', result: 'ok', method: ctx.method, bucket: account.bucket, prefix: account.prefix }, 'login');
    ctx.accept();
  }

  /** Closes the connections of the local accounts named (removed from the accounts file); uploads in flight are aborted. */
  closeSessionsOf(usernames: ReadonlySet<string>): number {
    let closed = 0;
    for (const conn of this.connections) {
      if (!conn.account || conn.loginSource !== 'local' || !usernames.has(conn.account.username)) continue;
      conn.log.info({ event: 'session-closed', reason: 'account-removed' }, 'account removed; closing session');
      hangUp(conn.client);
      closed++;
    }
    return closed;
  }

  /**
   * Graceful stop: no new connections; connections without an open file are closed at once, the
   * others when their last transfer closes; at `timeoutMs` whatever remains is cut off (its uploads
   * aborted, nothing committed).
   */
  async drain(timeoutMs: number): Promise<{ cutOff: number }> {
    this.draining = true;
    this.listener?.close();
    for (const conn of this.connections) this.closeIfIdle(conn);
    const deadline = Date.now() + timeoutMs;
    while (this.connections.size > 0 && Date.now() < deadline) {
      await sleep(Math.min(100, Math.max(1, deadline - Date.now())));
      for (const conn of this.connections) this.closeIfIdle(conn);
    }
    const cutOff = this.connections.size;
    await this.close();
    return { cutOff };
  }

  /**
   * While draining: a connection with no file open is closed, but one whose transfer ended less
   * than DRAIN_GRACE_MS ago is given that long to close by itself: its client has its answer and is
   * typically leaving (a disconnect then would turn its finished batch into a failure).
   */
  private closeIfIdle(conn: SftpConnection): void {
    const channels = [...conn.channels];
    if (channels.some((c) => c.busy)) return;
    const lastTransfer = Math.max(0, ...channels.map((c) => c.lastTransferEnded));
    if (Date.now() - lastTransfer < DRAIN_GRACE_MS) return;
    hangUp(conn.client);
  }

  /** Stops listening and closes every connection; uploads in flight are aborted. */
  async close(): Promise<void> {
    this.draining = true;
    this.listener?.close();
    for (const conn of this.connections) {
      for (const channel of conn.channels) channel.end();
      hangUp(conn.client);
    }
    const deadline = Date.now() + 5000;
    while (this.connections.size > 0 && Date.now() < deadline) await sleep(20);
    // Sockets still open: not logged in yet, or a client that does not close its side.
    for (const { socket } of this.accepted.values()) socket.destroy();
  }
}
