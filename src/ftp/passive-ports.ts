import { createServer, isIP, type Server, type Socket } from 'node:net';
import type { BridgeConfig } from '../config/schema.js';
import { FtpError } from './errors.js';

/** A listening passive data server holding one port of the pool until released. */
export interface PassiveLease {
  readonly port: number;
  readonly server: Server;
  /** Closes the listener and returns the port to the pool; safe to call any number of times. */
  release(): void;
}

/**
 * The passive port range. Every port handed out is owned by exactly one lease until that lease is
 * released, so a port can never leak as long as every path out of a passive connection calls
 * `release()` (idempotent). Ports busy outside the bridge (EADDRINUSE, EACCES) are skipped.
 * Each lease is held by a client (its key: the client address), and one client holds at most
 * `maxPerClient` ports at once, so one address cannot take the whole range from the others.
 * Replaces ftp-srv's getNextPasvPort, which probes ports and loses track of them.
 */
export class PassivePortPool {
  private readonly leased = new Set<number>();
  /** Ports held per client key; a key without ports is deleted (the map stays as small as the leases). */
  private readonly heldBy = new Map<string, number>();
  private next: number;

  constructor(
    readonly portMin: number,
    readonly portMax: number,
    /** Ports one client key may hold at once; Infinity: no per-client bound. */
    readonly maxPerClient = Infinity,
  ) {
    this.next = portMin;
  }

  get size(): number {
    return this.portMax - this.portMin + 1;
  }

  /** Ports currently leased. */
  get inUse(): number {
    return this.leased.size;
  }

  /** Ports currently leased by the client `clientKey`. */
  heldByClient(clientKey: string): number {
    return this.heldBy.get(clientKey) ?? 0;
  }

  /**
   * Listens on a free port of the range on `host` for the client `clientKey`; `onConnection` gets
   * every accepted socket (paused). Rejects with a PassivePortsPerClientError when that client
   * already holds `maxPerClient` ports, and with a PoolExhaustedError when no port of the range can
   * be bound.
   */
  async acquire(host: string, clientKey: string, onConnection: (socket: Socket) => void): Promise<PassiveLease> {
    // A full range is reported as such, whoever holds it.
    if (this.leased.size >= this.size) throw new PoolExhaustedError(this.portMin, this.portMax);
    // Counted before the first await, so concurrent acquires of one client cannot overshoot.
    const held = this.heldByClient(clientKey);
    if (held >= this.maxPerClient) throw new PassivePortsPerClientError(clientKey, this.maxPerClient);
    this.heldBy.set(clientKey, held + 1);
    let handedOut = false;
    try {
      const lease = await this.bind(host, onConnection, () => this.unhold(clientKey));
      handedOut = true;
      return lease;
    } finally {
      if (!handedOut) this.unhold(clientKey);
    }
  }

  private unhold(clientKey: string): void {
    const left = (this.heldBy.get(clientKey) ?? 1) - 1;
    if (left > 0) this.heldBy.set(clientKey, left);
    else this.heldBy.delete(clientKey);
  }

  private async bind(host: string, onConnection: (socket: Socket) => void, onRelease: () => void): Promise<PassiveLease> {
    for (let tried = 0; tried < this.size; tried++) {
      const port = this.next;
      this.next = port >= this.portMax ? this.portMin : port + 1;
      if (this.leased.has(port)) continue;
      this.leased.add(port);
      const server = createServer({ pauseOnConnect: true }, onConnection);
      try {
        await listen(server, port, host);
      } catch (err) {
        this.leased.delete(port);
        server.close();
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE' || code === 'EACCES') continue;
        throw err;
      }
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        server.close();
        this.leased.delete(port);
        onRelease();
      };
      server.once('close', release);
      return { port, server, release };
    }
    throw new PoolExhaustedError(this.portMin, this.portMax);
  }
}

/** The client already holds its share of the passive range (ftp.passive.maxPerClient). */
export class PassivePortsPerClientError extends FtpError {
  constructor(
    readonly clientKey: string,
    readonly maxPerClient: number,
  ) {
    // No text of its own: the reply's comes from the error table (replies.ts).
    super('TOO_MANY_PASSIVE_PORTS', '');
    this.name = 'PassivePortsPerClientError';
  }
}

export class PoolExhaustedError extends Error {
  constructor(portMin: number, portMax: number) {
    super(`all passive ports ${portMin}-${portMax} are in use`);
    this.name = 'PoolExhaustedError';
  }
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

const isLoopback = (ip: string) => /^127\./.test(ip) || ip === '::1' || ip === 'localhost';
const isPrivate = (ip: string) =>
  /^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|169\.254\.|100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.)/.test(ip) || /^f[cd]/i.test(ip);

/** The passive-mode settings that make PASV answer with something clients cannot reach, in plain words. */
export function passiveWarnings(ftp: BridgeConfig['ftp'], controlPort: number): string[] {
  const warnings: string[] = [];
  const { address, portMin, portMax, overrides } = ftp.passive;
  const wildcard = ftp.host === '0.0.0.0' || ftp.host === '::';
  if (wildcard && address && isIP(address) && overrides.length === 0) {
    if (isLoopback(address)) {
      warnings.push(
        `ftp.passive.address is the loopback address ${address} while the server listens on ${ftp.host}: ` +
          'every client not on this machine gets "227 Entering Passive Mode" and then "Connection refused". ' +
          'Set ftp.passive.address to the address clients connect to.',
      );
    } else if (isPrivate(address)) {
      warnings.push(
        `ftp.passive.address is the private address ${address} and no ftp.passive.overrides are set: ` +
          'clients on the internet (or behind another NAT) cannot reach it. If they come through a public address, ' +
          'announce that one and use ftp.passive.overrides for internal networks.',
      );
    }
  }
  if (wildcard && !address) {
    warnings.push(
      'ftp.passive.address is not set: PASV announces the address each client reached, which is wrong behind NAT, ' +
        'Docker port mapping or a Kubernetes Service. Set it to the public address or DNS name clients use.',
    );
  }
  if (portMin === 0) warnings.push('ftp.passive.portMin is 0: port 0 cannot be announced in PASV replies; start the range at 1024 or above.');
  if (portMin < 1024) warnings.push(`ftp.passive.portMin ${portMin} is below 1024: privileged ports need root and collide with system services.`);
  if (controlPort >= portMin && controlPort <= portMax) {
    warnings.push(`the control port ${controlPort} lies inside the passive range ${portMin}-${portMax}: one port of the range can never be used.`);
  }
  const size = portMax - portMin + 1;
  if (ftp.maxConnections > 0 && size < Math.min(ftp.maxConnections, 10)) {
    warnings.push(`the passive range ${portMin}-${portMax} has only ${size} port(s): concurrent transfers beyond that get 425.`);
  }
  return warnings;
}
