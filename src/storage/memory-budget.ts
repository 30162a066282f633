import { freeBuffer } from './free-buffer.js';

/**
 * Spare part buffers are dropped after this long without a request for one: long enough to carry
 * them across the gaps of a steady load, short enough that a burst's buffers do not stay in RSS.
 */
export const SPARE_IDLE_MS = 5_000;
/** Small buffers (see tryTakeSmallBuffer) together hold at most this share of the limit. */
const SMALL_SHARE = 1 / 8;

/**
 * One byte budget shared by every upload: a FIFO async semaphore. An upload acquires a whole
 * part's worth before it feeds the first byte of that part and releases it once the part is
 * uploaded, so what is held always belongs to parts that can complete on their own (no deadlock
 * while the budget is at least one part). Waiters are served in order, so a large request is not
 * starved by small ones.
 *
 * It also recycles the part buffers it accounts for (`takeBuffer` / `giveBack`): a fresh
 * multi-MiB allocation costs a page fault per 4 KiB the first time it is written, which on a VM
 * costs more CPU than hashing the same bytes, so returned buffers are kept as spares for the
 * next part. Spares and buffers in use together never exceed the limit, and spares are freed
 * once nobody asked for a buffer for a while, so an idle bridge gives the memory back (freed, not
 * left to the collector: a given-back buffer is the budget's alone).
 *
 * Small buffers (`tryTakeSmallBuffer`) hold the start of an upload, so that a file smaller than a
 * part (a camera's picture) does not hold a whole part's worth of budget: with 8 MiB parts and a
 * 256 MiB limit only 32 uploads could otherwise receive data at once. They never wait, use at most
 * an eighth of the limit, and an upload that outgrows one waits for a part buffer while holding
 * it; a part request is therefore also granted whenever only small buffers are held, which keeps
 * the budget free of deadlocks (at most an eighth of the limit over it).
 */
export class MemoryBudget {
  private used = 0;
  private peakUsed = 0;
  private readonly waiters: { bytes: number; grant: () => void }[] = [];

  private smallUsed = 0;
  private readonly smallBuffers = new WeakSet<Buffer>();
  readonly smallLimitBytes: number;

  private readonly spares = new Map<number, Buffer[]>();
  private spareBytes = 0;
  private spareTimer: NodeJS.Timeout | undefined;

  constructor(readonly limitBytes: number) {
    this.smallLimitBytes = Math.floor(limitBytes * SMALL_SHARE);
  }

  /** Bytes held by spare buffers, ready for reuse. */
  get spare(): number {
    return this.spareBytes;
  }

  /** Acquires `size` bytes of budget and returns a buffer of that size (contents undefined). */
  async takeBuffer(size: number): Promise<Buffer> {
    await this.acquire(size);
    return this.bufferOf(size);
  }

  /**
   * A small buffer of `size` bytes if one can be had at once (small buffers below their share of
   * the limit, and no upload waiting for budget); otherwise undefined, and the caller takes a part
   * buffer instead. Returned with `giveBack` or `discard` like any other.
   */
  tryTakeSmallBuffer(size: number): Buffer | undefined {
    if (this.waiters.length || this.smallUsed + size > this.smallLimitBytes || this.used + size > this.limitBytes) return undefined;
    this.take(size);
    this.smallUsed += size;
    const buffer = this.bufferOf(size);
    this.smallBuffers.add(buffer);
    return buffer;
  }

  /** A spare of `size`, or a new buffer once spares of other sizes made room. */
  private bufferOf(size: number): Buffer {
    this.touchSpares();
    const buffer = this.spares.get(size)?.pop();
    if (buffer) {
      this.spareBytes -= size;
      return buffer;
    }
    // Room for a new buffer: spares of other sizes give way first.
    for (const [spareSize, list] of this.spares) {
      while (list.length && this.used + this.spareBytes > this.limitBytes) {
        freeBuffer(list.pop() as Buffer);
        this.spareBytes -= spareSize;
      }
    }
    return Buffer.allocUnsafeSlow(size);
  }

  /**
   * Releases a buffer taken with `takeBuffer`. Only give back a buffer nothing refers to any more
   * (a request that failed may still be writing it: release its bytes with `discard` instead).
   */
  giveBack(buffer: Buffer): void {
    const size = buffer.length;
    this.forgetSmall(buffer);
    // Kept before the release: at the cap, the release grants the next waiter at once, and that
    // waiter must find this buffer rather than fault in a fresh one (its takeBuffer pops it, or
    // drops spares of another size, before anything else can allocate).
    if (this.used + this.spareBytes <= this.limitBytes) {
      const list = this.spares.get(size) ?? [];
      list.push(buffer);
      this.spares.set(size, list);
      this.spareBytes += size;
      this.touchSpares();
    } else {
      freeBuffer(buffer);
    }
    this.release(size);
  }

  /** Releases a buffer's bytes without reusing it (a failed request may still be reading it). */
  discard(buffer: Buffer): void {
    this.forgetSmall(buffer);
    this.release(buffer.length);
  }

  private forgetSmall(buffer: Buffer): void {
    if (this.smallBuffers.delete(buffer)) this.smallUsed -= buffer.length;
  }

  private touchSpares(): void {
    if (this.spareTimer) this.spareTimer.refresh();
    else if (this.spareBytes > 0) {
      this.spareTimer = setTimeout(() => {
        this.spareTimer = undefined;
        for (const list of this.spares.values()) list.forEach(freeBuffer);
        this.spares.clear();
        this.spareBytes = 0;
      }, SPARE_IDLE_MS);
      this.spareTimer.unref();
    }
  }

  /** Bytes currently held. */
  get inUse(): number {
    return this.used;
  }

  /** The most ever held at once. */
  get peak(): number {
    return this.peakUsed;
  }

  /** Uploads waiting for budget. */
  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Resolves once `bytes` are granted. A request above the limit is granted when nothing but small
   * buffers is held: their holders may be waiting for it to finish (see the class comment).
   */
  acquire(bytes: number): Promise<void> {
    if (!this.waiters.length && this.fits(bytes)) {
      this.take(bytes);
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push({ bytes, grant: resolve }));
  }

  release(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
    while (this.waiters.length) {
      const next = this.waiters[0] as { bytes: number; grant: () => void };
      if (!this.fits(next.bytes)) break;
      this.waiters.shift();
      this.take(next.bytes);
      next.grant();
    }
  }

  private fits(bytes: number): boolean {
    return this.used + bytes <= this.limitBytes || this.used === this.smallUsed;
  }

  private take(bytes: number): void {
    this.used += bytes;
    this.peakUsed = Math.max(this.peakUsed, this.used);
  }
}
