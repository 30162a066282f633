/**
 * One byte budget shared by every upload: a FIFO async semaphore. An upload acquires a whole
 * part's worth before it feeds the first byte of that part and releases it once the part is
 * uploaded, so what is held always belongs to parts that can complete on their own (no deadlock
 * while the budget is at least one part). Waiters are served in order, so a large request is not
 * starved by small ones.
 */
export class MemoryBudget {
  private used = 0;
  private peakUsed = 0;
  private readonly waiters: { bytes: number; grant: () => void }[] = [];

  constructor(readonly limitBytes: number) {}

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

  /** Resolves once `bytes` are granted (a request above the limit is granted when nothing else is held). */
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
    return this.used + bytes <= this.limitBytes || this.used === 0;
  }

  private take(bytes: number): void {
    this.used += bytes;
    this.peakUsed = Math.max(this.peakUsed, this.used);
  }
}
