import type { AddressInfo, Server } from 'node:net';
import { PassiveConnector, type FtpConnection } from '../ftp-srv-internals.js';
import type { CommandSpec, ContextOf } from './context.js';

/** PASV (ftp-srv's needs a fixed pasv_url; ours asks the server which address to announce). EPSV, PORT, EPRT: ftp-srv's. */
export function dataConnectionCommands(contextOf: ContextOf): Record<string, CommandSpec> {
  return {
    PASV: {
      handler: async function (this: FtpConnection) {
        const connector = new PassiveConnector(this);
        this.connector = connector;
        try {
          const server = await (connector.setupServer as () => Promise<Server>)();
          const { port } = server.address() as AddressInfo;
          const address = await contextOf(this).passiveAddress(this);
          if (!/^\d+\.\d+\.\d+\.\d+$/.test(address)) return this.reply(425, 'PASV needs an IPv4 address; use EPSV');
          return this.reply(227, `Entering Passive Mode (${address.replace(/\./g, ',')},${port >> 8},${port & 255})`);
        } catch {
          return this.reply(425, "Can't open passive connection");
        }
      },
      syntax: 'PASV',
      feat: ['PASV', 'EPSV', 'EPRT'],
    },
  };
}
