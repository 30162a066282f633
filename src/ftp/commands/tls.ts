import { controlProtected, handshake, serverTlsSocket } from '../tls.js';
import type { CommandContext, CommandSpec } from './context.js';

/** AUTH SSL and AUTH TLS-P are the pre-RFC 4217 forms; they also protect data connections. */
const MECHANISMS: Record<string, 'C' | 'P'> = { TLS: 'C', 'TLS-C': 'C', SSL: 'P', 'TLS-P': 'P' };

const offered = (ctx: CommandContext) => ctx.tls !== undefined;

/** Explicit FTPS (RFC 4217): AUTH TLS, PBSZ, PROT. */
export const tlsCommands: Record<string, CommandSpec> = {
  AUTH: {
    handler: async (conn, arg) => {
      const tls = conn.server.tls;
      const mechanism = arg.trim().toUpperCase();
      if (!tls) return conn.reply(502, 'TLS is not configured on this server');
      const level = MECHANISMS[mechanism];
      if (!level) return conn.reply(504, 'Security mechanism not understood; use AUTH TLS');
      if (controlProtected(conn.commandSocket)) return conn.reply(503, 'TLS is already active');
      if (conn.authenticated) return conn.reply(503, 'AUTH TLS must come before login');
      // Bytes the client sends after AUTH TLS are the handshake: they stay in the socket's buffer
      // for the TLS layer, never reaching the plaintext command parser.
      conn.commandSocket.pause();
      await conn.reply(234, `AUTH ${mechanism} successful`);
      // RFC 4217 §4: a USER sent before the upgrade does not carry over.
      conn.username = undefined;
      const secure = conn.peer.startTls((plain) => serverTlsSocket(plain, tls.secureContext, conn.server.tlsHandshakeTimeoutMs, conn.log));
      conn.protection.level = level;
      try {
        await handshake(secure);
      } catch {
        conn.log.info({ event: 'tls', result: 'failed' }, 'TLS handshake on the control connection failed');
        secure.destroy();
        return;
      }
      conn.log.info({ event: 'tls', protocol: secure.getProtocol(), cipher: secure.getCipher().name }, 'control connection upgraded to TLS');
    },
    loginRequired: false,
    syntax: 'AUTH TLS',
    help: 'Upgrade the control connection to TLS (explicit FTPS, RFC 4217)',
    feat: ['AUTH TLS'],
    offered,
  },
  PBSZ: {
    handler: async (conn, arg) => {
      if (!controlProtected(conn.commandSocket)) return conn.reply(503, 'PBSZ requires AUTH TLS first');
      if (!/^\d+$/.test(arg.trim())) return conn.reply(501, 'PBSZ requires a buffer size');
      conn.protection.pbsz = true;
      // TLS is a stream: the only buffer size is 0 (RFC 4217 §8).
      return conn.reply(200, 'PBSZ=0');
    },
    loginRequired: false,
    syntax: 'PBSZ 0',
    help: 'Protection buffer size (0: TLS is a stream)',
    feat: ['PBSZ'],
    offered,
  },
  PROT: {
    handler: async (conn, arg) => {
      if (!controlProtected(conn.commandSocket)) return conn.reply(503, 'PROT requires AUTH TLS first');
      const protection = conn.protection;
      if (!protection.pbsz) return conn.reply(503, 'PBSZ must come before PROT');
      const level = arg.trim().toUpperCase();
      if (level === 'P') {
        protection.level = 'P';
        return conn.reply(200, 'Protection level set to P');
      }
      if (level === 'C') {
        if (conn.server.tlsRequired(conn)) {
          return conn.reply(534, 'Policy requires protected data connections (PROT P)');
        }
        protection.level = 'C';
        return conn.reply(200, 'Protection level set to C');
      }
      if (level === 'S' || level === 'E') return conn.reply(536, 'Protection level not supported; use PROT P or PROT C');
      return conn.reply(504, 'Unknown protection level');
    },
    loginRequired: false,
    syntax: 'PROT <C|P>',
    help: 'Data connection protection: C clear, P TLS',
    feat: ['PROT'],
    offered,
  },
};
