import { Transform, pipeline, type Readable, type TransformCallback } from 'node:stream';

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
  private readonly capacity: number;

  constructor(readonly bytesPerSecond: number) {
    this.capacity = Math.max(64 * 1024, bytesPerSecond / 4);
  }

  /** Takes `bytes` and returns the delay in ms until they may be sent. */
  take(bytes: number): number {
    const now = performance.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) * this.bytesPerSecond) / 1000);
    this.last = now;
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.bytesPerSecond;
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

/**
 * The bandwidth caps of a server: one pair of global buckets shared by every session, and the
 * per-account limits applied to each transfer of a session (an FTP session runs one transfer at a
 * time, so a bucket per transfer is a bucket per session).
 */
export class Bandwidth {
  private readonly globalUpload: TokenBucket | undefined;
  private readonly globalDownload: TokenBucket | undefined;

  constructor(global: BandwidthLimits | undefined) {
    this.globalUpload = global?.uploadKiBps ? new TokenBucket(global.uploadKiBps * 1024) : undefined;
    this.globalDownload = global?.downloadKiBps ? new TokenBucket(global.downloadKiBps * 1024) : undefined;
  }

  /** The upload stream limited by the global and the account's caps (the stream itself when none apply). */
  upload(source: Readable, account: BandwidthLimits | undefined): Readable {
    return this.limit(source, this.globalUpload, account?.uploadKiBps);
  }

  download(source: Readable, account: BandwidthLimits | undefined): Readable {
    return this.limit(source, this.globalDownload, account?.downloadKiBps);
  }

  private limit(source: Readable, global: TokenBucket | undefined, perSessionKiBps: number | undefined): Readable {
    const buckets = [global, perSessionKiBps ? new TokenBucket(perSessionKiBps * 1024) : undefined].filter((b) => b !== undefined);
    if (!buckets.length) return source;
    return pipeline(source, throttle(buckets), () => undefined);
  }
}
