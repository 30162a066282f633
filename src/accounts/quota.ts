import { Transform, type TransformCallback } from 'node:stream';
import type { Logger } from 'pino';
import type { AccountConfig } from '../config/schema.js';
import { StorageError } from '../storage/errors.js';
import type { Usage } from '../storage/s3-usage.js';

export type { Usage };

/** Measures what an account's bucket/prefix holds now (one paged ListObjectsV2). */
export type MeasureUsage = (account: AccountConfig) => Promise<Usage>;

interface Entry {
  bucket: string;
  prefix: string;
  usage: Usage | undefined;
  measuredAt: number;
  /** A delete or a failed guess made the count unreliable: measure before the next check. */
  stale: boolean;
  measuring: Promise<Usage> | undefined;
}

/** What an admitted upload may still add, in bytes (Infinity: no byte limit). */
export interface Admission {
  remainingBytes: number;
}

/**
 * Quota usage per bucket/prefix: measured from S3, cached, kept current by the bridge's own
 * uploads (added at once) and deletes, renames and appends (which mark the entry for measuring
 * again, since the event does not carry the size change), and measured again when older than `refreshMs`.
 *
 * The check is local to this process: with several replicas each may admit one upload at the
 * edge, so usage can reach the quota plus one upload per replica. An overwrite is counted as a
 * new object until the next measurement (the conservative side).
 */
export class QuotaTracker {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly measure: MeasureUsage,
    private readonly refreshMs: number,
    private readonly logger?: Logger,
  ) {}

  /** Current usage of an account's prefix (from the cache when fresh). */
  async usage(account: AccountConfig): Promise<Usage> {
    const entry = this.entryFor(account);
    if (entry.usage && !entry.stale && Date.now() - entry.measuredAt < this.refreshMs) return entry.usage;
    entry.measuring ??= this.measure(account)
      .then((usage) => {
        entry.usage = usage;
        entry.measuredAt = Date.now();
        entry.stale = false;
        return usage;
      })
      .finally(() => (entry.measuring = undefined));
    return entry.measuring;
  }

  /**
   * Decides whether an upload may start: refused (STORAGE_FULL) when usage is already at the limit
   * or the announced size (ALLO) would cross it; otherwise returns how many bytes it may add.
   * `replacesObject` tells whether the upload replaces an existing file (no new object).
   */
  async admit(account: AccountConfig, options: { size?: number; replacesObject?: () => Promise<boolean> } = {}): Promise<Admission> {
    const quota = account.quota;
    if (!quota || (quota.maxBytes === undefined && quota.maxObjects === undefined)) return { remainingBytes: Infinity };
    const usage = await this.usage(account);
    const full = (why: string) => {
      this.logger?.info({ event: 'quota', user: account.username, usage, quota, why }, 'upload refused: quota');
      return new StorageError('STORAGE_FULL', `Quota exceeded (${why})`);
    };
    if (quota.maxObjects !== undefined && usage.objects >= quota.maxObjects && !(await options.replacesObject?.())) throw full('objects');
    if (quota.maxBytes === undefined) return { remainingBytes: Infinity };
    const remainingBytes = quota.maxBytes - usage.bytes;
    if (remainingBytes <= 0) throw full('bytes');
    if (options.size !== undefined && options.size > remainingBytes) throw full('announced size');
    return { remainingBytes };
  }

  /** An upload committed `bytes` under `bucket/key`. */
  recordUpload(bucket: string, key: string, bytes: number): void {
    for (const entry of this.entriesOf(bucket, key)) {
      if (!entry.usage) continue;
      entry.usage = { bytes: entry.usage.bytes + bytes, objects: entry.usage.objects + 1 };
    }
  }

  /** Something under `bucket/key` was removed, renamed or appended to: measure again before the next decision. */
  markStale(bucket: string, key: string): void {
    for (const entry of this.entriesOf(bucket, key)) entry.stale = true;
  }

  private entriesOf(bucket: string, key: string): Entry[] {
    return [...this.entries.values()].filter((e) => e.bucket === bucket && key.startsWith(e.prefix));
  }

  private entryFor(account: AccountConfig): Entry {
    const id = JSON.stringify([account.endpoint ?? '', account.bucket, account.prefix]);
    let entry = this.entries.get(id);
    if (!entry) {
      entry = { bucket: account.bucket, prefix: account.prefix, usage: undefined, measuredAt: 0, stale: false, measuring: undefined };
      this.entries.set(id, entry);
    }
    return entry;
  }
}

/**
 * Passes an upload's bytes through until they would exceed `maxBytes`; then calls `onExceeded`
 * (which aborts the upload sink with STORAGE_FULL) and lets nothing more through.
 */
export function byteLimit(maxBytes: number, onExceeded: () => void): Transform {
  let seen = 0;
  let exceeded = false;
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      if (exceeded) return callback();
      seen += chunk.length;
      if (seen > maxBytes) {
        exceeded = true;
        onExceeded();
        return callback();
      }
      callback(null, chunk);
    },
  });
}
