import { describe, expect, it, vi } from 'vitest';
import { MemoryBudget, SPARE_IDLE_MS } from '../../../src/storage/memory-budget.js';
import { parseDuration } from '../../../src/storage/sweep.js';

describe('MemoryBudget', () => {
  it('grants within the limit at once and makes the rest wait, in order', async () => {
    const budget = new MemoryBudget(10);
    await budget.acquire(6);
    const order: string[] = [];
    const big = budget.acquire(6).then(() => order.push('big'));
    const small = budget.acquire(1).then(() => order.push('small'));
    await Promise.resolve();
    expect(order).toEqual([]); // FIFO: the small request does not overtake the big one
    expect(budget.waiting).toBe(2);
    budget.release(6);
    await Promise.all([big, small]);
    expect(order).toEqual(['big', 'small']);
    expect(budget.inUse).toBe(7);
    expect(budget.peak).toBe(7);
  });

  it('recycles returned buffers as spares, never holding more than the limit', async () => {
    const budget = new MemoryBudget(10);
    const a = await budget.takeBuffer(4);
    const b = await budget.takeBuffer(4);
    expect(budget.inUse).toBe(8);
    budget.giveBack(a);
    expect(budget.spare).toBe(4);
    expect(await budget.takeBuffer(4)).toBe(a); // the same memory, not a new allocation
    budget.giveBack(b);
    budget.giveBack(a);
    expect(budget.inUse).toBe(0);
    expect(budget.spare).toBe(8);
    // A buffer of another size makes the spares give way so that spares + in use <= limit.
    await budget.takeBuffer(6);
    expect(budget.inUse + budget.spare).toBeLessThanOrEqual(10);
  });

  it('frees the spares once no buffer was asked for during SPARE_IDLE_MS', async () => {
    vi.useFakeTimers();
    try {
      const budget = new MemoryBudget(16);
      const a = await budget.takeBuffer(4);
      budget.giveBack(a);
      expect(budget.spare).toBe(4);
      vi.advanceTimersByTime(SPARE_IDLE_MS - 100);
      expect(budget.spare).toBe(4);
      // A request meanwhile starts the wait again.
      const again = await budget.takeBuffer(4);
      expect(again).toBe(a);
      budget.giveBack(again);
      vi.advanceTimersByTime(SPARE_IDLE_MS - 100);
      expect(budget.spare).toBe(4);
      vi.advanceTimersByTime(200);
      expect(budget.spare).toBe(0);
      expect(budget.inUse).toBe(0);
      // Freed at once, not left for a garbage collection to find.
      expect((a.buffer as ArrayBuffer).detached).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  it('hands a returned buffer to the upload waiting at the cap instead of allocating a new one', async () => {
    const budget = new MemoryBudget(8);
    const a = await budget.takeBuffer(4);
    const b = await budget.takeBuffer(4);
    const waiting = budget.takeBuffer(4);
    budget.giveBack(a);
    expect(await waiting).toBe(a);
    expect(budget.inUse).toBe(8);
    expect(budget.spare).toBe(0);
    budget.giveBack(b);
    expect(budget.inUse + budget.spare).toBeLessThanOrEqual(8);
  });

  it('hands out small buffers without waiting, up to an eighth of the limit, and never ahead of a waiting upload', async () => {
    const budget = new MemoryBudget(32);
    expect(budget.smallLimitBytes).toBe(4);
    const a = budget.tryTakeSmallBuffer(2);
    const b = budget.tryTakeSmallBuffer(2);
    expect(a?.length).toBe(2);
    expect(b?.length).toBe(2);
    expect(budget.tryTakeSmallBuffer(1)).toBeUndefined(); // the small share is used up
    expect(budget.inUse).toBe(4);
    budget.giveBack(a as Buffer);
    expect(budget.inUse).toBe(2);
    const part = await budget.takeBuffer(28);
    const waiting = budget.takeBuffer(4);
    expect(budget.tryTakeSmallBuffer(1)).toBeUndefined(); // an upload waits for budget: small ones queue behind it
    budget.discard(b as Buffer);
    await waiting;
    budget.giveBack(part);
    expect(budget.tryTakeSmallBuffer(2)).toBeDefined();
  });

  it('grants a part to an upload holding a small buffer when only small buffers are held, so outgrowing one cannot deadlock', async () => {
    const budget = new MemoryBudget(16);
    const small = budget.tryTakeSmallBuffer(2) as Buffer;
    // A part bigger than what is left: granted, because nothing but small buffers is held.
    const part = await budget.takeBuffer(16);
    expect(budget.inUse).toBe(18);
    budget.giveBack(small);
    budget.giveBack(part);
    expect(budget.inUse).toBe(0);
  });

  it('grants a request above the limit when nothing else is held, so it cannot deadlock', async () => {
    const budget = new MemoryBudget(4);
    await budget.acquire(5);
    expect(budget.inUse).toBe(5);
    const next = budget.acquire(1);
    budget.release(5);
    await next;
    expect(budget.inUse).toBe(1);
  });
});

describe('MemoryBudget shares (s3.memoryShare)', () => {
  const A = { client: '192.0.2.1', account: 'alice' };
  const B = { client: '192.0.2.2', account: 'bob' };
  const tick = () => new Promise((resolve) => setImmediate(resolve));
  /** Whether a request has been granted by now. */
  const granted = (request: Promise<unknown>) => {
    const state = { done: false };
    void request.then(() => (state.done = true));
    return state;
  };

  it('makes an owner beyond its share wait while the requests of others are granted past it', async () => {
    const budget = new MemoryBudget(100, { perClientPercent: 25 });
    const a1 = await budget.takeBuffer(20, A);
    const a2 = granted(budget.takeBuffer(10, A)); // 30 > A's 25
    const b1 = granted(budget.takeBuffer(10, B)); // queued after A's, granted anyway
    await tick();
    expect(a2.done).toBe(false);
    expect(b1.done).toBe(true);
    expect(budget.inUse).toBe(30);
    expect(budget.waiting).toBe(1);
    budget.giveBack(a1);
    await tick();
    expect(a2.done).toBe(true);
    expect(budget.waiting).toBe(0);
  });

  it('hands a released buffer to the first waiter within its share, not to those queued before it beyond theirs', async () => {
    const budget = new MemoryBudget(30, { perAccountPercent: 50 }); // 15 each
    const a = await budget.takeBuffer(10, A);
    const b = await budget.takeBuffer(10, B);
    const c = await budget.takeBuffer(10, { account: 'carol' });
    const order: string[] = [];
    const aWaits = budget.takeBuffer(10, A).then(() => order.push('alice'));
    const bWaits = budget.takeBuffer(10, B).then(() => order.push('bob'));
    const dWaits = budget.takeBuffer(10, { account: 'dave' }).then(() => order.push('dave'));
    budget.giveBack(c);
    await dWaits;
    expect(order).toEqual(['dave']);
    budget.giveBack(a); // alice holds nothing now: her waiter is within her share again
    await aWaits;
    budget.giveBack(b);
    await bWaits;
    expect(order).toEqual(['dave', 'alice', 'bob']);
    expect(budget.inUse).toBe(30);
  });

  it('never rounds a share below one part: an owner holding nothing is granted one, however small its share', async () => {
    const budget = new MemoryBudget(100, { perClientPercent: 1 });
    const first = await budget.takeBuffer(30, A);
    const second = granted(budget.takeBuffer(30, A));
    await tick();
    expect(second.done).toBe(false);
    budget.giveBack(first);
    await tick();
    expect(second.done).toBe(true);
  });

  it('holds one account to its share across client addresses, and one address to its share across accounts', async () => {
    const budget = new MemoryBudget(100, { perClientPercent: 40, perAccountPercent: 50 });
    await budget.takeBuffer(30, { client: 'x', account: 'a' });
    const sameAccount = granted(budget.takeBuffer(30, { client: 'y', account: 'a' })); // a: 60 > 50
    const sameClient = granted(budget.takeBuffer(30, { client: 'x', account: 'b' })); // x: 60 > 40
    const other = granted(budget.takeBuffer(30, { client: 'y', account: 'b' }));
    await tick();
    expect([sameAccount.done, sameClient.done, other.done]).toEqual([false, false, true]);
  });

  it('counts small buffers towards the share, yet grants a part to an owner that holds only small buffers (no deadlock)', async () => {
    const budget = new MemoryBudget(128, { perClientPercent: 10 }); // a share of 12, small buffers up to 16
    const smalls = [budget.tryTakeSmallBuffer(4, A), budget.tryTakeSmallBuffer(4, A), budget.tryTakeSmallBuffer(4, A)];
    expect(smalls.every(Boolean)).toBe(true);
    expect(budget.tryTakeSmallBuffer(4, A)).toBeUndefined(); // 16 > 12: beyond A's share
    expect(budget.tryTakeSmallBuffer(4, B)).toBeDefined(); // B's share is its own
    // The holders of A's small buffers may be the very uploads that wait for a part: granted.
    const part = await budget.takeBuffer(40, A);
    const next = granted(budget.takeBuffer(40, A));
    budget.giveBack(smalls[0] as Buffer);
    await tick();
    expect(next.done).toBe(false); // A still holds a part: beyond its share
    budget.giveBack(part);
    await tick();
    expect(next.done).toBe(true);
  });

  it('does not let a waiter beyond its share keep small buffers from others', async () => {
    const budget = new MemoryBudget(64, { perClientPercent: 25 });
    await budget.takeBuffer(32, A);
    const waiting = granted(budget.takeBuffer(8, A));
    await tick();
    expect(waiting.done).toBe(false);
    expect(budget.tryTakeSmallBuffer(4, B)).toBeDefined();
    // A waiter within its share that waits for room still comes before small buffers.
    await budget.takeBuffer(20, B);
    const atCap = granted(budget.takeBuffer(12, { client: '192.0.2.3' }));
    await tick();
    expect(atCap.done).toBe(false);
    expect(budget.tryTakeSmallBuffer(4, { client: '192.0.2.4' })).toBeUndefined();
  });

  it('releases the share of a discarded buffer, and forgets owners that hold nothing', async () => {
    const budget = new MemoryBudget(400, { perClientPercent: 5 }); // a share of 20, small buffers up to 50
    const small = budget.tryTakeSmallBuffer(10, A) as Buffer;
    const part = await budget.takeBuffer(30, A);
    budget.discard(small);
    budget.discard(part);
    expect(budget.inUse).toBe(0);
    // A's share is whole again: 20 in small buffers of 5 fit, 25 do not (small buffers never exceed a share).
    for (let i = 0; i < 4; i++) expect(budget.tryTakeSmallBuffer(5, A)).toBeDefined();
    expect(budget.tryTakeSmallBuffer(5, A)).toBeUndefined();
  });

  it('gives no share to an owner without a client address or account', async () => {
    const budget = new MemoryBudget(100, { perClientPercent: 10, perAccountPercent: 10 });
    await budget.takeBuffer(40, { client: '', account: '' });
    await budget.takeBuffer(40, {});
    expect(budget.inUse).toBe(80);
  });
});

describe('parseDuration', () => {
  it('reads seconds, minutes, hours and days', () => {
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('15m')).toBe(900_000);
    expect(parseDuration('24h')).toBe(86_400_000);
    expect(parseDuration('7d')).toBe(604_800_000);
    expect(parseDuration('0s')).toBe(0);
    expect(parseDuration('90')).toBe(90_000);
  });

  it('refuses anything else', () => {
    for (const bad of ['', 'soon', '-5m', '5 weeks', '1h30m']) expect(() => parseDuration(bad)).toThrow(/invalid duration/);
  });
});
