import { lookup } from 'node:dns/promises';
import { isIP, type AddressInfo } from 'node:net';
import { FtpSrv } from 'ftp-srv';
import type { Logger } from 'pino';
import type { Authenticator } from '../accounts/authenticator.js';
import type { AccountConfig, BridgeConfig } from '../config/schema.js';
import type { FileStore } from '../storage/object-store.js';
import { buildCommands, type CommandContext } from './commands/index.js';
import type { OperationListener } from './operations.js';
import { commandRegistry, type FtpConnection, type FtpSrvInstance } from './ftp-srv-internals.js';
import { Session } from './session.js';

export interface FtpServerOptions {
  ftp: BridgeConfig['ftp'];
  authenticator: Authenticator;
  storeFor(account: AccountConfig): FileStore;
  logger: Logger;
  /** Told of every finished or failed file operation (audit log, metrics, events). */
  onOperation: OperationListener;
}

/** ftp-srv server instance → our context. The command registry is process-wide; contexts are not. */
const contexts = new WeakMap<object, CommandContext>();
let registered = false;

/** Puts our handlers over ftp-srv's in its (process-wide) command registry, once. */
function registerCommands(): void {
  if (registered) return;
  registered = true;
  const commands = buildCommands((connection) => {
    const ctx = contexts.get(connection.server);
    if (!ctx) throw new Error('connection of an unknown server');
    return ctx;
  });
  for (const [directive, spec] of Object.entries(commands)) {
    commandRegistry[directive] = {
      directive,
      handler: spec.handler,
      syntax: spec.syntax,
      description: spec.syntax,
      flags: spec.noAuth ? { no_auth: true } : {},
    };
  }
  // ftp-srv's APPE needs a local file system; appending is not offered yet.
  delete commandRegistry.APPE;
}

/** Access to ftp-srv's own file system is never given: every file command is ours. */
const NO_LOCAL_FS = Object.freeze({});

/** The FTP front end: ftp-srv for connections and data channels, our handlers for every command on files. */
export class FtpServer {
  private readonly srv: FtpSrvInstance;
  private readonly sessions = new WeakMap<FtpConnection, Session>();
  readonly connections = new Set<FtpConnection>();

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
    contexts.set(this.srv, {
      sessionOf: (connection) => this.sessions.get(connection),
      dataConnectionTimeoutMs: ftp.dataConnectionTimeoutSeconds * 1000,
      passiveAddress: (connection) => this.passiveAddress(connection),
      onOperation: (event) => options.onOperation(event),
    });
    this.srv.on('connect', ({ connection }: { connection: FtpConnection }) => {
      this.connections.add(connection);
      connection.commandSocket.once('close', () => this.connections.delete(connection));
    });
    this.srv.on('login', (data: { connection: FtpConnection; username: string; password: string }, resolve: (v: unknown) => void, reject: (e: Error) => void) => {
      this.login(data.connection, data.username, data.password).then(resolve, reject);
    });
    this.srv.on('client-error', ({ error, context }: { error: Error; context: string }) => {
      logger.debug({ err: error, context }, 'client connection error');
    });
  }

  private async login(connection: FtpConnection, username: string, password: string): Promise<unknown> {
    const log = this.options.logger.child({ session: connection.id, clientIp: connection.ip, user: username });
    const result = await this.options.authenticator.login(username, password);
    if (!result.ok) {
      log.warn({ event: 'login', result: 'failed' }, 'login failed');
      throw new Error('Login incorrect');
    }
    const session = new Session(result.account, this.options.storeFor(result.account), log);
    this.sessions.set(connection, session);
    log.info({ event: 'login', result: 'ok', bucket: result.account.bucket, prefix: result.account.prefix }, 'login');
    return { fs: NO_LOCAL_FS, cwd: '/' };
  }

  private async passiveAddress(connection: FtpConnection): Promise<string> {
    const configured = this.options.ftp.passive.address;
    if (configured) {
      if (isIP(configured)) return configured;
      return (await lookup(configured, { family: 4 })).address;
    }
    // Unset: the address the client reached us on, which is right on a flat network.
    return (connection.commandSocket.localAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
  }

  async listen(): Promise<AddressInfo> {
    await this.srv.listen();
    return this.srv.server.address() as AddressInfo;
  }

  /** Stops listening and closes every connection; transfers in flight are aborted. */
  async close(): Promise<void> {
    await this.srv.close();
  }
}
