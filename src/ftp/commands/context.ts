import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Permission } from '../../config/schema.js';
import type { FileStore } from '../../storage/object-store.js';
import { StorageError } from '../../storage/errors.js';
import { SessionError } from '../../sessions/errors.js';
import type { Connection } from '../connection.js';
import { attachTransfer } from '../data-transfer.js';
import { FtpError } from '../errors.js';
import type { OperationEvent, OperationListener } from '../../sessions/operations.js';
import type { ProxyProtocolGate } from '../../sessions/proxy-protocol.js';
import type { PassivePortPool } from '../passive-ports.js';
import { replyFor } from '../replies.js';
import type { Session } from '../../sessions/session.js';
import { serverTlsSocket, type TlsCredentials } from '../tls.js';
import { whenAborted } from '../transfer-control.js';
import type { TransferPolicy } from '../../sessions/transfer-policy.js';

/** What the command handlers need from the server around them (one per FtpServer). */
export interface CommandContext {
  dataConnectionTimeoutMs: number;
  /** ftp.tls.handshakeTimeoutSeconds: a TLS handshake (AUTH TLS, PROT P data connection) not done by then is dropped. */
  tlsHandshakeTimeoutMs: number;
  /** ftp.mkdExistingDirectory: how MKD of an existing directory is answered (default 'ok': 257). */
  mkdExistingDirectory?: 'ok' | 'error';
  /** Address announced in PASV replies for a connection. */
  passiveAddress(connection: Connection): Promise<string>;
  /** The passive port range, shared by every connection of the server. */
  passivePorts: PassivePortPool;
  /** Where passive data listeners bind (the control listener's host). */
  passiveListenHost: string;
  /** IPv6 clients are one client per prefix of this length (ftp.bruteForce.ipv6PrefixLength): passive shares. */
  ipv6PrefixLength: number;
  onOperation: OperationListener;
  /** Quotas and bandwidth limits of transfers (none when omitted). */
  transferPolicy?: TransferPolicy;
  /** ftp.proxyProtocol: passive data connections from a trusted proxy start with a PROXY header naming the client. */
  proxyProtocol?: ProxyProtocolGate;
  /** Told of a data connection refused for its PROXY header (a throttled log line). */
  proxyRefused?(connection: Connection, peer: string, reason: string): void;
  /** ftp.dataIdleTimeoutSeconds in ms: a transfer whose data connection moves no byte that long is aborted (0: never). */
  dataIdleTimeoutMs: number;
  /** Told after every session command's final reply (a draining server then closes idle connections). */
  commandEnded?(connection: Connection): void;
  /** The FTPS certificate; undefined when ftp.tls is not configured (AUTH TLS is then refused). */
  tls: TlsCredentials | undefined;
  /**
   * Whether the connection must use TLS, control and data: ftp.requireTls, or requireTls of the
   * logged-in account (an account's own requireTls is never told before its login succeeds).
   */
  tlsRequired(connection: Connection): boolean;
  /**
   * PASS: checks the password and, when it is right, sets the connection's session; otherwise
   * rejects with the text of the 530 (after closing the connection of a banned client).
   */
  login(connection: Connection, username: string, password: string): Promise<void>;
}

/** A command handler: the connection it came in on and its argument, verbatim ('' when none). */
export type CommandHandler = (connection: Connection, arg: string) => Promise<unknown>;

/** One row of the command table. */
export interface CommandSpec {
  handler: CommandHandler;
  /** The command is refused (530) before login. */
  loginRequired: boolean;
  /** The account must hold one of these, checked before the handler runs (550 otherwise). */
  permission?: readonly Permission[];
  /** Moves data over a data connection: runs with a TransferControl (ABOR, STAT, data idle timeout). */
  transfer?: boolean;
  /** Acts at once while a transfer runs instead of waiting its turn (control-channel.ts). */
  duringTransfer?: boolean;
  /** The FileStore methods the handler calls (docs/architecture.md's table is checked against it). */
  store?: readonly (keyof FileStore)[];
  /** Usage, for HELP. */
  syntax: string;
  /** What it does, for HELP. */
  help: string;
  /** Whether the FEAT lines are announced on this server (default: always). */
  offered?(ctx: CommandContext): boolean;
  /** Line(s) this command adds to the FEAT reply; a function for lines that depend on the connection's settings. */
  feat?: string[] | ((connection: Connection | undefined) => string[]);
}

/** RFC 959 quoting of a path in a 257 reply: embedded quotes doubled. */
export const quotePath = (p: string) => `"${p.replace(/"/g, '""')}"`;

export function joinPath(dir: string, name: string): string {
  return dir === '/' ? '/' + name : `${dir}/${name}`;
}

/** A command body that runs in a logged-in session. */
export type SessionBody = (connection: Connection, session: Session, arg: string) => Promise<unknown>;

/** State a refused command still consumes, as it would have had it run. */
type Consumed = 'restOffset' | 'renameFrom';

/**
 * A command that needs a logged-in session: the permission is checked first, and any error the
 * body throws becomes the reply from the one error table (replies.ts).
 */
export function sessionCommand(
  spec: Omit<CommandSpec, 'handler' | 'loginRequired'> & { consumes?: readonly Consumed[] },
  body: SessionBody,
): CommandSpec {
  const { consumes = [], ...row } = spec;
  return {
    ...row,
    loginRequired: true,
    handler: async (connection, arg) => {
      const session = connection.session;
      try {
        if (!session) throw new FtpError('BAD_SEQUENCE', 'Not logged in');
        if (row.permission && !session.permissions.hasAny(...row.permission)) {
          if (consumes.includes('restOffset')) session.takeRestOffset();
          if (consumes.includes('renameFrom')) session.renameFrom = undefined;
          throw new FtpError('PERMISSION_DENIED', 'Permission denied');
        }
        await body(connection, session, arg);
      } catch (err) {
        const reply = replyFor(err);
        const level = err instanceof StorageError || err instanceof FtpError || err instanceof SessionError ? 'info' : 'error';
        session?.log[level]({ err, directive: connection.directive, reply: reply.code }, 'command failed');
        await connection.reply(reply.code, reply.message);
      } finally {
        connection.server.commandEnded?.(connection);
      }
    },
  };
}

/**
 * A data connection as PROT asks for it right now: under PROT P, TLS over the TCP connection (the
 * server side waits for the client's hello, so clients may start the handshake before or after
 * the 150 reply).
 */
export function protectData(conn: Connection, socket: Socket): Socket {
  const ctx = conn.server;
  if (conn.protection.level === 'P' && ctx.tls) return serverTlsSocket(socket, ctx.tls.dataSecureContext, ctx.tlsHandshakeTimeoutMs, conn.log);
  return socket;
}

/**
 * Waits for the data connection set up by PASV/EPSV/PORT/EPRT and binds it to the transfer that
 * runs (data-transfer.ts attachTransfer); an ABOR or QUIT meanwhile ends the wait.
 */
export async function waitForData(conn: Connection): Promise<Socket> {
  const transfer = conn.transfer;
  const data = await openDataConnection(conn, transfer?.signal);
  if (transfer) attachTransfer(data, transfer);
  return data;
}

async function openDataConnection(conn: Connection, signal: AbortSignal | undefined): Promise<Socket> {
  const ctx = conn.server;
  const protection = conn.protection;
  if (protection.level !== 'P' && ctx.tlsRequired(conn)) {
    conn.endDataConnection();
    throw new FtpError('PROTECTION_REQUIRED', 'Data connections must be protected: send PBSZ 0 and PROT P');
  }
  let socket: Socket;
  let stopAbortWatch = () => undefined as void;
  try {
    socket = await new Promise<Socket>((resolve, reject) => {
      stopAbortWatch = whenAborted(signal, reject);
      conn.dataConnector.waitForConnection({ timeout: ctx.dataConnectionTimeoutMs }).then(resolve, (err: unknown) =>
        reject(new FtpError('NO_DATA_CONNECTION', "Can't open data connection", { cause: err })),
      );
    });
  } catch (err) {
    // The connector's listener (and its port) goes, and so does a connection it accepts later.
    if (signal?.aborted) conn.endDataConnection();
    throw err;
  } finally {
    stopAbortWatch();
  }
  // The passive connector starts TLS when it accepts a connection under PROT P (clients such as
  // Go's jlaffaye/ftp before 2023 handshake before they send the transfer command); the active
  // connector opens plain TCP, and PROT may have changed since the connection was accepted.
  if (socket instanceof TLSSocket) {
    if (protection.level === 'P') return socket;
    conn.endDataConnection();
    throw new FtpError('NO_DATA_CONNECTION', "Can't open data connection: it was opened under PROT P");
  }
  return protectData(conn, socket);
}

/** Reports a finished or failed operation to the server's listener. */
export function report(
  conn: Connection,
  session: Session,
  fields: Omit<OperationEvent, 'sessionId' | 'user' | 'clientIp' | 'result' | 'code' | 'durationMs' | 'error'> & {
    started: number;
    error?: unknown;
    code?: number;
  },
): void {
  const { started, error, code, ...rest } = fields;
  const failed = error !== undefined;
  conn.server.onOperation({
    ...rest,
    sessionId: conn.id,
    user: session.account.username,
    clientIp: conn.clientAddress,
    durationMs: Date.now() - started,
    result: failed ? 'error' : 'ok',
    code: failed ? replyFor(error).code : (code ?? 250),
    ...(failed ? { error: (error as { code?: string }).code ?? 'INTERNAL' } : {}),
  });
}
