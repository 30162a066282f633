/**
 * PROXY protocol (v1 text, v2 binary; haproxy.org/download/2.6/doc/proxy-protocol.txt) on any
 * listener: which sources must send a header, reading it off a socket within a time-out and a size
 * cap, and the client address it names. The header is framed here (its length is known from its
 * first bytes) and parsed and validated by proxy-protocol-js. Both front ends (FTP control, implicit
 * FTPS and passive data ports; SFTP) use it before any admission check.
 */
import { isIP, type Socket } from 'node:net';
import proxyProtocol from 'proxy-protocol-js';
import { AddressSet, normalizeIp } from './access-control.js';

const { Command, TransportProtocol, V1ProxyProtocol, V2ProxyProtocol, IPv4ProxyAddress, IPv6ProxyAddress } = proxyProtocol;

/** The v2 signature: 12 bytes no text protocol starts with. */
export const V2_SIGNATURE = Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1');
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** The longest v1 header, CRLF included (the specification's bound). */
export const V1_MAX_BYTES = 107;
/** The longest v2 header accepted, TLVs included: larger is refused, not read. */
export const V2_MAX_BYTES = 4096;
const V2_FIXED_BYTES = 16;

/** `ftp.proxyProtocol` / `sftp.proxyProtocol`. */
export interface ProxyProtocolOptions {
  enabled: boolean;
  trustedProxies: readonly string[];
  headerTimeoutSeconds: number;
}

/** Why a connection was turned away before any admission check. */
export type ProxyRefusal =
  /** A trusted proxy sent no complete header in time. */
  | 'proxy-header-timeout'
  /** A trusted proxy sent bytes that are no PROXY header, or a header that does not parse. */
  | 'proxy-header-invalid'
  /** A v2 header longer than V2_MAX_BYTES, or a v1 line with no CRLF within V1_MAX_BYTES. */
  | 'proxy-header-too-large'
  /** A valid header naming no TCP client (UNKNOWN, UNIX, UDP, unspecified family with PROXY). */
  | 'proxy-header-unsupported'
  /** A source not trusted sent a header. */
  | 'proxy-header-untrusted'
  /** A second header after the first. */
  | 'proxy-header-unexpected'
  /** The connection closed before its header was complete. */
  | 'proxy-header-closed';

/** Where a connection comes from: the client address everything sees, and whether a proxy named it. */
export interface ClientOrigin {
  /** The client's address (normalized as {@link normalizeIp}); the socket's peer when not proxied. */
  clientAddress: string;
  /** The address the TCP connection came from (the proxy's when proxied). */
  peerAddress: string;
  /** Whether a PROXY header named the client (a v2 LOCAL header does not). */
  proxied: boolean;
}

/** The address of a connection as its socket reports it: no header involved. */
export function directOrigin(socket: Socket): ClientOrigin {
  const address = normalizeIp(socket.remoteAddress);
  return { clientAddress: address, peerAddress: address, proxied: false };
}

/**
 * The PROXY protocol rules of one listener. Disabled, every connection is direct. Enabled, a
 * connection from `trustedProxies` must start with a header (read by {@link read}); one from
 * anywhere else is direct, and its first bytes may be checked with {@link HeaderSniffer}.
 */
export class ProxyProtocolGate {
  private readonly trusted: AddressSet;
  private readonly timeoutMs: number;

  constructor(private readonly options: ProxyProtocolOptions) {
    this.trusted = new AddressSet(options.enabled ? options.trustedProxies : []);
    this.timeoutMs = options.headerTimeoutSeconds * 1000;
  }

  get enabled(): boolean {
    return this.options.enabled;
  }

  /** Whether a connection from `peer` must carry a header. */
  trusts(peer: string | undefined): boolean {
    return this.options.enabled && this.trusted.has(peer);
  }

  /**
   * The origin of a newly accepted (paused) socket: for a trusted source, read from its header,
   * the bytes after the header put back onto the socket, which is left paused; for any other, its
   * own address at once, nothing read. A refusal leaves the socket to the caller (to log and destroy).
   */
  async origin(socket: Socket): Promise<ClientOrigin | { refused: ProxyRefusal }> {
    const direct = directOrigin(socket);
    if (!this.trusts(direct.peerAddress)) return direct;
    const header = await readHeader(socket, this.timeoutMs);
    if ('refused' in header) return header;
    if (header.local) return direct;
    return { clientAddress: header.clientAddress, peerAddress: direct.peerAddress, proxied: true };
  }
}

type Framed = { complete: Buffer; rest: Buffer } | { refused: ProxyRefusal } | undefined;

/** The header at the start of `bytes` when complete, a refusal, or undefined while more bytes are needed. */
function frame(bytes: Buffer): Framed {
  if (startsWithPrefixOf(bytes, V2_SIGNATURE)) {
    if (bytes.length < V2_FIXED_BYTES) return undefined;
    const total = V2_FIXED_BYTES + bytes.readUInt16BE(14);
    if (total > V2_MAX_BYTES) return { refused: 'proxy-header-too-large' };
    return bytes.length < total ? undefined : { complete: bytes.subarray(0, total), rest: bytes.subarray(total) };
  }
  if (startsWithPrefixOf(bytes, V1_PREFIX)) {
    const end = bytes.subarray(0, V1_MAX_BYTES).indexOf('\r\n');
    if (end >= 0) return { complete: bytes.subarray(0, end + 2), rest: bytes.subarray(end + 2) };
    return bytes.length >= V1_MAX_BYTES ? { refused: 'proxy-header-too-large' } : undefined;
  }
  return { refused: 'proxy-header-invalid' };
}

/** Whether `bytes` and `prefix` agree over the length of the shorter. */
function startsWithPrefixOf(bytes: Buffer, prefix: Buffer): boolean {
  const n = Math.min(bytes.length, prefix.length);
  return bytes.subarray(0, n).equals(prefix.subarray(0, n));
}

type Parsed = { clientAddress: string; local: false } | { local: true } | { refused: ProxyRefusal };

/** A complete header, parsed by proxy-protocol-js; only a TCP client over IPv4/IPv6 (or v2 LOCAL) is taken. */
export function parseHeader(header: Buffer): Parsed {
  try {
    if (header[0] === V2_SIGNATURE[0]) {
      const parsed = V2ProxyProtocol.parse(new Uint8Array(header));
      // LOCAL: the proxy's own connection (health checks); the addresses, if any, mean nothing.
      if (parsed.command === Command.LOCAL) return { local: true };
      if (parsed.transportProtocol !== TransportProtocol.STREAM) return { refused: 'proxy-header-unsupported' };
      const address = parsed.proxyAddress;
      if (address instanceof IPv4ProxyAddress) return { clientAddress: address.sourceAddress.address.join('.'), local: false };
      if (address instanceof IPv6ProxyAddress) return { clientAddress: ipv6Text(address.sourceAddress.address), local: false };
      return { refused: 'proxy-header-unsupported' };
    }
    const parsed = V1ProxyProtocol.parse(header.toString('latin1'));
    const family = parsed.inetProtocol === 'TCP4' ? 4 : parsed.inetProtocol === 'TCP6' ? 6 : 0;
    if (family === 0) return { refused: 'proxy-header-unsupported' };
    // The library matches the fields' shape only: each address must be one of the family named.
    const { source, destination } = parsed;
    if (isIP(source.ipAddress) !== family || isIP(destination.ipAddress) !== family) return { refused: 'proxy-header-invalid' };
    if (source.port > 65535 || destination.port > 65535) return { refused: 'proxy-header-invalid' };
    return { clientAddress: normalizeIp(source.ipAddress), local: false };
  } catch {
    return { refused: 'proxy-header-invalid' };
  }
}

/** The text form of 16 address bytes (the longest run of zero groups compressed, RFC 5952). */
function ipv6Text(bytes: readonly number[]): string {
  // An IPv4-mapped address is the IPv4 client it maps (one key for bans and limits).
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.slice(12, 16).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => (((bytes[2 * i] ?? 0) << 8) | (bytes[2 * i + 1] ?? 0)).toString(16));
  let best = { start: -1, length: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best.length && j - i > 1) best = { start: i, length: j - i };
    i = j;
  }
  if (best.start < 0) return groups.join(':');
  const head = groups.slice(0, best.start).join(':');
  const tail = groups.slice(best.start + best.length).join(':');
  return `${head}::${tail}`;
}

/**
 * Reads the PROXY header at the start of a (paused) socket: at most V2_MAX_BYTES, within
 * `timeoutMs`. Bytes after it are unshifted back and the socket is left paused, so whoever takes
 * it next reads them first.
 */
function readHeader(socket: Socket, timeoutMs: number): Promise<Parsed> {
  return new Promise((resolve) => {
    let buffered: Buffer = Buffer.alloc(0);
    let settled = false;
    const finish = (result: Parsed, rest?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onClose);
      socket.pause();
      if (rest?.length) socket.unshift(rest);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
      const framed = frame(buffered);
      if (framed === undefined) return;
      if ('refused' in framed) return finish(framed);
      finish(parseHeader(framed.complete), framed.rest);
    };
    const onClose = () => finish({ refused: 'proxy-header-closed' });
    const timer = setTimeout(() => finish({ refused: 'proxy-header-timeout' }), timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
    // A reset while waiting is a close like any other (and no unhandled 'error').
    socket.on('error', onClose);
    socket.resume();
  });
}

/**
 * Watches the first bytes a connection from an untrusted source sends, where a header has no
 * business: `push` answers 'header' as soon as they are a PROXY v1 or v2 start, 'clean' once they
 * cannot be one any more, and 'undecided' while they might (at most 12 bytes).
 */
export class HeaderSniffer {
  private seen: Buffer = Buffer.alloc(0);
  private verdict: 'header' | 'clean' | 'undecided' = 'undecided';

  push(chunk: Buffer): 'header' | 'clean' | 'undecided' {
    if (this.verdict !== 'undecided') return this.verdict;
    this.seen = Buffer.concat([this.seen, chunk.subarray(0, V2_SIGNATURE.length)]).subarray(0, V2_SIGNATURE.length);
    const v1 = startsWithPrefixOf(this.seen, V1_PREFIX);
    const v2 = startsWithPrefixOf(this.seen, V2_SIGNATURE);
    if ((v1 && this.seen.length >= V1_PREFIX.length) || (v2 && this.seen.length >= V2_SIGNATURE.length)) this.verdict = 'header';
    else if (!v1 && !v2) this.verdict = 'clean';
    return this.verdict;
  }
}
