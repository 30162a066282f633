import type { Connection } from '../connection.js';
import type { CommandTable, FtpCommand } from '../control-channel.js';
import type { CommandContext, CommandSpec } from './context.js';
import { dataConnectionCommands } from './data-connection.js';
import { fileCommands } from './files.js';
import { hashCommands } from './hash.js';
import { listingCommands } from './listing.js';
import { protocolCommands } from './protocol.js';
import { tlsCommands } from './tls.js';
import { transferCommands } from './transfer.js';

export type { CommandContext, CommandHandler, CommandSpec } from './context.js';

/** FEAT and HELP: what the table below says of itself. */
const helpCommands: Record<string, CommandSpec> = {
  FEAT: {
    handler: async (conn) => {
      const features = featuresOf(conn.server, conn);
      return conn.reply(211, 'Features:', ...features.map((f) => ({ message: ' ' + f, raw: true as const })), 'End');
    },
    loginRequired: false,
    syntax: 'FEAT',
    help: 'Extensions this server supports (RFC 2389)',
  },
  HELP: {
    handler: async (conn, arg) => {
      const directive = arg.trim().toUpperCase();
      if (directive) {
        const spec = specOf(directive);
        if (!spec) return conn.reply(502, `Unknown command ${directive}.`);
        return conn.reply(214, spec.syntax, spec.help);
      }
      const names = Object.keys(COMMANDS).sort();
      const lines: string[] = [];
      for (let i = 0; i < names.length; i += 8) lines.push(names.slice(i, i + 8).join(' '));
      return conn.reply(211, 'Supported commands:', ...lines, 'Use "HELP <command>" for syntax help.');
    },
    loginRequired: false,
    syntax: 'HELP [<command>]',
    help: 'The commands, or the syntax of one',
  },
};

/**
 * The command families by the file that holds their handlers (docs/architecture.md's table of
 * command → handler file → FileStore method → S3 requests is checked against it).
 */
export const COMMAND_FAMILIES: Readonly<Record<string, Readonly<Record<string, CommandSpec>>>> = {
  'src/ftp/commands/protocol.ts': protocolCommands,
  'src/ftp/commands/data-connection.ts': dataConnectionCommands,
  'src/ftp/commands/files.ts': fileCommands,
  'src/ftp/commands/listing.ts': listingCommands,
  'src/ftp/commands/transfer.ts': transferCommands,
  'src/ftp/commands/hash.ts': hashCommands,
  'src/ftp/commands/tls.ts': tlsCommands,
  'src/ftp/commands/index.ts': helpCommands,
};

/** The command table: every command the server answers, by directive. Anything else is 502. */
export const COMMANDS: Readonly<Record<string, CommandSpec>> = Object.freeze(
  Object.assign({}, ...Object.values(COMMAND_FAMILIES)) as Record<string, CommandSpec>,
);

/**
 * The FEAT lines (RFC 2389), sorted and without duplicates; with `ctx`, only those that server
 * offers; with `connection`, as they stand for that connection (e.g. the HASH algorithm it selected).
 */
export function featuresOf(ctx?: CommandContext, connection?: Connection): string[] {
  const offered = Object.values(COMMANDS).filter((c) => !ctx || !c.offered || c.offered(ctx));
  const lines = offered.flatMap((c) => (typeof c.feat === 'function' ? c.feat(connection) : (c.feat ?? [])));
  return [...new Set(lines)].sort();
}

/** The table's row of a directive (own keys only: a directive is client input). */
const specOf = (directive: string): CommandSpec | undefined => (Object.hasOwn(COMMANDS, directive) ? COMMANDS[directive] : undefined);

/** Runs commands from the table: what the control channel hands each command line to. */
export const commandTable: CommandTable = {
  async dispatch(connection: Connection, { directive, arg }: FtpCommand): Promise<void> {
    // The password never reaches a log.
    connection.log.trace({ directive, ...(directive === 'PASS' ? {} : { arg }) }, 'command');
    const spec = specOf(directive);
    if (!spec) return connection.reply(502, `Command not allowed: ${directive}`);
    if (spec.loginRequired && !connection.authenticated) return connection.reply(530, `Command requires authentication: ${directive}`);
    connection.busy++;
    connection.directive = directive;
    try {
      await spec.handler(connection, arg ?? '');
    } finally {
      connection.busy--;
      connection.directive = undefined;
    }
    connection.previousDirective = directive;
  },
  isTransfer: (directive) => specOf(directive)?.transfer === true,
  actsDuringTransfer: (directive) => specOf(directive)?.duringTransfer === true,
};
