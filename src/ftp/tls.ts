/**
 * FTPS: the server certificate (PEM files, reloaded when they change) and TLS on sockets the FTP
 * server already holds (AUTH TLS on the control connection, PROT P on data connections).
 */
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext, type SecureVersion, type TlsOptions } from 'node:tls';
import type { Logger } from 'pino';

export interface TlsFilesOptions {
  /** PEM certificate (chain) file. */
  cert: string;
  /** PEM private key file. */
  key: string;
  minVersion: SecureVersion;
  /** How often the files are re-read even without a file-system event. */
  reloadCheckSeconds: number;
}

/** What a loaded certificate looks like, for logs and tests. */
export interface CertificateInfo {
  fingerprint256: string;
  serialNumber: string;
  subject: string;
  validTo: string;
}

const WEAK_VERSIONS: readonly SecureVersion[] = ['TLSv1', 'TLSv1.1'];

/** Lets a change settle (cert and key are often written one after the other) before re-reading. */
const RELOAD_DEBOUNCE_MS = 200;

interface Loaded {
  digest: string;
  ticketKeys: Buffer;
  options: TlsOptions;
  context: SecureContext;
  /** For PROT P data connections: `context` when this Node cannot stop its session tickets. */
  dataContext: SecureContext;
  info: CertificateInfo;
}

/**
 * The server's certificate and key, from PEM files. The files are watched (their directories, so
 * that atomic renames and Kubernetes' symlink swaps are seen) and also re-read every
 * `reloadCheckSeconds`; a changed pair that loads replaces the current one for every new TLS
 * handshake, a pair that does not (half written, key not matching) is logged and the previous one
 * kept. Emits `reload` after each replacement.
 */
export class TlsCredentials extends EventEmitter {
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private closed = false;

  private constructor(
    private readonly files: TlsFilesOptions,
    private loaded: Loaded,
    private readonly log: Logger,
  ) {
    super();
  }

  /** Loads the files (failing loudly when they cannot be used) and starts watching them. */
  static async load(files: TlsFilesOptions, log: Logger): Promise<TlsCredentials> {
    if (WEAK_VERSIONS.includes(files.minVersion)) {
      log.warn(
        { minVersion: files.minVersion },
        `ftp.tls.minVersion ${files.minVersion} accepts TLS versions with known weaknesses; use it only for devices that cannot do TLS 1.2`,
      );
    }
    const loaded = await loadFiles(files);
    const credentials = new TlsCredentials(files, loaded, log);
    log.info({ certificate: loaded.info, cert: files.cert, minVersion: files.minVersion }, 'TLS certificate loaded');
    if (loaded.dataContext === loaded.context) {
      log.warn(
        { node: process.version, openssl: process.versions.openssl },
        'this Node.js cannot keep TLS 1.3 session tickets off data connections; uploads over TLS 1.3 from clients that never read the data connection (Perl Net::FTP, Go jlaffaye/ftp) may fail with 426',
      );
    }
    credentials.startWatching();
    return credentials;
  }

  /** The context every new control-connection handshake uses (AUTH TLS, implicit FTPS). */
  get secureContext(): SecureContext {
    return this.loaded.context;
  }

  /**
   * The context of PROT P data connections: it resumes the control connection's TLS session (same
   * ticket keys) but sends no TLS 1.3 session tickets. Those arrive after the handshake, and a
   * client that only writes an upload (Perl Net::FTP, Go jlaffaye/ftp, Ruby net/ftp) closes the
   * connection with them unread, so its kernel resets it and the file's tail is lost (426).
   */
  get dataSecureContext(): SecureContext {
    return this.loaded.dataContext;
  }

  /** Options for a tls.Server (createServer / setSecureContext). */
  get serverOptions(): TlsOptions {
    return this.loaded.options;
  }

  get certificate(): CertificateInfo {
    return this.loaded.info;
  }

  /** Re-reads the files now; resolves once the current pair is in use (or kept). */
  check(): Promise<void> {
    this.checking ??= this.reloadIfChanged().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async reloadIfChanged(): Promise<void> {
    let next: Loaded;
    try {
      const [cert, key] = await Promise.all([readFile(this.files.cert), readFile(this.files.key)]);
      if (digestOf(cert, key) === this.loaded.digest) return;
      next = build(cert, key, this.files.minVersion, this.loaded.ticketKeys);
    } catch (err) {
      this.log.warn({ err, cert: this.files.cert, key: this.files.key }, 'TLS certificate files changed but cannot be used (yet); keeping the current certificate');
      return;
    }
    if (this.closed) return;
    const previous = this.loaded.info;
    this.loaded = next;
    this.log.info({ certificate: next.info, previous }, 'TLS certificate reloaded');
    this.emit('reload', next.info);
  }

  private startWatching(): void {
    const schedule = () => {
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => void this.check(), RELOAD_DEBOUNCE_MS);
      this.debounce.unref();
    };
    for (const dir of new Set([dirname(this.files.cert), dirname(this.files.key)])) {
      try {
        const watcher = watch(dir, { persistent: false }, schedule);
        watcher.on('error', (err) => this.log.warn({ err, dir }, 'watching TLS certificate directory failed; relying on periodic checks'));
        this.watchers.push(watcher);
      } catch (err) {
        this.log.warn({ err, dir }, 'cannot watch TLS certificate directory; relying on periodic checks');
      }
    }
    this.timer = setInterval(() => void this.check(), this.files.reloadCheckSeconds * 1000);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    for (const w of this.watchers) w.close();
    this.watchers = [];
    clearInterval(this.timer);
    clearTimeout(this.debounce);
  }
}

const digestOf = (cert: Buffer, key: Buffer) => createHash('sha256').update(cert).update('\0').update(key).digest('hex');

async function loadFiles(files: TlsFilesOptions): Promise<Loaded> {
  const [cert, key] = await Promise.all([readFile(files.cert), readFile(files.key)]);
  return build(cert, key, files.minVersion, randomBytes(48));
}

/**
 * Every context of a process shares its session ticket keys: clients (lftp/GnuTLS) resume the
 * control connection's TLS session on each data connection, and fail the transfer when a
 * reloaded context cannot.
 */
function build(cert: Buffer, key: Buffer, minVersion: SecureVersion, ticketKeys: Buffer): Loaded {
  const options: TlsOptions = {
    cert,
    key,
    minVersion,
    ticketKeys,
    // OpenSSL 3's default security level refuses TLS 1.0/1.1 cipher suites even when the version
    // is allowed; asking for an old version means asking for them too.
    ...(WEAK_VERSIONS.includes(minVersion) ? { ciphers: 'DEFAULT@SECLEVEL=0' } : {}),
  };
  // Throws on unreadable PEM and on a key that does not belong to the certificate.
  const context = createSecureContext(options);
  const dataContext = createSecureContext(options);
  const x509 = new X509Certificate(cert);
  return {
    digest: digestOf(cert, key),
    ticketKeys,
    options,
    context,
    dataContext: issueNoTickets(dataContext, ticketKeys) ? dataContext : context,
    info: { fingerprint256: x509.fingerprint256, serialNumber: x509.serialNumber, subject: x509.subject, validTo: x509.validTo },
  };
}

/** Node's native SecureContext: its ticket key hook is internal (Node's own tests use it), hence optional here. */
interface NativeTicketHook {
  enableTicketKeyCallback?: () => void;
  onticketkeycallback?: (name: Buffer, iv: Buffer, encrypt: boolean) => unknown[];
}

/**
 * Makes `context` issue no session tickets while still resuming sessions whose tickets were issued
 * under `ticketKeys` (name | HMAC key | AES key, 16 bytes each, as Node's own ticket callback uses
 * them: AES-128-CBC, HMAC-SHA256). Node exposes no SSL_CTX_set_num_tickets, so the ticket key
 * callback declines every new ticket; OpenSSL then sends none (seen with 3.0.19 in Node 20 and
 * 3.5 in Node 24, TLS 1.2 and 1.3). Returns false (context unchanged) where Node lacks the hook.
 */
function issueNoTickets(context: SecureContext, ticketKeys: Buffer): boolean {
  const native = (context as unknown as { context?: NativeTicketHook }).context;
  if (!native || typeof native.enableTicketKeyCallback !== 'function') return false;
  const name = ticketKeys.subarray(0, 16);
  const hmac = ticketKeys.subarray(16, 32);
  const aes = ticketKeys.subarray(32, 48);
  const unusedIv = Buffer.alloc(16);
  native.onticketkeycallback = (ticketName, _iv, encrypt) => {
    // 0 declines: no ticket is issued (encrypt), or the ticket is not ours and a full handshake follows.
    if (encrypt) return [0, hmac, aes, name, unusedIv];
    return [ticketName.equals(name) ? 1 : 0, hmac, aes];
  };
  native.enableTicketKeyCallback();
  return true;
}

/**
 * Starts the server side of TLS on a connected socket and returns the TLS socket at once: clients
 * (curl, ftplib) begin the handshake on a data connection only after the 150 reply, so the
 * caller must not wait for it. Reads and writes wait for the handshake; a handshake that does not
 * finish within `handshakeTimeoutMs` destroys the socket.
 */
export function serverTlsSocket(socket: Socket, context: SecureContext, handshakeTimeoutMs: number, log: Logger): TLSSocket {
  const secure = new TLSSocket(socket, { isServer: true, secureContext: context });
  secure.on('error', (err) => log.debug({ err }, 'TLS socket error'));
  const timer = setTimeout(() => secure.destroy(Object.assign(new Error('TLS handshake timed out'), { code: 'ERR_TLS_HANDSHAKE_TIMEOUT' })), handshakeTimeoutMs);
  timer.unref();
  secure.once('secure', () => {
    clearTimeout(timer);
    established.add(secure);
  });
  secure.once('close', () => clearTimeout(timer));
  return secure;
}

/** Server-side TLS sockets of serverTlsSocket whose handshake is done. */
const established = new WeakSet<TLSSocket>();

/**
 * Resolves once a data connection can be trusted to have carried what was written: at once for
 * plain TCP, after the handshake for TLS. A TLS socket that is ended before its handshake reports
 * 'finish' although the client never got a byte (an empty listing, a 0-byte file), so the `226`
 * must wait for it; the handshake time-out of serverTlsSocket bounds the wait.
 */
export function dataChannelEstablished(socket: Socket): Promise<void> {
  if (!(socket instanceof TLSSocket) || established.has(socket)) return Promise.resolve();
  return handshake(socket);
}

/** Resolves once the handshake of a server-side TLS socket is done; rejects when it fails. */
export function handshake(secure: TLSSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    const onSecure = () => {
      secure.off('close', onClose);
      resolve();
    };
    const onClose = () => {
      secure.off('secure', onSecure);
      reject(new Error('TLS handshake failed'));
    };
    secure.once('secure', onSecure);
    secure.once('close', onClose);
  });
}

/** PBSZ/PROT state of one control connection (RFC 4217 §8, §9). */
export interface DataProtection {
  /** PBSZ was sent (it must precede PROT). */
  pbsz: boolean;
  /** C: data connections in the clear; P: data connections over TLS. */
  level: 'C' | 'P';
}

/** Whether the control connection runs over TLS (AUTH TLS done, or the implicit listener). */
export const controlProtected = (commandSocket: Socket): boolean => (commandSocket as Partial<TLSSocket>).encrypted === true;
