import { pino } from 'pino';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisSharedState } from '../../src/cluster/shared-state.js';
import { LogLines } from '../support/log-lines.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { until } from '../support/until.js';

describe('shared state on a real redis-server', () => {
  let redis: TestRedis;
  let probe: Redis;
  beforeAll(async () => {
    redis = await startRedis();
    probe = redis.client();
  });
  afterAll(async () => {
    probe?.disconnect();
    await redis?.stop();
  });

  it('announces the replica while it runs, falls back during an outage with one warning, and resumes', async () => {
    const log = new LogLines();
    const state = await RedisSharedState.create({ url: redis.url, keyPrefix: '{t1}:', commandTimeoutMs: 500 }, 'replica-a', pino({ level: 'info' }, log.stream));
    const changes: boolean[] = [];
    state.onAvailability((up) => changes.push(up));
    state.start();
    try {
      await until(() => state.available(), 'Redis to become available', 20_000);
      await until(async () => (await probe.exists('{t1}:replica:replica-a')) === 1, 'the liveness key', 20_000);
      expect(await probe.pttl('{t1}:replica:replica-a')).toBeGreaterThan(5_000);
      expect(await state.run('test', (r) => r.incr(state.key('n')))).toBe(1);

      await redis.kill();
      await until(() => !state.available(), 'the outage to be seen', 20_000);
      // Every decision falls back at once (no queueing behind the outage), and says so once a minute.
      const t0 = Date.now();
      for (let i = 0; i < 20; i++) expect(await state.run('test', (r) => r.incr(state.key('n')))).toBeUndefined();
      expect(Date.now() - t0).toBeLessThan(2_000);
      expect(state.fallbacks).toBeGreaterThanOrEqual(20);
      const warnings = log.lines.filter((l) => l.event === 'cluster' && l.level === 40);
      expect(warnings).toHaveLength(1);

      await redis.start();
      await until(() => state.available(), 'Redis to be used again', 30_000);
      expect(await state.run('test', (r) => r.incr(state.key('n')))).toBe(1); // the restarted Redis is empty
      await until(async () => (await probe.exists('{t1}:replica:replica-a')) === 1, 'the liveness key after the restart', 20_000);
      expect(changes).toEqual([true, false, true]);
    } finally {
      await state.stop();
    }
    // A replica that stops takes its liveness key with it: what it held stops counting at once.
    expect(await probe.exists('{t1}:replica:replica-a')).toBe(0);
  });

  it('starts and serves with Redis unreachable', async () => {
    const log = new LogLines();
    const state = await RedisSharedState.create({ url: 'redis://127.0.0.1:1', keyPrefix: '{t2}:', commandTimeoutMs: 500 }, 'replica-b', pino({ level: 'info' }, log.stream));
    state.start();
    try {
      expect(state.available()).toBe(false);
      expect(await state.run('test', async () => 1)).toBeUndefined();
      await until(() => log.lines.some((l) => l.event === 'cluster' && l.level === 40), 'the warning', 20_000);
    } finally {
      await state.stop();
    }
  });
});
