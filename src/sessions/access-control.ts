import { BlockList, isIP, isIPv4 } from 'node:net';
import { SharedBans } from '../cluster/shared-bans.js';
import { SharedConnections } from '../cluster/shared-connections.js';
import type { SharedState } from '../cluster/shared-state.js';

/**
 * An address as the socket layer reports it, an IPv4-mapped IPv6 address ("::ffff:10.0.0.1")
 * folded back to IPv4 so that one rule, key or log field covers both forms. Anything else (an IPv6
 * address such as "::ffff:a01:1" included) is returned as it is; undefined becomes "".
 */
export function normalizeIp(ip: string | undefined): string {
  const address = ip ?? '';
  const mapped = /^::ffff:(.*)$/i.exec(address)?.[1];
  return mapped !== undefined && isIPv4(mapped) ? mapped : address;
}

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

/** The IPv6 prefix length that `clientKey` groups by unless told otherwise. */
const DEFAULT_IPV6_PREFIX_LENGTH = 64;

/** The eight 16-bit groups of an IPv6 address (zone id dropped, embedded IPv4 tail folded in). */
function ipv6Groups(address: string): number[] | undefined {
  let text = address.replace(/%.*$/, '');
  if (isIP(text) !== 6) return undefined;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = text.slice(0, v4.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const hex = (part: string) => (part ? part.split(':').map((h) => parseInt(h, 16)) : []);
  const [head = '', tail] = text.split('::');
  if (tail === undefined) return hex(head);
  const start = hex(head);
  const end = hex(tail);
  return [...start, ...new Array<number>(8 - start.length - end.length).fill(0), ...end];
}

/**
 * The key under which per-client limits and bans count an address: an IPv4 address as it is (an
 * IPv4-mapped IPv6 one folded back), an IPv6 address masked to its first `ipv6PrefixLength` bits,
 * because one IPv6 client commonly holds a whole /64 and could otherwise take a fresh address for
 * every attempt.
 */
export function clientKey(ip: string | undefined, ipv6PrefixLength = DEFAULT_IPV6_PREFIX_LENGTH): string {
  const address = normalizeIp(ip);
  const groups = ipv6Groups(address);
  if (!groups) return address;
  const masked = groups.map((group, i) => {
    const bits = Math.min(16, Math.max(0, ipv6PrefixLength - 16 * i));
    return (group & (0xffff << (16 - bits)) & 0xffff).toString(16);
  });
  return `${masked.join(':')}/${ipv6PrefixLength}`;
}

export interface BruteForceOptions {
  /** Failed logins from one client within the window that trigger a ban; 0 disables the guard. */
  maxFailures: number;
  windowSeconds: number;
  banSeconds: number;
  /** IPv6 clients are counted per prefix of this length (see `clientKey`). */
  ipv6PrefixLength?: number;
}

/** A login attempt that holds one of its client's `maxFailures` slots until it is settled. */
export interface LoginAttempt {
  /** The login succeeded: the slot is freed and nothing is counted. */
  succeeded(): void;
  /**
   * The login was refused: counted as a failure; true when that got the client banned. A promise
   * when the failure is also counted cluster-wide: it resolves once Redis has counted it (or the
   * command timed out), so the ban is in force everywhere before the refusal is answered.
   */
  failed(): boolean | Promise<boolean>;
}

/** Bounds the memory an address-spraying attacker can make the guard hold. */
const MAX_TRACKED_ADDRESSES = 100_000;
/** Attempts of one client waiting for a slot; each is a connection, so this is a backstop only. */
const MAX_WAITING_PER_CLIENT = 1000;

/** A slot in the replica's own count, settled synchronously. */
interface LocalAttempt extends LoginAttempt {
  failed(): boolean;
}

const UNGUARDED: LocalAttempt = { succeeded: () => {}, failed: () => false };

interface ClientRecord {
  /** Times of the failures within the window. */
  failures: number[];
  /** Attempts started and not settled yet. */
  pending: number;
  /** Attempts waiting for a slot, woken whenever one is settled. */
  waiting: (() => void)[];
}

/**
 * Counts failed logins per client (`clientKey`) and bans a client that fails too often. An attempt
 * takes its slot when it starts, so parallel attempts cannot get more than `maxFailures` passwords
 * checked before the ban: attempts beyond that wait until one in flight is settled.
 *
 * With a `SharedState` on Redis the same holds across all replicas: an attempt takes a slot in this
 * replica's own count first, then one in the cluster's (src/cluster/shared-bans.ts); while Redis is
 * unavailable the replica's own count decides alone.
 */
export class BruteForceGuard {
  private readonly clients = new Map<string, ClientRecord>();
  private readonly bannedUntil = new Map<string, number>();
  private readonly cluster: SharedBans | undefined;

  constructor(
    private readonly options: BruteForceOptions,
    private readonly now: () => number = Date.now,
    shared?: SharedState,
  ) {
    if (shared && options.maxFailures > 0) this.cluster = new SharedBans(shared, options, now);
  }

  /** Milliseconds the client remains banned (here, or by the cluster as far as this replica has heard); 0 when it is not banned. */
  bannedFor(ip: string | undefined): number {
    const key = this.keyOf(ip);
    return Math.max(this.bannedForKey(key), this.cluster?.bannedFor(key) ?? 0);
  }

  /**
   * Starts a login attempt: resolves with its slot (settle it exactly once) or with 'banned'.
   * While the client's failures and attempts in flight add up to `maxFailures`, it waits.
   */
  async begin(ip: string | undefined): Promise<LoginAttempt | 'banned'> {
    if (this.options.maxFailures <= 0) return UNGUARDED;
    const key = this.keyOf(ip);
    const cluster = this.cluster;
    if (cluster && cluster.bannedFor(key) > 0) return 'banned';
    const local = await this.beginLocal(key);
    if (local === 'banned' || !cluster) return local;
    for (;;) {
      const shared = await cluster.begin(key);
      // Redis unavailable: this replica's own count decides.
      if (shared === undefined) return local;
      if (shared === 'wait') {
        await cluster.changed(key);
        continue;
      }
      if ('banned' in shared) {
        local.succeeded();
        return 'banned';
      }
      return this.sharedAttempt(key, local, cluster, shared.slot);
    }
  }

  /** Closes the connection that hears of the cluster's bans. */
  close(): void {
    this.cluster?.close();
  }

  /** An attempt holding a slot here and one in the cluster. */
  private sharedAttempt(key: string, local: LocalAttempt, cluster: SharedBans, slot: string): LoginAttempt {
    let settled = false;
    return {
      succeeded: () => {
        if (settled) return;
        settled = true;
        local.succeeded();
        void cluster.settle(key, slot, false);
      },
      failed: async () => {
        if (settled) return false;
        settled = true;
        const bannedHere = local.failed();
        const bannedThere = await cluster.settle(key, slot, true);
        // This replica's own count banned first (failures counted while Redis was down): shared too.
        if (bannedHere && bannedThere === false) await cluster.ban(key);
        return bannedHere || bannedThere === true;
      },
    };
  }

  /** The slot in this replica's own count. */
  private async beginLocal(key: string): Promise<LocalAttempt | 'banned'> {
    for (;;) {
      if (this.bannedForKey(key) > 0) return 'banned';
      const record = this.record(key);
      if (record.failures.length + record.pending < this.options.maxFailures) {
        record.pending++;
        return this.attempt(key, record);
      }
      if (record.waiting.length >= MAX_WAITING_PER_CLIENT) return 'banned';
      await new Promise<void>((resolve) => record.waiting.push(resolve));
    }
  }

  /** Records a failed login outside an attempt; true when this failure got the client banned. */
  recordFailure(ip: string | undefined): boolean {
    if (this.options.maxFailures <= 0) return false;
    const key = this.keyOf(ip);
    const banned = this.fail(key, this.record(key));
    this.forgetIfIdle(key);
    return banned;
  }

  private attempt(key: string, record: ClientRecord): LocalAttempt {
    let settled = false;
    const settle = (failed: boolean): boolean => {
      if (settled) return false;
      settled = true;
      record.pending--;
      const banned = failed && this.fail(key, record);
      for (const wake of record.waiting.splice(0)) wake();
      this.forgetIfIdle(key);
      return banned;
    };
    return { succeeded: () => void settle(false), failed: () => settle(true) };
  }

  private fail(key: string, record: ClientRecord): boolean {
    const now = this.now();
    this.prune(record, now);
    record.failures.push(now);
    if (record.failures.length < this.options.maxFailures) return false;
    record.failures = [];
    this.bannedUntil.set(key, now + this.options.banSeconds * 1000);
    this.trim(this.bannedUntil);
    return true;
  }

  private keyOf(ip: string | undefined): string {
    return clientKey(ip, this.options.ipv6PrefixLength);
  }

  private bannedForKey(key: string): number {
    const until = this.bannedUntil.get(key);
    if (until === undefined) return 0;
    const left = until - this.now();
    if (left > 0) return left;
    this.bannedUntil.delete(key);
    return 0;
  }

  /** The client's record with failures outside the window dropped. */
  private record(key: string): ClientRecord {
    let record = this.clients.get(key);
    if (!record) {
      record = { failures: [], pending: 0, waiting: [] };
      this.clients.set(key, record);
      this.trim(this.clients);
    }
    this.prune(record, this.now());
    return record;
  }

  private prune(record: ClientRecord, now: number): void {
    const windowStart = now - this.options.windowSeconds * 1000;
    if (record.failures.length > 0 && (record.failures[0] as number) <= windowStart) {
      record.failures = record.failures.filter((t) => t > windowStart);
    }
  }

  private forgetIfIdle(key: string): void {
    const record = this.clients.get(key);
    if (record && record.failures.length === 0 && record.pending === 0 && record.waiting.length === 0) this.clients.delete(key);
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

/**
 * Global and per-client (`clientKey`) counts of open control connections. With a `SharedState` on
 * Redis, `admitShared` applies the limits to the sum over all live replicas
 * (src/cluster/shared-connections.ts); while Redis is unavailable, to this replica's own count.
 */
export class ConnectionLimiter {
  private total = 0;
  private readonly perIp = new Map<string, number>();
  private readonly cluster: SharedConnections | undefined;

  constructor(
    private readonly maxConnections: number,
    private readonly maxConnectionsPerIp: number,
    private readonly ipv6PrefixLength = DEFAULT_IPV6_PREFIX_LENGTH,
    shared?: SharedState,
  ) {
    if (shared && (maxConnections > 0 || maxConnectionsPerIp > 0)) {
      this.cluster = new SharedConnections(shared, maxConnections, maxConnectionsPerIp, () => ({ total: this.total, perClient: this.perIp }));
    }
  }

  /**
   * `admit`, then the same limits over every live replica's count when Redis is available (a
   * Redis that does not answer within its command time-out leaves the decision to this replica).
   */
  async admitShared(ip: string | undefined): Promise<{ release: () => void } | { refused: ConnectionRefusal }> {
    const admitted = this.admit(ip);
    if ('refused' in admitted || !this.cluster) return admitted;
    const key = clientKey(ip, this.ipv6PrefixLength);
    const verdict = await this.cluster.admit(key, this.total, this.perIp.get(key) ?? 0);
    if (verdict === 'ok' || verdict === undefined) return admitted;
    admitted.release();
    return { refused: verdict };
  }

  /** Admits a connection (call `release` when it closes) or says which limit refuses it. */
  admit(ip: string | undefined): { release: () => void } | { refused: ConnectionRefusal } {
    const key = clientKey(ip, this.ipv6PrefixLength);
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
        this.cluster?.publish(key);
      },
    };
  }
}

/** Bounds the keys a flood of distinct addresses can make the throttle hold. */
const MAX_THROTTLED_KEYS = 10_000;

/**
 * At most one log line per key per interval: a client that floods connections after its ban (or
 * beyond the limits) must not be able to fill the disk with "connection refused" lines. The line
 * that is let through says how many were suppressed since the last one.
 */
export class LogThrottle {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The number of lines suppressed since the last one when this one may be logged; undefined when it may not. */
  admit(key: string): number | undefined {
    const now = this.now();
    const seen = this.last.get(key);
    if (seen && now - seen.at < this.intervalMs) {
      seen.suppressed++;
      return undefined;
    }
    this.last.delete(key);
    this.last.set(key, { at: now, suppressed: 0 });
    for (const k of this.last.keys()) {
      if (this.last.size <= MAX_THROTTLED_KEYS) break;
      this.last.delete(k);
    }
    return seen?.suppressed ?? 0;
  }
}
