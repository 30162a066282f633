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
