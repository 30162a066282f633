import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';

const MiB = 1024 * 1024;

export interface MemoryReliefOptions {
  /** The upload budget (s3.memoryLimitMiB): part buffers legitimately held outside the heap. */
  budgetBytes: number;
  /** Garbage tolerated beyond the budget before a collection; default 8 MiB. */
  headroomBytes?: number;
  /** Growth of V8's old generation over the least it used since the last full collection before another; default 1 MiB. */
  heapHeadroomBytes?: number;
  /** The share of time the collections for heap growth may take at most; default 2 %. */
  heapTimeShare?: number;
  /** How often memory is looked at; default 25 ms. */
  checkIntervalMs?: number;
  /** The function that runs a full collection; default `globalThis.gc` (node --expose-gc). */
  gc?: ExposedGc;
  /** For tests: the old generation's used bytes (default V8's) and a clock in ms (default performance.now). */
  heapUsedBytes?: () => number;
  now?: () => number;
}

/** `globalThis.gc` as `node --expose-gc` gives it; the options are V8's gc extension's. */
type ExposedGc = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async'; flavor?: 'regular' | 'last-resort' }) => void;

const MEMORY_REDUCING = { type: 'major', execution: 'sync', flavor: 'last-resort' } as const;

/**
 * One memory-reducing collection: V8's last-resort flavour (what it runs before giving up on a full
 * heap) collects until nothing more is freed, compacts, drops the bytecode of functions not running
 * (compiled again from source if called again) and returns freed pages to the system. Start-up
 * leaves much of that behind: config parsing and validation, the libraries' module bodies and the
 * S3 probes run once. Returns false without `gc` (node --expose-gc, as bin/ftp-s3-bridge starts the
 * bridge).
 */
export function compactHeap(gc = (globalThis as { gc?: ExposedGc }).gc): boolean {
  if (typeof gc !== 'function') return false;
  gc(MEMORY_REDUCING);
  return true;
}

export interface MemoryRelief {
  /** Full collections run so far. */
  readonly collections: number;
  stop(): void;
}

/**
 * Bytes used in V8's heap outside its young generation, which scavenges empty every MiB or so
 * (node --max-semi-space-size=1): what a full collection is for.
 */
function oldGenerationUsed(): number {
  let used = 0;
  for (const space of getHeapSpaceStatistics()) {
    if (space.space_name !== 'new_space' && space.space_name !== 'new_large_object_space') used += space.space_used_size;
  }
  return used;
}

/**
 * Keeps garbage from piling up while uploads run, which V8 leaves to its own schedule.
 *
 * Outside the heap: data-socket chunks that waited in a stream while their upload waited for
 * budget reach V8's old generation, and become garbage there once copied into a part buffer; V8
 * starts a full collection for memory outside its heap only after that grew by 64 MiB, so at the
 * cap RSS would overshoot the budget by up to that much. When memory outside the heap exceeds the
 * budget by more than the headroom (and by the headroom over what the previous collection left),
 * this runs a full collection. Below the cap it never runs.
 *
 * In the heap: V8 lets its old generation grow by at least 8 MiB over what its last full
 * collection left before the next one. An SFTP upload promotes the objects of requests that
 * waited for a part buffer, and each of its answers takes a slice of a 64 KiB pool buffer, so its
 * garbage (and the pool buffers it keeps) grew the bridge by ~4 MiB over an upload. When the old
 * generation grew by `heapHeadroomBytes` over the least it used since the last one, this runs one,
 * but only as often as keeps their time within `heapTimeShare`: under load V8's own schedule
 * takes over. That one is memory-reducing (see compactHeap): each SFTP session's handlers are
 * compiled and optimized anew, and a regular collection frees the previous sessions' code without
 * compacting it, so the code spaces' committed pages grew by ~0.25 MiB per upload, one session
 * after another (1.75 MiB over eight uploads in a row).
 *
 * Needs `gc` (node --expose-gc, as bin/ftp-s3-bridge starts the bridge): without it, returns
 * undefined and the bridge relies on V8's own schedule.
 */
export function startMemoryRelief(options: MemoryReliefOptions): MemoryRelief | undefined {
  const gc = options.gc ?? (globalThis as { gc?: ExposedGc }).gc;
  if (typeof gc !== 'function') return undefined;
  const heapUsed = options.heapUsedBytes ?? oldGenerationUsed;
  const now = options.now ?? (() => performance.now());
  const headroom = options.headroomBytes ?? 8 * MiB;
  const heapHeadroom = options.heapHeadroomBytes ?? 1 * MiB;
  const timeShare = options.heapTimeShare ?? 0.02;
  const floor = options.budgetBytes + headroom;
  let trigger = floor;
  let heapTrigger = heapUsed() + heapHeadroom;
  let heapNotBefore = 0;
  let collections = 0;
  const collect = (reduceMemory: boolean) => {
    const started = now();
    if (reduceMemory) gc(MEMORY_REDUCING);
    else gc();
    collections++;
    const ended = now();
    // What survived is live: wait for new garbage before the next one.
    trigger = Math.max(floor, getHeapStatistics().external_memory + headroom);
    heapTrigger = heapUsed() + heapHeadroom;
    return ended - started;
  };
  const timer = setInterval(() => {
    const external = getHeapStatistics().external_memory;
    if (external > trigger) {
      collect(false);
      return;
    }
    trigger = Math.max(floor, Math.min(trigger, external + headroom));
    const used = heapUsed();
    if (used > heapTrigger && now() >= heapNotBefore) {
      const took = collect(true);
      heapNotBefore = now() + took / timeShare;
      return;
    }
    // V8's own collections (and the compaction after start) lower the mark too.
    heapTrigger = Math.min(heapTrigger, used + heapHeadroom);
  }, options.checkIntervalMs ?? 25);
  timer.unref();
  return {
    get collections() {
      return collections;
    },
    stop: () => clearInterval(timer),
  };
}
