import { BlockList, isIP } from 'node:net';

/** Folds IPv4-mapped IPv6 ("::ffff:10.0.0.1") back to IPv4 so one rule covers both forms. */
export const normalizeIp = (ip: string | undefined): string => (ip ?? '').replace(/^::ffff:(?=\d+\.)/i, '');

/** A set of networks from CIDR strings ("10.0.0.0/8", "2001:db8::/32") or single addresses. */
export class AddressSet {
  private readonly list = new BlockList();

  constructor(cidrs: readonly string[]) {
    for (const cidr of cidrs) {
      const [address = '', prefix] = cidr.split('/');
      const family = isIP(address);
      if (!family) throw new Error(`not an IP address or CIDR: ${cidr}`);
      const type = family === 6 ? 'ipv6' : 'ipv4';
      if (prefix === undefined) this.list.addAddress(address, type);
      else this.list.addSubnet(address, Number(prefix), type);
    }
  }

  has(ip: string | undefined): boolean {
    const address = normalizeIp(ip);
    const family = isIP(address);
    if (!family) return false;
    return this.list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }
}

export interface BruteForceOptions {
  /** Failed logins from one address within the window that trigger a ban; 0 disables the guard. */
  maxFailures: number;
  windowSeconds: number;
  banSeconds: number;
}

/** Bounds the memory an address-spraying attacker can make the guard hold. */
const MAX_TRACKED_ADDRESSES = 100_000;

/** Counts failed logins per client address and bans an address that fails too often. */
export class BruteForceGuard {
  private readonly failures = new Map<string, number[]>();
  private readonly bannedUntil = new Map<string, number>();

  constructor(
    private readonly options: BruteForceOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds the address remains banned; 0 when it is not banned. */
  bannedFor(ip: string | undefined): number {
    const key = normalizeIp(ip);
    const until = this.bannedUntil.get(key);
    if (until === undefined) return 0;
    const left = until - this.now();
    if (left > 0) return left;
    this.bannedUntil.delete(key);
    return 0;
  }

  /** Records a failed login; true when this failure got the address banned. */
  recordFailure(ip: string | undefined): boolean {
    if (this.options.maxFailures <= 0) return false;
    const key = normalizeIp(ip);
    const now = this.now();
    const windowStart = now - this.options.windowSeconds * 1000;
    const recent = (this.failures.get(key) ?? []).filter((t) => t > windowStart);
    recent.push(now);
    this.failures.delete(key);
    if (recent.length >= this.options.maxFailures) {
      this.bannedUntil.set(key, now + this.options.banSeconds * 1000);
      this.trim(this.bannedUntil);
      return true;
    }
    this.failures.set(key, recent);
    this.trim(this.failures);
    return false;
  }

  /** Drops the oldest entries beyond the bound (Maps iterate in insertion order). */
  private trim(map: Map<string, unknown>): void {
    for (const key of map.keys()) {
      if (map.size <= MAX_TRACKED_ADDRESSES) break;
      map.delete(key);
    }
  }
}

export type ConnectionRefusal = 'max-connections' | 'max-connections-per-ip';

/** Global and per-address counts of open control connections. */
export class ConnectionLimiter {
  private total = 0;
  private readonly perIp = new Map<string, number>();

  constructor(
    private readonly maxConnections: number,
    private readonly maxConnectionsPerIp: number,
  ) {}

  /** Admits a connection (call `release` when it closes) or says which limit refuses it. */
  admit(ip: string | undefined): { release: () => void } | { refused: ConnectionRefusal } {
    const key = normalizeIp(ip);
    const mine = this.perIp.get(key) ?? 0;
    if (this.maxConnections > 0 && this.total >= this.maxConnections) return { refused: 'max-connections' };
    if (this.maxConnectionsPerIp > 0 && mine >= this.maxConnectionsPerIp) return { refused: 'max-connections-per-ip' };
    this.total++;
    this.perIp.set(key, mine + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        const left = (this.perIp.get(key) ?? 1) - 1;
        if (left > 0) this.perIp.set(key, left);
        else this.perIp.delete(key);
      },
    };
  }
}
