import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { sharedScript, type SharedState } from './shared-state.js';

/** How long a slot taken for a login attempt counts at most: a replica that dies holding one cannot keep it longer. */
const ATTEMPT_LEASE_MS = 60_000;
/** How long an attempt that must wait looks again without being told a slot came free. */
const WAIT_POLL_MS = 250;
/** Bounds the bans held in the local cache (an address-spraying attacker). */
const MAX_CACHED_BANS = 100_000;

export interface SharedBanOptions {
  /** Failed logins from one client within the window that trigger a ban (> 0). */
  maxFailures: number;
  windowSeconds: number;
  banSeconds: number;
}

/** What the cluster says to a login attempt that asks for a slot. */
export type SharedBegin = { slot: string } | { banned: number } | 'wait';

// The time is Redis's own (TIME), so the replicas' clocks need not agree.
const NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * Takes a slot for a login attempt, or says why not. KEYS: failures (zset of times), slots (zset of
 * "replica|attempt" by lease expiry), ban. ARGV: maxFailures, windowMs, leaseMs, slot member,
 * liveness key prefix, own replica id. Slots of replicas whose liveness key is gone do not count.
 */
const BEGIN = sharedScript(`${NOW}
local ttl = redis.call('PTTL', KEYS[3])
if ttl > 0 then return {'banned', ttl} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local replica = string.match(member, '^(.*)|[^|]*$')
  if replica == ARGV[6] or redis.call('EXISTS', ARGV[5] .. replica) == 1 then held = held + 1 end
end
if held >= tonumber(ARGV[1]) then return {'wait', 0} end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[4])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]))
return {'slot', 0}`);

/**
 * Settles a slot (ARGV[1], may be '' for a failure outside an attempt); with ARGV[2] = '1' counts a
 * failure and bans at the count. KEYS: failures, slots, ban, ban index (zset of client by ban end).
 * ARGV: member, failed, maxFailures, windowMs, banMs, channel, client key, failure id. Returns 1
 * when this failure banned the client.
 */
const SETTLE = sharedScript(`${NOW}
if ARGV[1] ~= '' then redis.call('ZREM', KEYS[2], ARGV[1]) end
if ARGV[2] ~= '1' then
  redis.call('PUBLISH', ARGV[6], 'free ' .. ARGV[7])
  return 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[4]))
redis.call('ZADD', KEYS[1], now, ARGV[8])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PUBLISH', ARGV[6], 'free ' .. ARGV[7])
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[3], '1', 'PX', tonumber(ARGV[5]))
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[5]), ARGV[7])
redis.call('PUBLISH', ARGV[6], 'ban ' .. ARGV[5] .. ' ' .. ARGV[7])
return 1`);

/** Bans a client outright (one banned by a replica's own count). KEYS: ban, ban index. ARGV: banMs, channel, client key. */
const BAN = sharedScript(`${NOW}
redis.call('SET', KEYS[1], '1', 'PX', tonumber(ARGV[1]))
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), ARGV[3])
redis.call('PUBLISH', ARGV[2], 'ban ' .. ARGV[1] .. ' ' .. ARGV[3])
return 1`);

/** The bans in force: a flat list of client key, milliseconds left. KEYS: ban index. ARGV: max entries. */
const LIST = sharedScript(`${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local entries = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for i = 1, #entries, 2 do
  out[#out + 1] = entries[i]
  out[#out + 1] = tostring(tonumber(entries[i + 1]) - now)
end
return out`);

/**
 * Brute-force failure counts, login slots and bans of every replica, in Redis (`cluster.redis`).
 * Every call resolves undefined when Redis is unavailable: the caller then decides on its own
 * count. Bans are also kept in a local cache, filled by a pub/sub channel (a second connection
 * owned here) and reloaded whenever Redis becomes available, so the check at accept stays
 * synchronous; the authoritative check is `begin`, at the login attempt.
 */
export class SharedBans {
  /** Local clock time each cached cluster ban ends. */
  private readonly cached = new Map<string, number>();
  /** Attempts waiting for a slot, woken when one of their client is settled anywhere. */
  private readonly waiting = new Map<string, Set<() => void>>();
  private subscriber: Redis | undefined;
  private closed = false;
  private readonly channel: string;

  constructor(
    private readonly shared: SharedState,
    private readonly options: SharedBanOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.channel = shared.key('bans', 'events');
    shared.onAvailability((up) => {
      if (up) void this.connected();
    });
    if (shared.available()) void this.connected();
  }

  /** Milliseconds the client remains banned by the cluster, as far as this replica has heard; 0 when not. */
  bannedFor(key: string): number {
    const until = this.cached.get(key);
    if (until === undefined) return 0;
    const left = until - this.now();
    if (left > 0) return left;
    this.cached.delete(key);
    return 0;
  }

  /** Asks the cluster for a login slot of this client; undefined when Redis is unavailable. */
  async begin(key: string): Promise<SharedBegin | undefined> {
    const slot = `${this.shared.replicaId}|${randomUUID()}`;
    const { maxFailures, windowSeconds } = this.options;
    const result = await this.shared.run('login-begin', (redis) =>
      BEGIN(redis, this.keys(key).slice(0, 3), [maxFailures, windowSeconds * 1000, ATTEMPT_LEASE_MS, slot, this.shared.livenessKey(''), this.shared.replicaId]),
    );
    if (!Array.isArray(result)) return undefined;
    const [status, ttl] = result as [string, number];
    if (status === 'banned') {
      this.cache(key, Number(ttl));
      return { banned: Number(ttl) };
    }
    return status === 'slot' ? { slot } : 'wait';
  }

  /**
   * Settles a slot taken by `begin` (or, with `slot` undefined, counts a failure outside an
   * attempt): true when this failure banned the client; undefined when Redis is unavailable.
   */
  async settle(key: string, slot: string | undefined, failed: boolean): Promise<boolean | undefined> {
    const { maxFailures, windowSeconds, banSeconds } = this.options;
    const result = await this.shared.run('login-settle', (redis) =>
      SETTLE(redis, this.keys(key), [slot ?? '', failed ? '1' : '0', maxFailures, windowSeconds * 1000, banSeconds * 1000, this.channel, key, randomUUID()]),
    );
    if (result === undefined) return undefined;
    if (result !== 1) return false;
    this.cache(key, banSeconds * 1000);
    return true;
  }

  /** Shares a ban this replica decided on its own count. */
  async ban(key: string): Promise<void> {
    const banMs = this.options.banSeconds * 1000;
    const [, , ban, index] = this.keys(key);
    await this.shared.run('login-ban', (redis) => BAN(redis, [ban as string, index as string], [banMs, this.channel, key]));
  }

  /** Resolves when an attempt of this client was settled somewhere, or after a short while (never later). */
  changed(key: string): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiting.get(key);
      if (!set) this.waiting.set(key, (set = new Set()));
      const wake = () => {
        clearTimeout(timer);
        set.delete(wake);
        if (set.size === 0 && this.waiting.get(key) === set) this.waiting.delete(key);
        resolve();
      };
      const timer = setTimeout(wake, WAIT_POLL_MS);
      set.add(wake);
    });
  }

  /** Closes the pub/sub connection. */
  close(): void {
    this.closed = true;
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }

  /** Opens the pub/sub connection; false when that failed (tried again when Redis is next available). */
  private async subscribe(): Promise<boolean> {
    const subscriber = await this.shared.run('bans-subscribe', async (redis) => redis.duplicate({ lazyConnect: true }));
    if (!subscriber) return false;
    if (this.closed || this.subscriber) {
      subscriber.disconnect();
      return !this.closed;
    }
    this.subscriber = subscriber;
    // The shared connection reports an outage (once a minute); this one says nothing more.
    subscriber.on('error', () => undefined);
    subscriber.on('message', (_channel: string, message: string) => this.onMessage(message));
    try {
      await subscriber.connect();
      await subscriber.subscribe(this.channel);
      return true;
    } catch {
      subscriber.disconnect();
      if (this.subscriber === subscriber) this.subscriber = undefined;
      return false;
    }
  }

  /** Failures, slots, ban and the index of bans, for one client. */
  private keys(key: string): string[] {
    return [this.shared.key('bans', 'failures', key), this.shared.key('bans', 'slots', key), this.shared.key('bans', 'ban', key), this.shared.key('bans', 'index')];
  }

  private cache(key: string, ms: number): void {
    if (ms <= 0) return;
    const until = this.now() + ms;
    if ((this.cached.get(key) ?? 0) >= until) return;
    this.cached.delete(key);
    this.cached.set(key, until);
    for (const k of this.cached.keys()) {
      if (this.cached.size <= MAX_CACHED_BANS) break;
      this.cached.delete(k);
    }
  }

  private onMessage(message: string): void {
    const [kind, ...rest] = message.split(' ');
    if (kind === 'ban' && rest.length === 2) this.cache(rest[1] as string, Number(rest[0]));
    const key = kind === 'ban' ? rest[1] : rest[0];
    for (const wake of [...(this.waiting.get(key ?? '') ?? [])]) wake();
  }

  /** Redis is (again) available: subscribe (once; ioredis resubscribes after a reconnect), then reload the bans. */
  private async connected(): Promise<void> {
    if (this.closed) return;
    if (!this.subscriber && !(await this.subscribe())) return;
    const [, , , index] = this.keys('');
    const list = await this.shared.run('bans-reload', (redis) => LIST(redis, [index as string], [MAX_CACHED_BANS]));
    if (!Array.isArray(list)) return;
    for (let i = 0; i + 1 < list.length; i += 2) this.cache(String(list[i]), Number(list[i + 1]));
  }
}
