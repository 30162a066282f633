import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Redis, RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { BridgeConfig } from '../config/schema.js';
import { redactUrl } from '../config/redact.js';

export type ClusterConfig = BridgeConfig['cluster'];

/** How often a replica renews its liveness key, and how long that key outlives the last renewal. */
export const HEARTBEAT_MS = 5_000;
export const LIVENESS_MS = 15_000;
/** At most one "Redis unavailable" warning per this interval, however many decisions fall back. */
const WARN_INTERVAL_MS = 60_000;
/** Bound on the goodbye (deleting the liveness key) when the replica stops. */
const STOP_TIMEOUT_MS = 1_000;

/** A Lua script run by its SHA-1, sent whole only when Redis does not know it yet (NOSCRIPT). */
export interface SharedScript {
  (redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown>;
}

/** Defines a Lua script: Redis runs it atomically, so a check and the update it allows are one step. */
export function sharedScript(lua: string): SharedScript {
  const sha = createHash('sha1').update(lua).digest('hex');
  return async (redis, keys, args) => {
    try {
      return await redis.evalsha(sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(lua, keys.length, ...keys, ...args);
    }
  };
}

/**
 * What every replica shares through Redis (`cluster.redis`), for the modules that keep state per
 * client or account (bans, connection limits, quota reservations, bandwidth). Redis is never
 * required: when it is not configured, not connected, or a command fails or times out, `run`
 * resolves undefined and the caller decides on the replica's own state, so an outage of Redis
 * never stops a login or an upload; it only loosens the bounds from cluster-wide to per replica.
 */
export interface SharedState {
  /** This replica's name: the field under which it records what it holds. */
  readonly replicaId: string;
  /** Whether Redis is configured and connected now. */
  available(): boolean;
  /** A key under the configured prefix; parts are joined with `:`. */
  key(...parts: string[]): string;
  /** The key whose existence says a replica is alive (renewed every 5 s, gone 15 s after its last renewal). */
  livenessKey(replicaId: string): string;
  /**
   * Runs `fn` against Redis: its result, or undefined when Redis is unavailable or `fn` failed
   * (logged at most once a minute, counted in `fallbacks`).
   */
  run<T>(what: string, fn: (redis: Redis) => Promise<T>): Promise<T | undefined>;
  /** Calls `listener` whenever Redis becomes available (true) or unavailable (false). */
  onAvailability(listener: (up: boolean) => void): void;
  /** Decisions taken on the replica's own state because Redis was unavailable, since start. */
  readonly fallbacks: number;
}

/** The state of a replica that runs alone (no `cluster.redis`): every decision is its own. */
export const LOCAL_STATE: SharedState = {
  replicaId: 'local',
  available: () => false,
  key: (...parts) => parts.join(':'),
  livenessKey: (id) => `replica:${id}`,
  run: async () => undefined,
  onAvailability: () => {},
  fallbacks: 0,
};

/** The replica name used when `cluster.replicaId` is not set: unique per process on one host. */
export function defaultReplicaId(): string {
  return `${hostname()}-${process.pid}`;
}

/** One Redis connection shared by this process's state modules, with the replica's liveness key. */
export class RedisSharedState implements SharedState {
  readonly replicaId: string;
  fallbacks = 0;
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly listeners: ((up: boolean) => void)[] = [];
  private heartbeat: NodeJS.Timeout | undefined;
  private lastWarning = 0;
  private up = false;
  private stopped = false;

  /**
   * Loads the Redis client only here: a replica without `cluster.redis` does not pay for it (the
   * ioredis module costs about 20 MiB of RSS loaded).
   */
  static async create(config: NonNullable<ClusterConfig['redis']>, replicaId: string | undefined, logger: Logger): Promise<RedisSharedState> {
    const { Redis: RedisClient } = await import('ioredis');
    return new RedisSharedState(config, replicaId, logger, RedisClient);
  }

  private constructor(
    config: NonNullable<ClusterConfig['redis']>,
    replicaId: string | undefined,
    private readonly logger: Logger,
    RedisClient: typeof Redis,
  ) {
    this.replicaId = replicaId ?? defaultReplicaId();
    this.prefix = config.keyPrefix;
    const options: RedisOptions = {
      lazyConnect: true,
      // Fail at once while disconnected: the caller falls back instead of queueing behind an outage.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: config.commandTimeoutMs,
      connectTimeout: 2_000,
      retryStrategy: (times) => Math.min(2_000, 100 * 2 ** Math.min(times, 5)),
      ...(config.tls ? { tls: { rejectUnauthorized: config.tls.rejectUnauthorized, ...(config.tls.ca ? { ca: readFileSync(config.tls.ca) } : {}) } } : {}),
    };
    this.redis = new RedisClient(config.url, options);
    const where = redactUrl(config.url);
    this.redis.on('ready', () => {
      this.logger.info({ event: 'cluster', redis: where, replica: this.replicaId }, 'shared state on Redis available');
      // Up first: renew() writes only while available, and until the liveness key exists the
      // other replicas ignore what this one holds.
      this.setUp(true);
      void this.renew();
    });
    this.redis.on('close', () => this.setUp(false));
    // ioredis reports every failed (re)connection here; `run` and the availability change say it once.
    this.redis.on('error', (error: Error) => this.warn('connection', error));
  }

  /** Connects (without waiting for Redis: a replica starts and serves with Redis down) and starts the heartbeat. */
  start(): void {
    this.redis.connect().catch((error: unknown) => this.warn('connect', error));
    this.heartbeat = setInterval(() => void this.renew(), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** Removes this replica's liveness key (its records stop counting at once) and disconnects. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.heartbeat);
    if (this.up) {
      const bye = this.redis.del(this.livenessKey(this.replicaId)).catch(() => undefined);
      await Promise.race([bye, new Promise((resolve) => setTimeout(resolve, STOP_TIMEOUT_MS).unref())]);
    }
    this.redis.disconnect();
  }

  available(): boolean {
    return this.up && !this.stopped;
  }

  key(...parts: string[]): string {
    return this.prefix + parts.join(':');
  }

  livenessKey(replicaId: string): string {
    return this.key('replica', replicaId);
  }

  async run<T>(what: string, fn: (redis: Redis) => Promise<T>): Promise<T | undefined> {
    if (!this.available()) {
      this.fallbacks++;
      this.warn(what);
      return undefined;
    }
    try {
      return await fn(this.redis);
    } catch (error) {
      this.fallbacks++;
      this.warn(what, error);
      return undefined;
    }
  }

  onAvailability(listener: (up: boolean) => void): void {
    this.listeners.push(listener);
  }

  private async renew(): Promise<void> {
    if (!this.available()) return;
    await this.redis.set(this.livenessKey(this.replicaId), '1', 'PX', LIVENESS_MS).catch((error: unknown) => this.warn('heartbeat', error));
  }

  private setUp(up: boolean): void {
    if (this.up === up) return;
    this.up = up;
    if (!up && !this.stopped) this.warn('disconnected');
    for (const listener of this.listeners) listener(up && !this.stopped);
  }

  private warn(what: string, error?: unknown): void {
    if (this.stopped) return;
    const now = Date.now();
    if (now - this.lastWarning < WARN_INTERVAL_MS) return;
    this.lastWarning = now;
    const err = error instanceof Error ? error.message : error === undefined ? undefined : String(error);
    this.logger.warn({ event: 'cluster', what, ...(err ? { err } : {}), replica: this.replicaId }, "Redis unavailable: deciding on this replica's own state (bounds hold per replica, not cluster-wide)");
  }
}
