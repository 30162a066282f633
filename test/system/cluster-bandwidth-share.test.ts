import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BandwidthShare } from '../../src/cluster/bandwidth-share.js';
import { TokenBucket } from '../../src/sessions/bandwidth.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { SwitchableState } from '../support/switchable-state.js';
import { until } from '../support/until.js';

let redis: TestRedis;
let client: Redis;
beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
});
afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
});

describe('a global bandwidth cap shared by replicas', () => {
  it('divides the cap by the replicas with transfers running, gives it back when one stops, and uses the whole cap while Redis is down', async () => {
    const states = [new SwitchableState('A', client, '{bw}:'), new SwitchableState('B', client, '{bw}:')];
    const seen = [0, 0];
    const shares = states.map((state, i) => new BandwidthShare(state, 'upload', (replicas) => (seen[i] = replicas)));
    try {
      const releaseA = shares[0]!.acquire();
      await until(() => seen[0] === 1, 'A alone', 10_000);
      const releaseB = shares[1]!.acquire();
      await until(() => seen[1] === 2, 'B to see A', 10_000);
      await until(() => seen[0] === 2, 'A to see B on its next renewal', 10_000);
      releaseA();
      expect(seen[0]).toBe(1);
      await until(() => seen[1] === 1, 'B to have the whole cap back', 10_000);
      states[1]!.setDown(true);
      const again = shares[0]!.acquire();
      await until(() => seen[0] === 2, 'A to see B, still registered', 10_000);
      // B, cut off from Redis, takes the whole cap on its next renewal; A sees B's registration expire.
      await until(() => seen[1] === 1 && states[1]!.fallbacks > 0, 'B on its own', 10_000);
      await until(() => seen[0] === 1, "B's registration to expire", 10_000);
      again();
      releaseB();
    } finally {
      for (const s of shares) s.close();
    }
  }, 30_000);

  it('a token bucket paces at its new rate from the moment the rate changes', () => {
    const bucket = new TokenBucket(1024 * 1024);
    expect(bucket.take(1024 * 1024)).toBeGreaterThan(900); // empty at the start: 1 MiB waits ~1 s
    bucket.setRate(512 * 1024);
    // The debt of 1 MiB is now paid at half the rate: ~2 s.
    expect(bucket.take(0)).toBeGreaterThan(1_800);
  });
});
