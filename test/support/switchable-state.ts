import type { Redis as RedisClient } from 'ioredis';
import type { SharedState } from '../../src/cluster/shared-state.js';

/**
 * A fake SharedState over a real Redis (the Lua scripts are what is tested): `down` makes every
 * call fall back at once, as an outage does, and tells the listeners; `calls` counts round trips;
 * a command that fails falls back as it does in RedisSharedState.
 */
export class SwitchableState implements SharedState {
  calls = 0;
  fallbacks = 0;
  private down = false;
  private readonly listeners: ((up: boolean) => void)[] = [];

  constructor(
    readonly replicaId: string,
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  available = () => !this.down;
  key = (...parts: string[]) => this.prefix + parts.join(':');
  livenessKey = (id: string) => this.key('replica', id);
  onAvailability(listener: (up: boolean) => void): void {
    this.listeners.push(listener);
  }
  async run<T>(_what: string, fn: (redis: RedisClient) => Promise<T>): Promise<T | undefined> {
    if (this.down) {
      this.fallbacks++;
      return undefined;
    }
    this.calls++;
    // The interface's contract: a failed command resolves undefined, never rejects (a command still
    // in flight when a test disconnects its client fails with "Connection is closed").
    try {
      return await fn(this.redis);
    } catch {
      this.fallbacks++;
      return undefined;
    }
  }
  setDown(down: boolean): void {
    this.down = down;
    for (const l of this.listeners) l(!down);
  }
}
