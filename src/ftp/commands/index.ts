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
      const features = featuresOf(commands, contextOf(this));
      return this.reply(211, 'Features:', ...features.map((f) => ({ message: ' ' + f, raw: true })), 'End');
    },
    noAuth: true,
    syntax: 'FEAT',
  };
  return commands;
}

/** The FEAT lines (RFC 2389), sorted and without duplicates; with `ctx`, only those that server offers. */
export function featuresOf(commands: Record<string, CommandSpec>, ctx?: CommandContext): string[] {
  const offered = Object.values(commands).filter((c) => !ctx || !c.offered || c.offered(ctx));
  return [...new Set(offered.flatMap((c) => c.feat ?? []))].sort();
}
