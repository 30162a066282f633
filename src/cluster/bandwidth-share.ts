import { sharedScript, type SharedState } from './shared-state.js';

/** How often a replica with transfers running renews its registration and re-computes its share. */
export const SHARE_RENEW_MS = 1_000;
/** A registration not renewed for this long no longer counts (a replica that crashed or lost Redis). */
const SHARE_EXPIRY_MS = 3_000;

/**
 * Registers ARGV[1] (the replica) in the sorted set KEYS[1] at Redis's time, drops the
 * registrations older than ARGV[2] ms, and returns how many replicas are registered.
 */
const REGISTER = sharedScript(`local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
return redis.call('ZCARD', KEYS[1])`);

/**
 * One global bandwidth cap (`ftp.bandwidth.uploadKiBps` or `downloadKiBps`) shared by the replicas
 * through Redis: each replica with transfers running in this direction registers (renewed every
 * second, forgotten 3 s after its last renewal) and gets the cap divided by the number of replicas
 * registered, re-computed every second. Without Redis (or while it is down) the replica uses the
 * whole cap: the bound is then the cap times the number of replicas with transfers running.
 */
export class BandwidthShare {
  private active = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly key: string;

  /** `onShare` receives the number of replicas the cap is divided by (1 without Redis). */
  constructor(
    private readonly shared: SharedState,
    direction: 'upload' | 'download',
    private readonly onShare: (replicas: number) => void,
  ) {
    this.key = shared.key('bandwidth', direction);
  }

  /** A transfer in this direction starts on this replica; call the result once when it ends. */
  acquire(): () => void {
    if (this.active++ === 0) {
      void this.renew();
      this.timer = setInterval(() => void this.renew(), SHARE_RENEW_MS);
      this.timer.unref();
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.active > 0) return;
      clearInterval(this.timer);
      this.timer = undefined;
      // Idle: the others get this replica's part back on their next renewal.
      void this.shared.run('bandwidth', (redis) => redis.zrem(this.key, this.shared.replicaId));
      this.onShare(1);
    };
  }

  /** Stops renewing (the replica stops). */
  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async renew(): Promise<void> {
    const replicas = await this.shared.run('bandwidth', (redis) => REGISTER(redis, [this.key], [this.shared.replicaId, SHARE_EXPIRY_MS]) as Promise<number>);
    // An answer that arrives after the last transfer ended changes nothing.
    if (this.active > 0) this.onShare(Math.max(1, replicas ?? 1));
  }
}
