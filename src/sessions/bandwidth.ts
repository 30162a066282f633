import { Transform, pipeline, type Readable, type TransformCallback } from 'node:stream';
import { BandwidthShare } from '../cluster/bandwidth-share.js';
import { LOCAL_STATE, type SharedState } from '../cluster/shared-state.js';

/**
 * A token bucket of `bytesPerSecond`. It starts empty (no burst at the start of a transfer) and
 * holds at most a quarter of a second's worth (at least 64 KiB), so a timer that fires late or an
 * event loop that stalls is made up for afterwards. Tokens may go into debt: `take` returns how long
 * the caller must wait before sending what it took, so several streams sharing one bucket queue up
 * behind each other.
 */
export class TokenBucket {
  private tokens = 0;
  private last = performance.now();
  private capacity = 0;

  constructor(public bytesPerSecond: number) {
    this.setRate(bytesPerSecond);
  }

  /** Changes the rate from now on (a replica's share of a cluster-wide cap); what was earned so far stays. */
  setRate(bytesPerSecond: number): void {
    this.refill();
    this.bytesPerSecond = bytesPerSecond;
    this.capacity = Math.max(64 * 1024, bytesPerSecond / 4);
    this.tokens = Math.min(this.capacity, this.tokens);
  }

  /** Takes `bytes` and returns the delay in ms until they may be sent. */
  take(bytes: number): number {
    this.refill();
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.bytesPerSecond;
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) * this.bytesPerSecond) / 1000);
    this.last = now;
  }
}

/** Limits in KiB/s, as configured (`ftp.bandwidth`, `accounts[].bandwidth`). */
export interface BandwidthLimits {
  uploadKiBps?: number;
  downloadKiBps?: number;
}

/** Largest piece passed on at once, so pacing stays smooth with big socket reads. */
const SLICE_BYTES = 16 * 1024;

/**
 * A pass-through that holds each chunk until every bucket allows it: the callback is delayed, so
 * the stream upstream is paused by back-pressure (the socket stops being read, TCP's window
 * closes); nothing is buffered beyond the streams' own high-water marks.
 */
function throttle(buckets: TokenBucket[]): Transform {
  let timer: NodeJS.Timeout | undefined;
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      let offset = 0;
      const next = () => {
        if (offset >= chunk.length) return callback();
        const slice = chunk.subarray(offset, offset + SLICE_BYTES);
        offset += slice.length;
        const wait = Math.max(...buckets.map((b) => b.take(slice.length)));
        this.push(slice);
        if (wait < 1) return next();
        timer = setTimeout(next, wait);
      };
      next();
    },
    destroy(err, callback) {
      clearTimeout(timer);
      callback(err);
    },
  });
}

/** A global cap: its bucket and, with shared state, this replica's share of it. */
interface GlobalCap {
  bucket: TokenBucket;
  share: BandwidthShare;
}

function globalCap(kibps: number | undefined, shared: SharedState, direction: 'upload' | 'download'): GlobalCap | undefined {
  if (!kibps) return undefined;
  const bucket = new TokenBucket(kibps * 1024);
  return { bucket, share: new BandwidthShare(shared, direction, (replicas) => bucket.setRate((kibps * 1024) / replicas)) };
}

/**
 * The bandwidth caps of a server: one pair of global buckets shared by every session (with
 * `cluster.redis`, by every replica: each one's bucket runs at the cap divided by the replicas with
 * transfers running in that direction), and the per-account limits applied to each transfer of a
 * session (an FTP session runs one transfer at a time, so a bucket per transfer is a bucket per
 * session; a session lives on one replica, so these need nothing shared).
 */
export class Bandwidth {
  private readonly globalUpload: GlobalCap | undefined;
  private readonly globalDownload: GlobalCap | undefined;

  constructor(global: BandwidthLimits | undefined, shared: SharedState = LOCAL_STATE) {
    this.globalUpload = globalCap(global?.uploadKiBps, shared, 'upload');
    this.globalDownload = globalCap(global?.downloadKiBps, shared, 'download');
  }

  /** The upload stream limited by the global and the account's caps (the stream itself when none apply). */
  upload(source: Readable, account: BandwidthLimits | undefined): Readable {
    return this.limit(source, this.globalUpload, account?.uploadKiBps);
  }

  download(source: Readable, account: BandwidthLimits | undefined): Readable {
    return this.limit(source, this.globalDownload, account?.downloadKiBps);
  }

  /** Stops the renewals of the shares (the bridge stops). */
  close(): void {
    this.globalUpload?.share.close();
    this.globalDownload?.share.close();
  }

  private limit(source: Readable, global: GlobalCap | undefined, perSessionKiBps: number | undefined): Readable {
    const buckets = [global?.bucket, perSessionKiBps ? new TokenBucket(perSessionKiBps * 1024) : undefined].filter((b) => b !== undefined);
    if (!buckets.length) return source;
    const limiter = throttle(buckets);
    // The share counts this replica while one of its transfers in this direction runs.
    if (global) limiter.once('close', global.share.acquire());
    return pipeline(source, limiter, () => undefined);
  }
}
