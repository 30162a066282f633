import type { FtpConnection } from '../ftp-srv-internals.js';
import { controlProtected, dataProtection, handshake, serverTlsSocket } from '../tls.js';
import { rawArgument, type CommandContext, type CommandSpec, type ContextOf } from './context.js';

/** AUTH SSL and AUTH TLS-P are the pre-RFC 4217 forms; they also protect data connections. */
const MECHANISMS: Record<string, 'C' | 'P'> = { TLS: 'C', 'TLS-C': 'C', SSL: 'P', 'TLS-P': 'P' };

/** Events ftp-srv and the bridge listen for on the original control socket, passed on from the TLS socket. */
const FORWARDED_EVENTS = ['end', 'timeout', 'drain', 'error'] as const;

const offered = (ctx: CommandContext) => ctx.tls !== undefined;

/** Explicit FTPS (RFC 4217): AUTH TLS, PBSZ, PROT. ftp-srv's own refuse PROT C and read a fixed certificate. */
export function tlsCommands(contextOf: ContextOf): Record<string, CommandSpec> {
  return {
    AUTH: {
      handler: async function (this: FtpConnection, { command }) {
        const ctx = contextOf(this);
        const mechanism = rawArgument(command).trim().toUpperCase();
        if (!ctx.tls) return this.reply(502, 'TLS is not configured on this server');
        const level = MECHANISMS[mechanism];
        if (!level) return this.reply(504, 'Security mechanism not understood; use AUTH TLS');
        if (controlProtected(this.commandSocket)) return this.reply(503, 'TLS is already active');
        if (this.authenticated) return this.reply(503, 'AUTH TLS must come before login');
        const plain = this.commandSocket;
        // Bytes the client sends after AUTH TLS are the handshake: they stay in the socket's buffer
        // for the TLS layer, never reaching the plaintext command parser.
        plain.pause();
        await this.reply(234, `AUTH ${mechanism} successful`);
        // RFC 4217 §4: a USER sent before the upgrade does not carry over.
        this.username = undefined;
        // The plain socket's data listeners (the command parser, activity timers) get the decrypted
        // bytes from now on. They are taken off the plain socket first: the TLS layer drains what the
        // plain socket buffered (the ClientHello) through its read(), which emits 'data' there.
        const dataListeners = plain.listeners('data') as ((chunk: Buffer) => void)[];
        plain.removeAllListeners('data');
        const secure = serverTlsSocket(plain, ctx.tls.secureContext, ctx.tlsHandshakeTimeoutMs, this.log);
        secure.on('data', (chunk: Buffer) => {
          for (const listener of dataListeners) listener.call(plain, chunk);
        });
        for (const event of FORWARDED_EVENTS) secure.on(event, (...args: unknown[]) => plain.emit(event, ...args));
        if (plain.timeout) {
          // The plain socket no longer sees the traffic, so its idle timer would fire mid-session.
          secure.setTimeout(plain.timeout);
          plain.setTimeout(0);
        }
        this.commandSocket = secure;
        const protection = dataProtection(this);
        protection.level = level;
        try {
          await handshake(secure);
        } catch {
          this.log.info({ event: 'tls', result: 'failed' }, 'TLS handshake on the control connection failed');
          secure.destroy();
          return;
        }
        this.log.info({ event: 'tls', protocol: secure.getProtocol(), cipher: secure.getCipher().name }, 'control connection upgraded to TLS');
      },
      noAuth: true,
      syntax: 'AUTH TLS',
      feat: ['AUTH TLS'],
      offered,
    },
    PBSZ: {
      handler: async function (this: FtpConnection, { command }) {
        if (!controlProtected(this.commandSocket)) return this.reply(503, 'PBSZ requires AUTH TLS first');
        if (!/^\d+$/.test(rawArgument(command).trim())) return this.reply(501, 'PBSZ requires a buffer size');
        dataProtection(this).pbsz = true;
        // TLS is a stream: the only buffer size is 0 (RFC 4217 §8).
        return this.reply(200, 'PBSZ=0');
      },
      noAuth: true,
      syntax: 'PBSZ 0',
      feat: ['PBSZ'],
      offered,
    },
    PROT: {
      handler: async function (this: FtpConnection, { command }) {
        if (!controlProtected(this.commandSocket)) return this.reply(503, 'PROT requires AUTH TLS first');
        const protection = dataProtection(this);
        if (!protection.pbsz) return this.reply(503, 'PBSZ must come before PROT');
        const level = rawArgument(command).trim().toUpperCase();
        if (level === 'P') {
          protection.level = 'P';
          return this.reply(200, 'Protection level set to P');
        }
        if (level === 'C') {
          if (contextOf(this).tlsRequired(this)) {
            return this.reply(534, 'Policy requires protected data connections (PROT P)');
          }
          protection.level = 'C';
          return this.reply(200, 'Protection level set to C');
        }
        if (level === 'S' || level === 'E') return this.reply(536, 'Protection level not supported; use PROT P or PROT C');
        return this.reply(504, 'Unknown protection level');
      },
      noAuth: true,
      syntax: 'PROT <C|P>',
      feat: ['PROT'],
      offered,
    },
  };
}
