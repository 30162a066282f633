import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { startMemoryRelief } from '../../../src/server/memory-relief.js';

const MiB = 1024 * 1024;

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
