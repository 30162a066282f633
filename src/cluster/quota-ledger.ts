import { createHash } from 'node:crypto';
import type { Usage } from '../storage/s3-usage.js';
import { sharedScript, type SharedState } from './shared-state.js';

/** Most a replica leases for one upload in one Redis round trip (it grows within the lease without asking). */
export const LEASE_BLOCK_BYTES = 8 * 1024 * 1024;
/** A lease takes at most this fraction of what is left, so near the limit leases shrink and little sits unused. */
const LEASE_SHARE = 4;
/** Retry of a settle that did not reach Redis (a time-out: Redis is up but slow). */
const RESYNC_MS = 1_000;

/** Redis TIME in ms, shared by the scripts that date a measurement. */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * Sets this replica's absolute holdings, adds its commits not yet counted, and sums what the live
 * replicas other than this one hold; the fields of a replica whose liveness key is gone are removed.
 * KEYS: entry hash, reservations hash. ARGV[1..6]: replica, liveness key prefix, held bytes, held
 * objects, committed bytes, committed objects.
 */
const HOLDINGS = `local me, live = ARGV[1], ARGV[2]
local heldB, heldO = tonumber(ARGV[3]), tonumber(ARGV[4])
if tonumber(ARGV[5]) ~= 0 or tonumber(ARGV[6]) ~= 0 then
  redis.call('HINCRBY', KEYS[1], 'ctb', ARGV[5])
  redis.call('HINCRBY', KEYS[1], 'cto', ARGV[6])
end
local othersB, othersO = 0, 0
local fields = redis.call('HGETALL', KEYS[2])
for i = 1, #fields, 2 do
  local field = fields[i]
  local replica, kind = string.sub(field, 1, -3), string.sub(field, -1)
  if replica ~= me then
    if redis.call('EXISTS', live .. replica) == 1 then
      if kind == 'b' then othersB = othersB + tonumber(fields[i + 1]) else othersO = othersO + tonumber(fields[i + 1]) end
    else
      redis.call('HDEL', KEYS[2], field)
    end
  end
end`;

/**
 * The reservation check and the reservation in one atomic step.
 * ARGV[7..13]: needed bytes, object slots wanted (0 or 1), announced size (-1: none), lease wanted,
 * maxBytes (-1: none), maxObjects (-1: none), refresh ms (-1: use the measurement whatever its age).
 * Returns {'measure'} when no usable measurement is there, {'ok', granted, usedB, usedO},
 * or {why, usedB, usedO} (nothing taken).
 */
const RESERVE = sharedScript(`${HOLDINGS}
${NOW}
local need, objects, size, want = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local maxB, maxO, refresh = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
redis.call('HSET', KEYS[2], me .. ':b', heldB, me .. ':o', heldO)
local m = redis.call('HMGET', KEYS[1], 'at', 'mb', 'mo', 'mctb', 'mcto', 'mchg', 'ctb', 'cto', 'chg')
if not m[1] then return {'measure'} end
if refresh >= 0 and (now - tonumber(m[1]) >= refresh or tonumber(m[9] or 0) ~= tonumber(m[6])) then return {'measure'} end
local usedB = tonumber(m[2]) + tonumber(m[7] or 0) - tonumber(m[4]) + othersB + heldB
local usedO = tonumber(m[3]) + tonumber(m[8] or 0) - tonumber(m[5]) + othersO + heldO
if objects > 0 and maxO >= 0 and usedO + objects > maxO then return {'objects', usedB, usedO} end
local granted = 0
if maxB >= 0 then
  local remaining = maxB - usedB
  if remaining <= 0 or remaining < need then return {'bytes', usedB, usedO} end
  if size >= 0 and size > remaining then return {'announced size', usedB, usedO} end
  granted = math.min(remaining, math.max(need, math.min(want, math.floor(remaining / ${LEASE_SHARE}))))
end
redis.call('HSET', KEYS[2], me .. ':b', heldB + granted, me .. ':o', heldO + objects)
return {'ok', granted, usedB, usedO}`);

/** Gives back what this replica no longer holds and counts its commits (ARGV as HOLDINGS). */
const SETTLE = sharedScript(`${HOLDINGS}
redis.call('HSET', KEYS[2], me .. ':b', heldB, me .. ':o', heldO)
return 1`);

/**
 * Records a measurement taken after the snapshot ARGV[3..5] (ctb, cto, chg when its listing
 * started): the commits counted since then are on top of it. An older measurement than the one
 * recorded is dropped. ARGV[1..2]: bytes, objects listed.
 */
const MEASURED = sharedScript(`${NOW}
local m = redis.call('HMGET', KEYS[1], 'mctb', 'mchg')
if m[1] and (tonumber(ARGV[3]) < tonumber(m[1]) or tonumber(ARGV[5]) < tonumber(m[2])) then return 0 end
redis.call('HSET', KEYS[1], 'at', now, 'mb', ARGV[1], 'mo', ARGV[2], 'mctb', ARGV[3], 'mcto', ARGV[4], 'mchg', ARGV[5])
return 1`);

/** Marks stale every entry of bucket KEYS[1]'s index whose prefix starts `ARGV[1]` (the changed key). */
const STALE = sharedScript(`local members = redis.call('SMEMBERS', KEYS[1])
for _, member in ipairs(members) do
  local id, prefix = string.sub(member, 1, 40), string.sub(member, 42)
  if string.sub(ARGV[1], 1, #prefix) == prefix then redis.call('HINCRBY', ARGV[2] .. id, 'chg', 1) end
end
return 1`);

/** The quota of one entry (absent: unlimited). */
export interface QuotaLimits {
  maxBytes?: number;
  maxObjects?: number;
}

/** What a lease asks for. */
export interface LeaseRequest {
  /** Bytes that must fit now (0 when an upload starts). */
  need: number;
  /** The object slot an upload takes when it starts (0 when it replaces a file, and for every later lease). */
  objects: 0 | 1;
  /** The size ALLO announced. */
  size?: number;
  limits: QuotaLimits;
  /** Measured usage older than this, or stale, is measured again first; undefined: any measurement will do. */
  refreshMs?: number;
}

/** The answer of the shared ledger: `measure` means no usable measurement is there yet. */
export type LeaseResult = { granted: number; usage: Usage } | { refused: string; usage: Usage } | 'measure';

/**
 * One quota entry (bucket/prefix of an endpoint) in Redis, from this replica's side. Redis holds the
 * shared measured usage (`mb`, `mo`, taken by whichever replica found it missing, stale or old),
 * the commits of every replica counted since (`ctb - mctb`, `cto - mcto`), a change counter that
 * deletes and renames bump (`chg`), and per replica the bytes and object slots its running uploads
 * hold (`<replica>:b`, `<replica>:o`). A replica always sends the absolute value of what it holds,
 * with its calls for one entry one at a time, so a call lost to an outage or a time-out is
 * corrected by the next one; what a replica holds stops counting when its liveness key is gone.
 */
export class SharedQuotaEntry {
  /** What this replica's uploads hold in Redis (their leases and object slots). */
  readonly held: Usage = { bytes: 0, objects: 0 };
  /** Commits of this replica Redis has not counted yet. */
  private readonly unsent: Usage = { bytes: 0, objects: 0 };
  private queue: Promise<unknown> = Promise.resolve();
  private measuring: Promise<boolean> | undefined;
  private resync: NodeJS.Timeout | undefined;
  private readonly hashKey: string;
  private readonly reservationsKey: string;

  constructor(
    private readonly shared: SharedState,
    private readonly id: string,
    private readonly indexKey: string,
    private readonly prefix: string,
  ) {
    this.hashKey = shared.key('quota', id);
    this.reservationsKey = shared.key('quota', id, 'r');
  }

  /**
   * Checks and takes, atomically across replicas: `need` bytes plus a lease of up to
   * {@link LEASE_BLOCK_BYTES} (at most a quarter of what is left), and `objects` slots.
   * Undefined when Redis is unavailable: the caller decides on its own ledger.
   */
  lease(request: LeaseRequest): Promise<LeaseResult | undefined> {
    return this.serial(async () => {
      const sent = { ...this.unsent };
      const reply = await this.shared.run('quota', async (redis) => {
        await redis.sadd(this.indexKey, `${this.id} ${this.prefix}`);
        return (await RESERVE(redis, [this.hashKey, this.reservationsKey], [
          ...this.holdings(sent),
          request.need,
          request.objects,
          request.size ?? -1,
          LEASE_BLOCK_BYTES,
          request.limits.maxBytes ?? -1,
          request.limits.maxObjects ?? -1,
          request.refreshMs ?? -1,
        ])) as [string, ...number[]];
      });
      if (!reply) return undefined;
      this.sent(sent);
      const [verdict, a = 0, b = 0, c = 0] = reply;
      if (verdict === 'measure') return 'measure';
      if (verdict !== 'ok') return { refused: verdict, usage: { bytes: a, objects: b } };
      this.held.bytes += a;
      this.held.objects += request.objects;
      return { granted: a, usage: { bytes: b, objects: c } };
    });
  }

  /** An upload ends: what it held goes back; `committed` (if it committed) counts as usage. Never waits. */
  settle(bytes: number, objects: number, committed?: Usage): void {
    this.held.bytes -= bytes;
    this.held.objects -= objects;
    if (committed) {
      this.unsent.bytes += committed.bytes;
      this.unsent.objects += committed.objects;
    }
    void this.flush();
  }

  /** Sends this replica's holdings and commits again (after Redis came back). */
  flush(): Promise<void> {
    return this.serial(async () => {
      const sent = { ...this.unsent };
      const ok = await this.shared.run('quota', (redis) => SETTLE(redis, [this.hashKey, this.reservationsKey], this.holdings(sent)));
      if (ok !== undefined) return this.sent(sent);
      // Redis is down (sent again when it returns) or slow: try again shortly.
      if (this.shared.available() && !this.resync) {
        this.resync = setTimeout(() => {
          this.resync = undefined;
          void this.flush();
        }, RESYNC_MS);
        this.resync.unref();
      }
    });
  }

  /**
   * Measures (with `list`, one listing started after a snapshot of the commit counters) and records
   * the result for every replica. Concurrent calls on this replica share one listing. False when
   * Redis is unavailable.
   */
  measure(list: () => Promise<Usage>): Promise<boolean> {
    this.measuring ??= (async () => {
      const snapshot = await this.shared.run('quota', (redis) => redis.hmget(this.hashKey, 'ctb', 'cto', 'chg'));
      if (!snapshot) return false;
      const usage = await list();
      const [ctb, cto, chg] = snapshot.map((v) => Number(v ?? 0));
      return (await this.shared.run('quota', (redis) => MEASURED(redis, [this.hashKey], [usage.bytes, usage.objects, ctb ?? 0, cto ?? 0, chg ?? 0]))) !== undefined;
    })().finally(() => (this.measuring = undefined));
    return this.measuring;
  }

  private holdings(sent: Usage): (string | number)[] {
    return [this.shared.replicaId, this.shared.livenessKey(''), this.held.bytes, this.held.objects, sent.bytes, sent.objects];
  }

  private sent(sent: Usage): void {
    this.unsent.bytes -= sent.bytes;
    this.unsent.objects -= sent.objects;
  }

  /** Runs this replica's calls for the entry one at a time, so each carries exact absolute holdings. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

/**
 * The quota entries of this replica in Redis (`cluster.redis`): reservations of every replica
 * count against one limit. See {@link SharedQuotaEntry}; docs/operations.md, "Quotas and bandwidth
 * across replicas".
 */
export class SharedQuotaLedger {
  private readonly entries = new Map<string, SharedQuotaEntry>();

  constructor(private readonly shared: SharedState) {
    // Redis back (perhaps empty after a restart): what this replica holds counts again at once.
    shared.onAvailability((up) => {
      if (up) for (const entry of this.entries.values()) void entry.flush();
    });
  }

  /** Whether Redis can be asked now (else every decision is the replica's own). */
  available(): boolean {
    return this.shared.available();
  }

  /** The entry of `bucket`/`prefix` on `endpoint` ('' for the default target). */
  entry(endpoint: string, bucket: string, prefix: string): SharedQuotaEntry {
    const id = createHash('sha1').update(JSON.stringify([endpoint, bucket, prefix])).digest('hex');
    let entry = this.entries.get(id);
    if (!entry) this.entries.set(id, (entry = new SharedQuotaEntry(this.shared, id, this.indexKey(bucket), prefix)));
    return entry;
  }

  /** Something under `bucket/key` was removed or renamed: every replica measures the entries above it again. Never waits. */
  markStale(bucket: string, key: string): void {
    void this.shared.run('quota', (redis) => STALE(redis, [this.indexKey(bucket)], [key, this.shared.key('quota', '')]));
  }

  private indexKey(bucket: string): string {
    return this.shared.key('quota', 'bucket', createHash('sha1').update(bucket).digest('hex'));
  }
}
