import { EventEmitter, once } from 'node:events';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import pino from 'pino';
import { accountSchema, type Permission } from '../../src/config/schema.js';
import { COMMANDS, commandTable, type CommandContext } from '../../src/ftp/commands/index.js';
import { Connection, type ActiveDataConnector, type ControlPeer, type DataConnector, type ReplyLetter } from '../../src/ftp/connection.js';
import type { OperationEvent } from '../../src/sessions/operations.js';
import { PassivePortPool } from '../../src/ftp/passive-ports.js';
import { Session } from '../../src/sessions/session.js';
import { MemoryFileStore } from './memory-file-store.js';

/** One reply as the client would read it: its code and its lines' texts. */
export interface SentReply {
  code: number;
  lines: string[];
}

/** A data connection handed to the next transfer command at once. */
export class ReadyDataConnector implements DataConnector {
  readonly type = 'passive' as const;
  ended = false;
  constructor(readonly socket: Socket) {}
  waitForConnection(): Promise<Socket> {
    return Promise.resolve(this.socket);
  }
  end(): void {
    this.ended = true;
  }
}

export interface FakeConnectionOptions {
  /** Logged in with these permissions (default: all); `false`: not logged in. */
  login?: readonly Permission[] | false;
  context?: Partial<CommandContext>;
  store?: MemoryFileStore;
  remoteAddress?: string;
}

/**
 * A Connection over a fake control peer: replies are recorded instead of written, the command
 * socket is an inert emitter, files live in a MemoryFileStore. Commands run through the command
 * table exactly as the control channel hands them over (login check, permission, handler).
 */
export function fakeConnection(options: FakeConnectionOptions = {}) {
  const replies: SentReply[] = [];
  const events: OperationEvent[] = [];
  const store = options.store ?? new MemoryFileStore();
  const log = pino({ level: 'silent' });
  const remoteAddress = options.remoteAddress ?? '127.0.0.1';
  const commandSocket = Object.assign(new EventEmitter(), {
    remoteAddress,
    localAddress: '127.0.0.1',
    destroyed: false,
    readableEnded: false,
    pause() {},
    resume() {},
  }) as unknown as Socket;
  let closed: { code?: number; message?: string } | undefined;
  const peer: ControlPeer = {
    id: 'fake-1',
    log,
    commandSocket,
    async reply(code: number, ...letters: ReplyLetter[]) {
      const lines = letters.length === 0 ? [''] : letters.map((l) => (typeof l === 'string' ? l : l.message));
      replies.push({ code, lines });
    },
    async close(code?: number, message?: string) {
      closed = { code, message };
      if (code) replies.push({ code, lines: [message ?? ''] });
    },
    activeConnector(): ActiveDataConnector {
      throw new Error('no active connections in unit tests');
    },
    startTls() {
      throw new Error('no TLS in unit tests');
    },
  };
  const context = fakeContext({ onOperation: (event) => events.push(event), ...options.context });
  const connection = new Connection(peer, context, commandTable);
  const account = accountSchema.parse({
    username: 'cam01',
    passwordHash: '$2b$10$' + 'a'.repeat(53),
    bucket: 'uploads',
    ...(options.login ? { permissions: [...options.login] } : {}),
  });
  if (options.login !== false) connection.session = new Session(account, store, log);

  /**
   * Runs one command line through the command table; the replies it sent. Throws when the handler
   * called a FileStore method its row of the table does not list (the `store` column).
   */
  const run = async (line: string): Promise<SentReply[]> => {
    const space = line.indexOf(' ');
    const directive = (space < 0 ? line : line.slice(0, space)).toUpperCase();
    const before = replies.length;
    const callsBefore = store.calls.length;
    await commandTable.dispatch(connection, { directive, arg: space < 0 ? null : line.slice(space + 1) });
    const declared: readonly string[] = COMMANDS[directive]?.store ?? [];
    const undeclared = store.calls.slice(callsBefore).filter((m) => !declared.includes(m));
    if (undeclared.length > 0) throw new Error(`${directive} called FileStore.${undeclared.join(', ')} not in its table row`);
    return replies.slice(before);
  };
  /** Runs one command line; its last reply. */
  const send = async (line: string): Promise<SentReply> => {
    const sent = await run(line);
    const last = sent.at(-1);
    if (!last) throw new Error(`no reply to ${line}`);
    return last;
  };
  return { connection, peer, store, replies, events, context, run, send, closed: () => closed };
}

/** The server around a connection, with settings for tests: nobody logs in, no TLS, a small passive range. */
export function fakeContext(overrides: Partial<CommandContext> = {}): CommandContext {
  return {
    dataConnectionTimeoutMs: 2000,
    tlsHandshakeTimeoutMs: 2000,
    passiveAddress: async () => '127.0.0.1',
    passivePorts: new PassivePortPool(40000, 40009, 10),
    passiveListenHost: '127.0.0.1',
    ipv6PrefixLength: 64,
    onOperation: () => undefined,
    dataIdleTimeoutMs: 0,
    tls: undefined,
    tlsRequired: () => false,
    login: async () => {
      throw new Error('Login incorrect');
    },
    ...overrides,
  };
}

/** Both ends of a loopback TCP connection: the server's (a data connection as a handler gets it) and the client's. */
export async function socketPair(): Promise<{ server: Socket; client: Socket }> {
  const listener = createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const accepted = once(listener, 'connection') as Promise<[Socket]>;
  const client = connect((listener.address() as AddressInfo).port, '127.0.0.1');
  const [server] = await accepted;
  listener.close();
  return { server, client };
}

/** Everything a socket receives until its end. */
export async function readAll(socket: Socket): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}
