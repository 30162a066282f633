import type { FtpConnection } from '../ftp-srv-internals.js';
import type { CommandContext, CommandSpec, ContextOf } from './context.js';
import { dataConnectionCommands } from './data-connection.js';
import { fileCommands } from './files.js';
import { hashCommands } from './hash.js';
import { listingCommands } from './listing.js';
import { protocolCommands } from './protocol.js';
import { tlsCommands } from './tls.js';
import { transferCommands } from './transfer.js';

export { rawArgument, type CommandContext, type CommandSpec, type ContextOf } from './context.js';

/** Every command handler of ours, by directive, plus FEAT built from what they announce. */
export function buildCommands(contextOf: ContextOf): Record<string, CommandSpec> {
  const commands: Record<string, CommandSpec> = {
    ...protocolCommands(contextOf),
    ...dataConnectionCommands(contextOf),
    ...fileCommands(contextOf),
    ...listingCommands(contextOf),
    ...transferCommands(contextOf),
    ...hashCommands(contextOf),
    ...tlsCommands(contextOf),
  };
  commands.FEAT = {
    handler: async function (this: FtpConnection) {
      const features = featuresOf(commands, contextOf(this), this);
      return this.reply(211, 'Features:', ...features.map((f) => ({ message: ' ' + f, raw: true })), 'End');
    },
    noAuth: true,
    syntax: 'FEAT',
  };
  return commands;
}

/**
 * The FEAT lines (RFC 2389), sorted and without duplicates; with `ctx`, only those that server
 * offers; with `connection`, as they stand for that session (e.g. the HASH algorithm it selected).
 */
export function featuresOf(commands: Record<string, CommandSpec>, ctx?: CommandContext, connection?: FtpConnection): string[] {
  const offered = Object.values(commands).filter((c) => !ctx || !c.offered || c.offered(ctx));
  const lines = offered.flatMap((c) => (typeof c.feat === 'function' ? c.feat(connection) : (c.feat ?? [])));
  return [...new Set(lines)].sort();
}
