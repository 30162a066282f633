import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { QuotaTracker, reserveAsReceived, type MeasuredUsage } from '../../../src/accounts/quota.js';
import type { AccountConfig } from '../../../src/config/schema.js';
import { isStorageError } from '../../../src/storage/errors.js';

const account: AccountConfig = { username: 'u', passwordHash: '', bucket: 'b', prefix: 'p/', permissions: ['write'], quota: { maxBytes: 1000, maxObjects: 3 } };
const full = (e: unknown) => isStorageError(e, 'STORAGE_FULL');

/**
 * A fake bucket: objects by key, listed by `measure` like measurePrefix. `hold()` makes the next
 * measurement wait until `release()` after taking its snapshot, so a test can commit in between.
 */
class FakeBucket {
  readonly objects = new Map<string, { size: number; etag: string }>();
  measured = 0;
  private gate: { opened: Promise<void>; open: () => void } | undefined;
  private etags = 0;

  put(key: string, size: number): string {
    const etag = `"etag-${++this.etags}"`;
    this.objects.set(key, { size, etag });
    return etag;
  }

  hold(): void {
    let open!: () => void;
    this.gate = { opened: new Promise<void>((r) => (open = r)), open };
  }

  release(): void {
    this.gate?.open();
    this.gate = undefined;
  }

  measure = async (a: AccountConfig, watching: (key: string) => boolean): Promise<MeasuredUsage> => {
    this.measured++;
    const usage = { bytes: 0, objects: 0, etags: new Map<string, string>() };
    for (const [key, o] of this.objects) {
      if (!key.startsWith(a.prefix)) continue;
      usage.bytes += o.size;
      usage.objects++;
      if (watching(key)) usage.etags.set(key, o.etag);
    }
    await this.gate?.opened;
    return usage;
  };
}

/** An upload through the ledger, as the bridge does it: reserve, grow, put into the bucket, commit. */
async function upload(tracker: QuotaTracker, bucket: FakeBucket, key: string, size: number, a = account): Promise<boolean> {
  const r = await tracker.reserve(a, { key });
  if (!r.grow(size)) {
    r.release();
    return false;
  }
  r.commit(bucket.put(key, size));
  return true;
}

describe('QuotaTracker ledger', () => {
  it('lets parallel uploads together reserve at most maxBytes; a released reservation frees its bytes', async () => {
    const bucket = new FakeBucket();
    bucket.put('p/old', 100);
    const tracker = new QuotaTracker(bucket.measure, 60_000);
    const a = await tracker.reserve(account, { key: 'p/a' });
    const b = await tracker.reserve(account, { key: 'p/b' });
    expect(a.grow(500)).toBe(true);
    expect(b.grow(300)).toBe(true);
    expect(b.grow(101)).toBe(false); // 100 + 500 + 300 + 101 > 1000
    expect(b.bytes).toBe(300);
    expect(a.grow(100)).toBe(true); // exactly 1000
    // ALLO counts the others' reservations: nothing is left.
    await expect(tracker.reserve(account, { key: 'p/c', size: 1 })).rejects.toSatisfy(full);
    await expect(tracker.reserve(account, { key: 'p/c' })).rejects.toSatisfy(full);
    b.release();
    b.release(); // idempotent
    expect(b.grow(1)).toBe(false); // settled
    a.commit(bucket.put('p/a', 600));
    a.release(); // no-op after commit
    expect(await tracker.usage(account)).toEqual({ bytes: 700, objects: 2 });
    const c = await tracker.reserve(account, { key: 'p/c', size: 300 });
    expect(c.grow(300)).toBe(true);
    expect(c.grow(1)).toBe(false);
    expect(bucket.measured).toBe(1);
  });

  it('gives each upload of a new name an object slot at start; a replacement at maxObjects takes none', async () => {
    const bucket = new FakeBucket();
    bucket.put('p/existing', 1);
    const tracker = new QuotaTracker(bucket.measure, 60_000);
    const a = await tracker.reserve(account, { key: 'p/a' });
    const b = await tracker.reserve(account, { key: 'p/b' });
    let asked = 0;
    const isNew = async () => (asked++, false);
    await expect(tracker.reserve(account, { key: 'p/c', replacesObject: isNew })).rejects.toSatisfy(full);
    expect(asked).toBe(1);
    const replacing = await tracker.reserve(account, { key: 'p/existing', replacesObject: async () => true });
    expect(replacing.grow(5)).toBe(true);
    replacing.commit(bucket.put('p/existing', 5));
    // Known to replace: no object added (its bytes are added to the old ones until the next measurement).
    expect(await tracker.usage(account)).toEqual({ bytes: 6, objects: 1 });
    a.release();
    const c = await tracker.reserve(account, { key: 'p/c', replacesObject: isNew });
    expect(asked).toBe(1); // below the limit nobody asks
    c.commit(bucket.put('p/c', 0));
    b.commit(bucket.put('p/b', 0));
    expect(await tracker.usage(account)).toEqual({ bytes: 6, objects: 3 });
  });

  it('counts an append by its appended bytes, and as no new object when the file exists', async () => {
    const bucket = new FakeBucket();
    bucket.put('p/log', 400);
    const tracker = new QuotaTracker(bucket.measure, 60_000);
    const r = await tracker.reserve(account, { key: 'p/log', append: true, replacesObject: async () => true });
    expect(r.grow(601)).toBe(false);
    expect(r.grow(600)).toBe(true);
    r.commit(bucket.put('p/log', 1000));
    expect(await tracker.usage(account)).toEqual({ bytes: 1000, objects: 1 });
  });

  it('counts a commit that races a measurement once, whether the listing saw it or not', async () => {
    for (const listingSeesIt of [true, false]) {
      const bucket = new FakeBucket();
      bucket.put('p/old', 100);
      const tracker = new QuotaTracker(bucket.measure, 60_000);
      await tracker.usage(account);
      const r = await tracker.reserve(account, { key: 'p/new' });
      expect(r.grow(300)).toBe(true);
      tracker.markStale('b', 'p/gone'); // the next check measures again
      let etag: string | undefined;
      if (listingSeesIt) etag = bucket.put('p/new', 300); // committed in S3 before the listing
      bucket.hold();
      const measuring = tracker.usage(account);
      await Promise.resolve();
      if (!listingSeesIt) etag = bucket.put('p/new', 300); // committed in S3 after the listing passed
      r.commit(etag);
      bucket.release();
      expect(await measuring).toEqual({ bytes: 400, objects: 2 });
      expect(await tracker.usage(account)).toEqual({ bytes: 400, objects: 2 });
      expect(bucket.measured).toBe(2);
    }
  });

  it('does not count twice an upload whose object a finished measurement already listed', async () => {
    const bucket = new FakeBucket();
    const tracker = new QuotaTracker(bucket.measure, 60_000);
    const r = await tracker.reserve(account, { key: 'p/new' });
    expect(r.grow(300)).toBe(true);
    const etag = bucket.put('p/new', 300); // S3 commit...
    tracker.markStale('b', 'p/x');
    // ...a measurement runs to its end before the bridge records the commit: reserved and listed at once.
    expect(await tracker.usage(account)).toEqual({ bytes: 300, objects: 1 });
    r.commit(etag);
    expect(await tracker.usage(account)).toEqual({ bytes: 300, objects: 1 });
    // An overwrite the listing has not seen (old ETag listed) is counted on top.
    const o = await tracker.reserve(account, { key: 'p/new' });
    tracker.markStale('b', 'p/x');
    await tracker.usage(account);
    expect(o.grow(200)).toBe(true);
    o.commit(bucket.put('p/new', 200));
    expect(await tracker.usage(account)).toEqual({ bytes: 500, objects: 2 });
    // The next measurement knows better.
    tracker.markStale('b', 'p/x');
    expect(await tracker.usage(account)).toEqual({ bytes: 200, objects: 1 });
  });

  it('measures again after a change it cannot size, also when the change came during a measurement', async () => {
    const bucket = new FakeBucket();
    bucket.put('p/a', 100);
    const tracker = new QuotaTracker(bucket.measure, 60_000);
    bucket.hold();
    const first = tracker.usage(account);
    await Promise.resolve();
    bucket.objects.delete('p/a');
    tracker.markStale('b', 'p/a');
    bucket.release();
    expect(await first).toEqual({ bytes: 100, objects: 1 });
    expect(await tracker.usage(account)).toEqual({ bytes: 0, objects: 0 });
    expect(await tracker.usage(account)).toEqual({ bytes: 0, objects: 0 });
    expect(bucket.measured).toBe(2);
    tracker.markStale('b', 'other/x'); // not under the prefix
    await tracker.usage(account);
    expect(bucket.measured).toBe(2);
  });

  it('measures again when the usage is older than refreshMs', async () => {
    const bucket = new FakeBucket();
    const tracker = new QuotaTracker(bucket.measure, 1);
    await tracker.usage(account);
    await new Promise((r) => setTimeout(r, 5));
    bucket.put('p/elsewhere', 999);
    await expect(tracker.reserve(account, { key: 'p/a', size: 2 })).rejects.toSatisfy(full);
    expect(bucket.measured).toBe(2);
  });

  it('does not measure for an account without a quota, yet counts its uploads for a quota over the same keys', async () => {
    const bucket = new FakeBucket();
    const tracker = new QuotaTracker(bucket.measure, 60_000);
    const parent = { ...account, username: 'parent', prefix: '', quota: { maxBytes: 1000 } };
    const child = { ...account, username: 'child', prefix: 'p/', quota: undefined };
    await tracker.usage(parent);
    expect(await upload(tracker, bucket, 'p/a', 5000, child)).toBe(true);
    expect(bucket.measured).toBe(1);
    expect(await tracker.usage(parent)).toEqual({ bytes: 5000, objects: 1 });
    await expect(tracker.reserve(parent, { key: 'x' })).rejects.toSatisfy(full);
  });

  it('reserveAsReceived passes chunks until one does not fit, then frees the reservation, calls onExceeded once and passes nothing', async () => {
    const bucket = new FakeBucket();
    const tracker = new QuotaTracker(bucket.measure, 60_000);
    const r = await tracker.reserve(account, { key: 'p/a' });
    let exceeded = 0;
    const guard = reserveAsReceived(r, () => exceeded++);
    const out: Buffer[] = [];
    guard.on('data', (c: Buffer) => out.push(c));
    const source = new PassThrough();
    source.pipe(guard);
    for (const n of [600, 400, 1, 1]) source.write(Buffer.alloc(n));
    source.end();
    await new Promise((resolve) => guard.on('end', resolve));
    expect(Buffer.concat(out).length).toBe(1000);
    expect(exceeded).toBe(1);
    // Released at the cut: all of maxBytes is free for the others.
    const other = await tracker.reserve(account, { key: 'p/b' });
    expect(other.grow(1000)).toBe(true);
    r.commit('"late"'); // no-op after the release
    expect(await tracker.usage(account)).toEqual({ bytes: 0, objects: 0 });
  });
});
