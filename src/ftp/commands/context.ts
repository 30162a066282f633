import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { StorageError } from '../../storage/errors.js';
import { normalizeIp } from '../../sessions/access-control.js';
import { SessionError } from '../../sessions/errors.js';
import { transferOf } from '../control-channel.js';
import { attachTransfer } from '../data-transfer.js';
import { FtpError } from '../errors.js';
import type { CommandHandler, FtpCommand, FtpConnection } from '../ftp-srv-internals.js';
import type { OperationEvent, OperationListener } from '../../sessions/operations.js';
import type { PassivePortPool } from '../passive-ports.js';
import { replyFor } from '../replies.js';
import type { Session } from '../../sessions/session.js';
import { dataProtection, serverTlsSocket, type TlsCredentials } from '../tls.js';
import { whenAborted } from '../transfer-control.js';
import type { TransferPolicy } from '../../sessions/transfer-policy.js';

/** What the command handlers need from the server around them (one per FtpServer). */
export interface CommandContext {
  sessionOf(connection: FtpConnection): Session | undefined;
  dataConnectionTimeoutMs: number;
  /** ftp.tls.handshakeTimeoutSeconds: a TLS handshake (AUTH TLS, PROT P data connection) not done by then is dropped. */
  tlsHandshakeTimeoutMs: number;
  /** ftp.mkdExistingDirectory: how MKD of an existing directory is answered (default 'ok': 257). */
  mkdExistingDirectory?: 'ok' | 'error';
  /** Address announced in PASV replies for a connection. */
  passiveAddress(connection: FtpConnection): Promise<string>;
  /** The passive port range, shared by every connection of the server. */
  passivePorts: PassivePortPool;
  /** Where passive data listeners bind (the control listener's host). */
  passiveListenHost: string;
  /** IPv6 clients are one client per prefix of this length (ftp.bruteForce.ipv6PrefixLength): passive shares. */
  ipv6PrefixLength: number;
  onOperation: OperationListener;
  /** Quotas and bandwidth limits of transfers (none when omitted). */
  transferPolicy?: TransferPolicy;
  /** ftp.dataIdleTimeoutSeconds in ms: a transfer whose data connection moves no byte that long is aborted (0: never). */
  dataIdleTimeoutMs: number;
  /** Told after every session command's final reply (a draining server then closes idle connections). */
  commandEnded?(connection: FtpConnection): void;
  /** The FTPS certificate; undefined when ftp.tls is not configured (AUTH TLS is then refused). */
  tls: TlsCredentials | undefined;
  /**
   * Whether the connection must use TLS, control and data: ftp.requireTls, or requireTls of the
   * logged-in account (an account's own requireTls is never told before its login succeeds).
   */
  tlsRequired(connection: FtpConnection): boolean;
}

/** Finds the context of the server a connection belongs to (the ftp-srv registry is process-wide). */
export type ContextOf = (connection: FtpConnection) => CommandContext;

export interface CommandSpec {
  handler: CommandHandler;
  /** Allowed before login. */
  noAuth?: boolean;
  syntax: string;
  /** Whether the FEAT lines are announced on this server (default: always). */
  offered?(ctx: CommandContext): boolean;
  /** Line(s) this command adds to the FEAT reply; a function for lines that depend on the session's settings. */
  feat?: string[] | ((connection: FtpConnection | undefined) => string[]);
}

/** The argument exactly as sent: everything after the verb's one separating space (control-channel.ts). */
export function rawArgument(command: FtpCommand): string {
  return command.arg ?? '';
}

/** RFC 959 quoting of a path in a 257 reply: embedded quotes doubled. */
export const quotePath = (p: string) => `"${p.replace(/"/g, '""')}"`;

export function joinPath(dir: string, name: string): string {
  return dir === '/' ? '/' + name : `${dir}/${name}`;
}

type Body = (
  conn: FtpConnection,
  session: Session,
  arg: string,
  command: FtpCommand,
  previous: Partial<FtpCommand>,
) => Promise<unknown>;

/**
 * Wraps a command body that needs a logged-in session: any error it throws becomes the reply
 * from the one error table (replies.ts).
 */
export function sessionCommand(contextOf: ContextOf, body: Body): CommandHandler {
  return async function (this: FtpConnection, { command, previous_command }) {
    const ctx = contextOf(this);
    const session = ctx.sessionOf(this);
    try {
      if (!session) throw new FtpError('BAD_SEQUENCE', 'Not logged in');
      await body(this, session, rawArgument(command), command, previous_command);
    } catch (err) {
      const reply = replyFor(err);
      const level = err instanceof StorageError || err instanceof FtpError || err instanceof SessionError ? 'info' : 'error';
      session?.log[level]({ err, directive: command.directive, reply: reply.code }, 'command failed');
      await this.reply(reply.code, reply.message);
    } finally {
      ctx.commandEnded?.(this);
    }
  };
}

/**
 * A data connection as PROT asks for it right now: under PROT P, TLS over the TCP connection (the
 * server side waits for the client's hello, so clients may start the handshake before or after
 * the 150 reply).
 */
export function protectData(ctx: CommandContext, conn: FtpConnection, socket: Socket): Socket {
  if (dataProtection(conn).level === 'P' && ctx.tls) return serverTlsSocket(socket, ctx.tls.dataSecureContext, ctx.tlsHandshakeTimeoutMs, conn.log);
  return socket;
}

/**
 * Waits for the data connection set up by PASV/EPSV/PORT/EPRT and binds it to the transfer that
 * runs (data-transfer.ts attachTransfer); an ABOR or QUIT meanwhile ends the wait.
 */
export async function waitForData(contextOf: ContextOf, conn: FtpConnection): Promise<Socket> {
  const transfer = transferOf(conn);
  const data = await openDataConnection(contextOf, conn, transfer?.signal);
  if (transfer) attachTransfer(data, transfer);
  return data;
}

async function openDataConnection(contextOf: ContextOf, conn: FtpConnection, signal: AbortSignal | undefined): Promise<Socket> {
  const ctx = contextOf(conn);
  const protection = dataProtection(conn);
  if (protection.level !== 'P' && ctx.tlsRequired(conn)) {
    conn.connector.end();
    throw new FtpError('PROTECTION_REQUIRED', 'Data connections must be protected: send PBSZ 0 and PROT P');
  }
  let socket: Socket;
  let stopAbortWatch = () => undefined as void;
  try {
    socket = await new Promise<Socket>((resolve, reject) => {
      stopAbortWatch = whenAborted(signal, reject);
      conn.connector.waitForConnection({ timeout: ctx.dataConnectionTimeoutMs }).then(resolve, (err: unknown) =>
        reject(new FtpError('NO_DATA_CONNECTION', "Can't open data connection", { cause: err })),
      );
    });
  } catch (err) {
    // The connector's listener (and its port) goes, and so does a connection it accepts later.
    if (signal?.aborted) conn.connector.end();
    throw err;
  } finally {
    stopAbortWatch();
  }
  // The passive connector starts TLS when it accepts a connection under PROT P (clients such as
  // Go's jlaffaye/ftp before 2023 handshake before they send the transfer command); the active
  // connector opens plain TCP, and PROT may have changed since the connection was accepted.
  if (socket instanceof TLSSocket) {
    if (protection.level === 'P') return socket;
    conn.connector.end();
    throw new FtpError('NO_DATA_CONNECTION', "Can't open data connection: it was opened under PROT P");
  }
  return protectData(ctx, conn, socket);
}

/** Reports a finished or failed operation to the server's listener. */
export function report(
  contextOf: ContextOf,
  conn: FtpConnection,
  session: Session,
  fields: Omit<OperationEvent, 'sessionId' | 'user' | 'clientIp' | 'result' | 'code' | 'durationMs' | 'error'> & {
    started: number;
    error?: unknown;
    code?: number;
  },
): void {
  const { started, error, code, ...rest } = fields;
  const failed = error !== undefined;
  contextOf(conn).onOperation({
    ...rest,
    sessionId: conn.id,
    user: session.account.username,
    clientIp: normalizeIp(conn.ip),
    durationMs: Date.now() - started,
    result: failed ? 'error' : 'ok',
    code: failed ? replyFor(error).code : (code ?? 250),
    ...(failed ? { error: (error as { code?: string }).code ?? 'INTERNAL' } : {}),
  });
}
