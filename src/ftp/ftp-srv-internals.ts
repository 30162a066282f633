/**
 * Typed access to the parts of ftp-srv 4.6.3 the bridge builds on. Its published typings are
 * mostly `any`, and the command registry and connectors are not exported, so they are loaded by
 * path here, in the one module that knows ftp-srv's internal layout.
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { EventEmitter } from 'node:events';

const require = createRequire(import.meta.url);

export interface FtpCommand {
  directive: string;
  arg: string | null;
  flags: string[];
  raw: string;
}

export interface Connector {
  type: 'passive' | 'active' | false;
  socket: Socket | null;
  waitForConnection(options?: { timeout?: number; delay?: number }): Promise<Socket>;
  setupServer?(): Promise<import('node:net').Server>;
  setupConnection?(host: string, port: number, family?: number): Promise<void>;
  end(): void;
}

export interface FtpConnection extends EventEmitter {
  id: string;
  server: EventEmitter & { options: Record<string, unknown> };
  commandSocket: Socket;
  connector: Connector;
  username?: string;
  authenticated?: boolean;
  encoding: BufferEncoding;
  transferType: string;
  secure: boolean;
  ip: string;
  /** ftp-srv's per-connection child of the logger it was given (pino here). */
  log: import('pino').Logger;
  reply(options: number | Record<string, unknown>, ...letters: unknown[]): Promise<void>;
  close(code?: number, message?: string): Promise<void>;
  login(username: string, password: string): Promise<void>;
  /** ftp-srv's dispatch: registry lookup, 502 for an unknown verb, 530 before login, then the handler. */
  commands: { handle(command: FtpCommand): Promise<unknown> };
}

export interface HandlerContext {
  log: { error: (...a: unknown[]) => void };
  command: FtpCommand;
  previous_command: Partial<FtpCommand>;
}

export type CommandHandler = (this: FtpConnection, ctx: HandlerContext) => Promise<unknown> | unknown;

export interface CommandRegistration {
  directive: string;
  handler: CommandHandler;
  syntax?: string;
  description?: string;
  flags?: { no_auth?: boolean; feat?: string };
}

export const commandRegistry = require('ftp-srv/src/commands/registry') as Record<string, CommandRegistration>;

export const ActiveConnector = require('ftp-srv/src/connector/active') as new (connection: FtpConnection) => Connector;
/** The "no data connection set up" connector ftp-srv puts in place after a transfer. */
export const BaseConnector = require('ftp-srv/src/connector/base') as new (connection: FtpConnection) => Connector;

const FtpConnectionClass = require('ftp-srv/src/connection') as {
  prototype: { _handleData(this: FtpConnection, data: Buffer): unknown };
};

/**
 * Puts `receive` in place of ftp-srv's reading of the control connection, for every connection
 * made from now on (its constructor binds `_handleData` as the socket's 'data' listener). ftp-srv
 * parses a line itself (it strips every '"', takes words like "-x" as flags, splits on Telnet
 * bytes) and reads the next command only after the previous one ended, so ABOR could never stop a
 * transfer; `receive` (control-channel.ts) reads, splits and queues instead, and hands ftp-srv's
 * dispatch (`connection.commands.handle`) commands already parsed, which it takes as they are.
 */
export function installCommandReader(receive: (connection: FtpConnection, data: Buffer) => void): void {
  FtpConnectionClass.prototype._handleData = function (this: FtpConnection, data: Buffer) {
    receive(this, data);
  };
}

/** The FtpSrv instance as used here (its typings do not declare 'connect' or the listener types). */
export interface FtpSrvInstance {
  on(event: string, listener: (...args: never[]) => void): unknown;
  listen(): Promise<unknown>;
  close(): Promise<unknown>;
  server: import('node:net').Server;
  connections: Record<string, FtpConnection>;
}
