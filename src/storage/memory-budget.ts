import { freeBuffer } from './free-buffer.js';

/**
 * Spare part buffers are dropped after this long without a request for one: long enough to carry
 * them across the gaps of a steady load, short enough that a burst's buffers do not stay in RSS.
 */
export const SPARE_IDLE_MS = 5_000;
/** Small buffers (see tryTakeSmallBuffer) together hold at most this share of the limit. */
const SMALL_SHARE = 1 / 8;

/**
 * Who an upload's buffers are charged to, for the shares of the budget. A key that is absent or
 * empty has no share of its own.
 */
export interface MemoryOwner {
  /** The client's address, normalized (one key per address). */
  client?: string;
  /** The account's username. */
  account?: string;
}

/** The most one owner may hold, in percent of the limit; 100 (the default): no share of its own. */
export interface MemoryShares {
  perClientPercent?: number;
  perAccountPercent?: number;
}

/** One share an upload is charged to: its id ("client 10.0.0.1"), and its size in bytes. */
interface Share {
  id: string;
  limit: number;
}

/** What one share's owner holds: all its bytes, and the part of them in small buffers. */
interface Holding {
  held: number;
  small: number;
}

interface Waiter {
  bytes: number;
  shares: readonly Share[];
  grant: () => void;
}

/**
 * One byte budget shared by every upload: a FIFO async semaphore. An upload acquires a whole
 * part's worth before it feeds the first byte of that part and releases it once the part is
 * uploaded, so what is held always belongs to parts that can complete on their own (no deadlock
 * while the budget is at least one part). Waiters are served in order (those within their
 * shares, see below), so a large request is not starved by small ones.
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
 *
 * Fair shares (`MemoryShares`): one client address, and one account, hold at most their share of
 * the limit, small buffers included, so that uploads which stall while holding buffers cannot take
 * the budget from everyone else. A request beyond its owner's share waits without blocking those
 * of other owners (it is passed over, not queued in front of them); a released buffer goes to the
 * first waiter within its shares. A share never keeps an owner from its first part buffer: a part
 * is within the share whenever the owner holds nothing but small buffers (whose holders may be
 * the very uploads waiting for it), so an owner alone always makes progress. The uploads of one
 * owner cannot deadlock each other either: an upload waits for a part buffer holding at most a
 * small buffer and parts in flight, which S3 finishes on its own.
 */
export class MemoryBudget {
  private used = 0;
  private peakUsed = 0;
  private readonly waiters: Waiter[] = [];

  private smallUsed = 0;
  readonly smallLimitBytes: number;

  /** The owner each taken buffer is charged to, and whether it is a small one. */
  private readonly charges = new WeakMap<Buffer, { owner: MemoryOwner | undefined; small: boolean }>();
  /** What each share's owner holds; an owner holding nothing has no entry. */
  private readonly holdings = new Map<string, Holding>();
  private readonly clientShareBytes: number;
  private readonly accountShareBytes: number;

  private readonly spares = new Map<number, Buffer[]>();
  private spareBytes = 0;
  private spareTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly limitBytes: number,
    shares: MemoryShares = {},
  ) {
    this.smallLimitBytes = Math.floor(limitBytes * SMALL_SHARE);
    this.clientShareBytes = Math.floor((limitBytes * (shares.perClientPercent ?? 100)) / 100);
    this.accountShareBytes = Math.floor((limitBytes * (shares.perAccountPercent ?? 100)) / 100);
  }

  /** Bytes held by spare buffers, ready for reuse. */
  get spare(): number {
    return this.spareBytes;
  }

  /** Acquires `size` bytes of budget for `owner` and returns a buffer of that size (contents undefined). */
  async takeBuffer(size: number, owner?: MemoryOwner): Promise<Buffer> {
    await this.acquire(size, owner);
    const buffer = this.bufferOf(size);
    this.charges.set(buffer, { owner, small: false });
    return buffer;
  }

  /**
   * A small buffer of `size` bytes if one can be had at once (small buffers below their share of
   * the limit, the owner within its shares, and no upload within its shares waiting for budget);
   * otherwise undefined, and the caller takes a part buffer instead. Returned with `giveBack` or
   * `discard` like any other.
   */
  tryTakeSmallBuffer(size: number, owner?: MemoryOwner): Buffer | undefined {
    const shares = this.sharesOf(owner);
    if (this.smallUsed + size > this.smallLimitBytes || this.used + size > this.limitBytes) return undefined;
    if (!this.withinShares(shares, size, true) || this.waiters.some((w) => this.withinShares(w.shares, w.bytes, false))) return undefined;
    this.take(size, shares);
    this.smallUsed += size;
    for (const share of shares) (this.holdings.get(share.id) as Holding).small += size;
    const buffer = this.bufferOf(size);
    this.charges.set(buffer, { owner, small: true });
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
    const owner = this.uncharge(buffer);
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
    this.release(size, owner);
  }

  /** Releases a buffer's bytes without reusing it (a failed request may still be reading it). */
  discard(buffer: Buffer): void {
    this.release(buffer.length, this.uncharge(buffer));
  }

  /** Forgets a buffer's charge (the small part of it here; `release` the rest) and returns its owner. */
  private uncharge(buffer: Buffer): MemoryOwner | undefined {
    const charge = this.charges.get(buffer);
    if (!charge) return undefined;
    this.charges.delete(buffer);
    if (charge.small) {
      this.smallUsed -= buffer.length;
      for (const share of this.sharesOf(charge.owner)) {
        const holding = this.holdings.get(share.id);
        if (holding) holding.small -= buffer.length;
      }
    }
    return charge.owner;
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
   * Resolves once `bytes` are granted to `owner`. A request above the limit is granted when nothing
   * but small buffers is held: their holders may be waiting for it to finish (see the class
   * comment). A request beyond the owner's share waits until the owner releases some.
   */
  acquire(bytes: number, owner?: MemoryOwner): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push({ bytes, shares: this.sharesOf(owner), grant: resolve });
      this.grantWaiters();
    });
  }

  release(bytes: number, owner?: MemoryOwner): void {
    this.used = Math.max(0, this.used - bytes);
    for (const share of this.sharesOf(owner)) {
      const holding = this.holdings.get(share.id);
      if (!holding) continue;
      holding.held -= bytes;
      if (holding.held <= 0) this.holdings.delete(share.id);
    }
    this.grantWaiters();
  }

  /**
   * Grants waiters in order while the budget has room, passing over those beyond their shares (a
   * grant only adds to what an owner holds, so a waiter passed over stays beyond its share).
   */
  private grantWaiters(): void {
    for (let i = 0; i < this.waiters.length; ) {
      const next = this.waiters[i] as Waiter;
      if (!this.withinShares(next.shares, next.bytes, false)) {
        i++;
        continue;
      }
      if (!this.fits(next.bytes)) return;
      this.waiters.splice(i, 1);
      this.take(next.bytes, next.shares);
      next.grant();
    }
  }

  private fits(bytes: number): boolean {
    return this.used + bytes <= this.limitBytes || this.used === this.smallUsed;
  }

  /**
   * Whether `bytes` more keep the owner within each of its shares; a part buffer also when the
   * owner holds only small buffers (see the class comment).
   */
  private withinShares(shares: readonly Share[], bytes: number, small: boolean): boolean {
    return shares.every((share) => {
      const holding = this.holdings.get(share.id);
      if (!holding) return small ? bytes <= share.limit : true;
      return holding.held + bytes <= share.limit || (!small && holding.held === holding.small);
    });
  }

  /** The shares `owner` is charged to: none for a key without one, or a share of the whole limit. */
  private sharesOf(owner: MemoryOwner | undefined): Share[] {
    const shares: Share[] = [];
    if (owner?.client && this.clientShareBytes < this.limitBytes) shares.push({ id: `client ${owner.client}`, limit: this.clientShareBytes });
    if (owner?.account && this.accountShareBytes < this.limitBytes) shares.push({ id: `account ${owner.account}`, limit: this.accountShareBytes });
    return shares;
  }

  private take(bytes: number, shares: readonly Share[]): void {
    this.used += bytes;
    this.peakUsed = Math.max(this.peakUsed, this.used);
    for (const share of shares) {
      const holding = this.holdings.get(share.id);
      if (holding) holding.held += bytes;
      else this.holdings.set(share.id, { held: bytes, small: 0 });
    }
  }
}
