import { sharedScript, type SharedState } from './shared-state.js';

/** A client's count outlives its last change this long: what a crashed replica wrote for an address does not stay forever. */
const CLIENT_COUNT_TTL_MS = 24 * 3_600_000;
/** Client keys whose count could not be written, kept for the re-publication when Redis returns. */
const MAX_UNPUBLISHED = 100_000;

export type SharedConnectionRefusal = 'max-connections' | 'max-connections-per-ip';

/** This replica's own counts: its open connections in all and from each client. */
export interface LocalConnectionCounts {
  total: number;
  perClient: ReadonlyMap<string, number>;
}

/**
 * Admits a connection when the live replicas' counts leave room, writing this replica's counts.
 * KEYS: total hash, client hash (field = replica id). ARGV: own replica id, liveness key prefix,
 * maxConnections, maxConnectionsPerIp (0: no limit), own total and own client count with this
 * connection, client TTL. Fields of replicas whose liveness key is gone are dropped.
 */
const ADMIT = sharedScript(`
local function others(key)
  local sum = 0
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local replica = all[i]
    if replica ~= ARGV[1] then
      if redis.call('EXISTS', ARGV[2] .. replica) == 1 then sum = sum + tonumber(all[i + 1]) else redis.call('HDEL', key, replica) end
    end
  end
  return sum
end
local maxTotal, maxClient = tonumber(ARGV[3]), tonumber(ARGV[4])
local total, client = tonumber(ARGV[5]), tonumber(ARGV[6])
if maxTotal > 0 and others(KEYS[1]) + total > maxTotal then return 'max-connections' end
if maxClient > 0 and others(KEYS[2]) + client > maxClient then return 'max-connections-per-ip' end
redis.call('HSET', KEYS[1], ARGV[1], total)
redis.call('HSET', KEYS[2], ARGV[1], client)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[7]))
return 'ok'`);

/**
 * Connection counts of every replica, in Redis hashes (`conn:total` and `conn:client:<key>`, one
 * field per replica), for cluster-wide `maxConnections` and `maxConnectionsPerIp`. This replica
 * always writes its own counts as absolute values (never increments): a write that is lost while
 * Redis is down is corrected by the next one, and all of them are written again when Redis
 * becomes available, so the counts converge after an outage.
 */
export class SharedConnections {
  /** Client keys whose last count did not reach Redis. */
  private readonly unpublished = new Set<string>();

  constructor(
    private readonly shared: SharedState,
    private readonly maxConnections: number,
    private readonly maxConnectionsPerIp: number,
    private readonly counts: () => LocalConnectionCounts,
  ) {
    shared.onAvailability((up) => {
      if (up) void this.republish();
    });
  }

  /** Whether the cluster is asked at all (Redis configured and connected). */
  get active(): boolean {
    return this.shared.available();
  }

  /**
   * Checks a connection this replica has counted already (`total` and `client` include it) against
   * the cluster: 'ok' (its counts are written), a refusal, or undefined when Redis is unavailable.
   */
  async admit(key: string, total: number, client: number): Promise<'ok' | SharedConnectionRefusal | undefined> {
    const result = await this.shared.run('connection-admit', (redis) =>
      ADMIT(redis, [this.totalKey(), this.clientKey(key)], [this.shared.replicaId, this.shared.livenessKey(''), this.maxConnections, this.maxConnectionsPerIp, total, client, CLIENT_COUNT_TTL_MS]),
    );
    if (result === undefined) {
      this.markUnpublished(key);
      return undefined;
    }
    return result as 'ok' | SharedConnectionRefusal;
  }

  /** Writes this replica's current counts for `key` (after a connection closed or was refused). */
  publish(key: string): void {
    if (!this.active) {
      this.markUnpublished(key);
      return;
    }
    void this.write([key]).then((ok) => ok || this.markUnpublished(key));
  }

  /** Writes all this replica's counts, and zero for those that were not written while Redis was down. */
  async republish(): Promise<void> {
    const keys = new Set([...this.counts().perClient.keys(), ...this.unpublished]);
    this.unpublished.clear();
    if (!(await this.write([...keys]))) {
      for (const key of keys) this.markUnpublished(key);
    }
  }

  private async write(keys: readonly string[]): Promise<boolean> {
    const { total, perClient } = this.counts();
    const id = this.shared.replicaId;
    const done = await this.shared.run('connection-counts', async (redis) => {
      const batch = redis.multi();
      if (total > 0) batch.hset(this.totalKey(), id, total);
      else batch.hdel(this.totalKey(), id);
      for (const key of keys) {
        const mine = perClient.get(key) ?? 0;
        if (mine > 0) batch.hset(this.clientKey(key), id, mine).pexpire(this.clientKey(key), CLIENT_COUNT_TTL_MS);
        else batch.hdel(this.clientKey(key), id);
      }
      await batch.exec();
      return true;
    });
    return done === true;
  }

  private markUnpublished(key: string): void {
    if (this.unpublished.size < MAX_UNPUBLISHED) this.unpublished.add(key);
  }

  private totalKey(): string {
    return this.shared.key('conn', 'total');
  }

  private clientKey(key: string): string {
    return this.shared.key('conn', 'client', key);
  }
}
