import { createHash } from 'node:crypto';
import type { Redis as RedisClient } from 'ioredis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QuotaTracker, type MeasuredUsage } from '../../src/accounts/quota.js';
import { LEASE_BLOCK_BYTES } from '../../src/cluster/quota-ledger.js';
import type { SharedState } from '../../src/cluster/shared-state.js';
import { SwitchableState } from '../support/switchable-state.js';
import type { AccountConfig } from '../../src/config/schema.js';
import { isStorageError } from '../../src/storage/errors.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { until } from '../support/until.js';

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;
const full = (e: unknown) => isStorageError(e, 'STORAGE_FULL');

/** A bucket both replicas list: bytes and objects under the account's prefix. */
class FakeBucket {
  bytes = 0;
  objects = 0;
  measured = 0;
  put(size: number): string {
    this.bytes += size;
    this.objects++;
    return `"e${this.objects}"`;
  }
  measure = async (): Promise<MeasuredUsage> => {
    this.measured++;
    return { bytes: this.bytes, objects: this.objects };
  };
}

let redis: TestRedis;
let client: RedisClient;
beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
});
afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
});

/** The Redis hash of the test account's quota entry, and the field of a replica's held bytes. */
const entryKey = (state: SharedState) => state.key('quota', createHash('sha1').update(JSON.stringify(['', 'b', 'p/'])).digest('hex'));
const heldBytes = async (state: SharedState, id: string) => Number(await client.hget(`${entryKey(state)}:r`, `${id}:b`));

let n = 0;
/** Replicas A and B (alive) on a fresh key prefix, with their trackers over one bucket. */
async function cluster(quota: AccountConfig['quota']) {
  const prefix = `{u${++n}}:`;
  const bucket = new FakeBucket();
  const account: AccountConfig = { username: 'u', passwordHash: '', bucket: 'b', prefix: 'p/', permissions: ['write'], quota };
  const make = async (id: string) => {
    const state = new SwitchableState(id, client, prefix);
    await client.set(state.livenessKey(id), '1', 'PX', 60_000);
    return { state, tracker: new QuotaTracker(bucket.measure, 3_600_000, undefined, state) };
  };
  return { bucket, account, a: await make('A'), b: await make('B') };
}

/** Feeds `size` bytes in 64 KiB chunks as the upload stream does; false at the first chunk refused. */
async function feed(r: { grow(n: number): boolean | Promise<boolean> }, size: number): Promise<boolean> {
  for (let sent = 0; sent < size; sent += CHUNK) if (!(await r.grow(Math.min(CHUNK, size - sent)))) return false;
  return true;
}

describe('quota leases on the shared ledger', () => {
  it('grows within a lease without a round trip: 16 MiB in 64 KiB chunks take a handful of calls', async () => {
    const { account, a } = await cluster({ maxBytes: 1024 * MiB });
    const r = await a.tracker.reserve(account, { key: 'p/x' });
    const before = a.state.calls;
    let sync = 0;
    for (let i = 0; i < (16 * MiB) / CHUNK; i++) {
      const fits = r.grow(CHUNK);
      if (typeof fits === 'boolean') sync++;
      expect(await fits).toBe(true);
    }
    // Leases of 8 MiB: the first at the start, then one per 8 MiB.
    expect(a.state.calls - before).toBeLessThanOrEqual(3);
    expect(sync).toBeGreaterThanOrEqual((16 * MiB) / CHUNK - 3);
    r.release();
  });

  it('two replicas reserve against one limit; what one releases or leaves unused goes to the other', async () => {
    const { account, bucket, a, b } = await cluster({ maxBytes: 10 * MiB });
    const ra = await a.tracker.reserve(account, { key: 'p/a' });
    const rb = await b.tracker.reserve(account, { key: 'p/b' });
    expect(await feed(ra, 6 * MiB)).toBe(true);
    // B gets the 4 MiB A does not hold (A's lease beyond its 6 MiB is at most a quarter of what was left).
    expect(await feed(rb, 3 * MiB)).toBe(true);
    ra.received(); // A's data ended: its unused lease goes back
    expect(await feed(rb, 1 * MiB)).toBe(true);
    expect(await rb.grow(1)).toBe(false); // exactly 10 MiB reserved
    ra.commit(bucket.put(6 * MiB));
    rb.release();
    // B sees A's commit (no new measurement): 4 MiB left, not 10.
    const measured = bucket.measured;
    await expect(b.tracker.reserve(account, { key: 'p/c', size: 4 * MiB + 1 })).rejects.toSatisfy(full);
    const rc = await b.tracker.reserve(account, { key: 'p/c', size: 4 * MiB });
    expect(await feed(rc, 4 * MiB)).toBe(true);
    expect(await rc.grow(1)).toBe(false);
    rc.release();
    expect(bucket.measured).toBe(measured);
  });

  it("a refused upload's lease goes back in the same step: uploads waiting behind it get the room at once", async () => {
    const { account, bucket, a, b } = await cluster({ maxBytes: 12 * MiB });
    const uploads = [await a.tracker.reserve(account, { key: 'p/1' }), await b.tracker.reserve(account, { key: 'p/2' }), await a.tracker.reserve(account, { key: 'p/3' })];
    // All three grow in turn until the quota is full and ask for more at once.
    const ok = [true, true, true];
    for (let round = 0; round < 200 && ok.some(Boolean); round++) {
      const answers = await Promise.all(uploads.map((r, i) => (ok[i] && r.bytes < 5 * MiB ? r.grow(CHUNK) : ok[i])));
      answers.forEach((fits, i) => {
        if (ok[i] && !fits) {
          ok[i] = false;
          uploads[i]!.release();
        }
      });
      if (uploads.every((r, i) => !ok[i] || r.bytes >= 5 * MiB)) break;
    }
    // 3 x 5 MiB do not fit in 12 MiB, 2 x 5 MiB do: exactly one is refused.
    expect(ok.filter(Boolean)).toHaveLength(2);
    for (const [i, r] of uploads.entries()) if (ok[i]) r.commit(bucket.put(r.bytes));
    expect(bucket.bytes).toBe(10 * MiB);
  });

  it('counts object slots across replicas', async () => {
    const { account, a, b } = await cluster({ maxObjects: 2 });
    const r1 = await a.tracker.reserve(account, { key: 'p/1' });
    const r2 = await b.tracker.reserve(account, { key: 'p/2' });
    await expect(a.tracker.reserve(account, { key: 'p/3' })).rejects.toSatisfy(full);
    // Replacing a file takes no slot.
    const r3 = await b.tracker.reserve(account, { key: 'p/1', replacesObject: async () => true });
    for (const r of [r1, r2, r3]) r.release();
    expect(await feed(await a.tracker.reserve(account, { key: 'p/4' }), MiB)).toBe(true);
  });

  it('Redis down: an upload beyond its lease and new uploads decide on the replica ledger; when it returns what was held and committed meanwhile counts', async () => {
    const { account, bucket, a, b } = await cluster({ maxBytes: 40 * MiB });
    const r = await a.tracker.reserve(account, { key: 'p/long' });
    expect(await feed(r, 4 * MiB)).toBe(true);
    a.state.setDown(true);
    b.state.setDown(true);
    // Beyond its lease: A's own ledger decides (it measures first), no call reaches Redis.
    const calls = a.state.calls;
    expect(await feed(r, LEASE_BLOCK_BYTES)).toBe(true);
    // A new upload is local: its growth is decided at once.
    const local = await a.tracker.reserve(account, { key: 'p/local' });
    expect(local.grow(MiB)).toBe(true);
    local.commit(bucket.put(MiB));
    r.commit(bucket.put(r.bytes));
    expect(a.state.calls).toBe(calls);
    expect(a.state.fallbacks).toBeGreaterThan(0);
    // Back: A's commits during the outage reach the shared ledger (B measured before them).
    a.state.setDown(false);
    b.state.setDown(false);
    await until(async () => Number(await client.hget(entryKey(a.state), 'ctb')) === 13 * MiB && (await heldBytes(a.state, 'A')) === 0, "A's flush on Redis's return", 10_000);
    const left = 40 * MiB - (4 * MiB + LEASE_BLOCK_BYTES) - MiB;
    await expect(b.tracker.reserve(account, { key: 'p/b', size: left + 1 })).rejects.toSatisfy(full);
    (await b.tracker.reserve(account, { key: 'p/b', size: left })).release();
  });

  it("a settle lost to an outage is corrected by the replica's next call: nothing stays held", async () => {
    const { account, a, b } = await cluster({ maxBytes: 10 * MiB });
    const r = await a.tracker.reserve(account, { key: 'p/a' });
    expect(await feed(r, 8 * MiB)).toBe(true);
    a.state.setDown(true);
    r.release(); // lost: Redis still has A holding 8 MiB
    expect(await heldBytes(a.state, 'A')).toBeGreaterThanOrEqual(8 * MiB);
    a.state.setDown(false); // back: A sends what it holds (nothing)
    await until(async () => (await heldBytes(a.state, 'A')) === 0, "A's flush on Redis's return", 10_000);
    const rb = await b.tracker.reserve(account, { key: 'p/b' });
    expect(await feed(rb, 10 * MiB)).toBe(true);
    rb.release();
  });

  it("a delete through one replica makes every replica measure again before its next upload", async () => {
    const { account, bucket, a, b } = await cluster({ maxBytes: 10 * MiB });
    const r = await a.tracker.reserve(account, { key: 'p/a' });
    expect(await feed(r, 8 * MiB)).toBe(true);
    r.commit(bucket.put(8 * MiB));
    await expect(b.tracker.reserve(account, { key: 'p/b', size: 3 * MiB })).rejects.toSatisfy(full);
    // A deletes the file: B measures again and has the room back.
    bucket.bytes -= 8 * MiB;
    bucket.objects--;
    a.tracker.markStale('b', 'p/a');
    const measured = bucket.measured;
    await until(async () => (await b.tracker.reserve(account, { key: 'p/b', size: 3 * MiB }).then((x) => (x.release(), true), () => false)), 'the room freed by the delete', 10_000);
    expect(bucket.measured).toBe(measured + 1);
  });

  it("ignores and removes what a replica without a liveness key holds", async () => {
    const { account, a, b } = await cluster({ maxBytes: 10 * MiB });
    const r = await a.tracker.reserve(account, { key: 'p/a' });
    expect(await feed(r, 9 * MiB)).toBe(true);
    await expect(b.tracker.reserve(account, { key: 'p/b', size: 2 * MiB })).rejects.toSatisfy(full);
    await client.del(a.state.livenessKey('A')); // A crashed
    const rb = await b.tracker.reserve(account, { key: 'p/b', size: 2 * MiB });
    expect(await feed(rb, 10 * MiB)).toBe(true);
    rb.release();
    r.release();
  });
});
