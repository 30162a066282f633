import { getHeapStatistics } from 'node:v8';

const MiB = 1024 * 1024;

export interface MemoryReliefOptions {
  /** The upload budget (s3.memoryLimitMiB): part buffers legitimately held outside the heap. */
  budgetBytes: number;
  /** Garbage tolerated beyond the budget before a collection; default 8 MiB. */
  headroomBytes?: number;
  /** How often memory outside the heap is looked at; default 25 ms. */
  checkIntervalMs?: number;
  /** The function that runs a full collection; default `globalThis.gc` (node --expose-gc). */
  gc?: () => void;
}

/** `globalThis.gc` as `node --expose-gc` gives it; the options are V8's gc extension's. */
type ExposedGc = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async'; flavor?: 'regular' | 'last-resort' }) => void;

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
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  return true;
}

export interface MemoryRelief {
  /** Full collections run so far. */
  readonly collections: number;
  stop(): void;
}

/**
 * Keeps the buffers the bridge has finished with from piling up on top of a full upload budget.
 * Data-socket chunks that waited in a stream while their upload waited for budget reach V8's old
 * generation, and become garbage there once copied into a part buffer; V8 starts a full collection
 * for memory outside its heap only after that grew by 64 MiB, so at the cap RSS would overshoot
 * the budget by up to that much. When memory outside the heap exceeds the budget by more than the
 * headroom (and by the headroom over what the previous collection left), this runs a full
 * collection. Below the cap it never runs.
 *
 * Needs `gc` (node --expose-gc, as bin/ftp-s3-bridge starts the bridge): without it, returns
 * undefined and the bridge relies on V8's own schedule.
 */
export function startMemoryRelief(options: MemoryReliefOptions): MemoryRelief | undefined {
  const gc = options.gc ?? (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== 'function') return undefined;
  const headroom = options.headroomBytes ?? 8 * MiB;
  const floor = options.budgetBytes + headroom;
  let trigger = floor;
  let collections = 0;
  const timer = setInterval(() => {
    const external = getHeapStatistics().external_memory;
    if (external <= trigger) {
      trigger = Math.max(floor, Math.min(trigger, external + headroom));
      return;
    }
    gc();
    collections++;
    // What survived is live (buffers of many sessions): wait for new garbage before the next one.
    trigger = Math.max(floor, getHeapStatistics().external_memory + headroom);
  }, options.checkIntervalMs ?? 25);
  timer.unref();
  return {
    get collections() {
      return collections;
    },
    stop: () => clearInterval(timer),
  };
}
