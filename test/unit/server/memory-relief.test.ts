import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
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
    const relief = startMemoryRelief({ budgetBytes: 0, headroomBytes: 8 * MiB, checkIntervalMs: 10, gc: () => calls++ })!;
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
    } finally {
      relief.stop();
    }
  });

  it('never collects below the budget', async () => {
    let calls = 0;
    const relief = startMemoryRelief({ budgetBytes: 4096 * MiB, checkIntervalMs: 10, gc: () => calls++ })!;
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
