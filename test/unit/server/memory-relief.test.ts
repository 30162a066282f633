import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it, vi } from 'vitest';
import { compactHeap, startMemoryRelief } from '../../../src/server/memory-relief.js';

const MiB = 1024 * 1024;

/** V8's own gc function, as node --expose-gc gives it, without exposing it to this process's global. */
function exposedGc(): (options?: object) => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as (options?: object) => void;
}

/** Leaves ~40 MiB of garbage in V8's old generation (objects that survived two collections). */
function oldGarbage(gc: () => void): void {
  const objects: object[] = [];
  for (let i = 0; i < 400_000; i++) objects.push({ i, s: `s${i}`, a: [i] });
  gc();
  gc();
  expect(objects).toHaveLength(400_000);
  // Garbage once this returns.
}

describe('compactHeap', () => {
  it('does nothing without a gc function', () => {
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
    expect(compactHeap()).toBe(false);
  });

  it("hands the heap's free pages back, which a regular full collection keeps", () => {
    const gc = exposedGc();
    const unused = () => process.memoryUsage().heapTotal - process.memoryUsage().heapUsed;
    // The control: after a regular full collection most of the garbage's pages stay committed.
    oldGarbage(gc);
    gc({ type: 'major', execution: 'sync' });
    expect(unused()).toBeGreaterThan(16 * MiB);
    oldGarbage(gc);
    expect(compactHeap(gc)).toBe(true);
    expect(unused()).toBeLessThan(8 * MiB);
  });
});

describe('memory relief', () => {
  it('does nothing without a gc function (node without --expose-gc)', () => {
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
    expect(startMemoryRelief({ budgetBytes: 0 })).toBeUndefined();
  });

  it('collects once memory outside the heap exceeds the budget by the headroom, then waits for new growth', async () => {
    let calls = 0;
    const flavors = new Set<unknown>();
    const gc = (options?: { flavor?: string }) => {
      calls++;
      flavors.add(options?.flavor);
    };
    const relief = startMemoryRelief({ budgetBytes: 0, headroomBytes: 8 * MiB, heapHeadroomBytes: Infinity, checkIntervalMs: 10, gc })!;
    try {
      const held = Buffer.alloc(48 * MiB, 1);
      await sleep(100);
      expect(calls).toBeGreaterThanOrEqual(1);
      // What the collection left is live: no collection again until it grows by the headroom.
      const after = calls;
      await sleep(100);
      expect(calls).toBe(after);
      const more = Buffer.alloc(24 * MiB, 1);
      await sleep(100);
      expect(calls).toBeGreaterThan(after);
      expect(relief.collections).toBe(calls);
      expect(held.length + more.length).toBe(72 * MiB);
      // Regular ones: what they are for is buffers outside the heap, not its layout.
      expect([...flavors]).toEqual([undefined]);
    } finally {
      relief.stop();
    }
  });

  it('collects when the heap grew by its headroom over the least it used since the last collection, within its share of time', () => {
    vi.useFakeTimers();
    let heap = 10 * MiB;
    let clock = 0;
    let calls = 0;
    const flavors: unknown[] = [];
    const gc = (options?: { flavor?: string }) => {
      calls++;
      flavors.push(options?.flavor);
      clock += 10; // a collection takes 10 ms
      heap = 11 * MiB; // what survives is live
    };
    const relief = startMemoryRelief({
      budgetBytes: 4096 * MiB,
      heapHeadroomBytes: 2 * MiB,
      heapTimeShare: 0.02,
      checkIntervalMs: 5,
      gc,
      heapUsedBytes: () => heap,
      now: () => clock,
    })!;
    try {
      heap = 11.5 * MiB;
      vi.advanceTimersByTime(50); // ten checks
      expect(calls).toBe(0); // within the headroom over the 10 MiB at start
      heap = 12.5 * MiB;
      vi.advanceTimersByTime(5);
      expect(calls).toBe(1);
      // Grown again at once: the 10 ms collection may take 2 % of the time, so not before 500 ms.
      heap = 14 * MiB;
      clock += 480;
      vi.advanceTimersByTime(50);
      expect(calls).toBe(1);
      clock += 30;
      vi.advanceTimersByTime(5);
      expect(calls).toBe(2);
      // A collection of V8's own (or the compaction after start) lowers the mark: 9 + 2 MiB.
      clock += 1000;
      heap = 9 * MiB;
      vi.advanceTimersByTime(5);
      heap = 10.5 * MiB;
      vi.advanceTimersByTime(50);
      expect(calls).toBe(2);
      heap = 11.5 * MiB;
      vi.advanceTimersByTime(5);
      expect(calls).toBe(3);
      expect(relief.collections).toBe(3);
      // Memory-reducing ones: they compact what the regular ones leave fragmented.
      expect(flavors).toEqual(['last-resort', 'last-resort', 'last-resort']);
    } finally {
      relief.stop();
      vi.useRealTimers();
    }
  });

  it('never collects below the budget', async () => {
    let calls = 0;
    const relief = startMemoryRelief({ budgetBytes: 4096 * MiB, heapHeadroomBytes: Infinity, checkIntervalMs: 10, gc: () => calls++ })!;
    try {
      const held = Buffer.alloc(32 * MiB, 1);
      await sleep(100);
      expect(calls).toBe(0);
      expect(held.length).toBe(32 * MiB);
    } finally {
      relief.stop();
    }
  });
});
