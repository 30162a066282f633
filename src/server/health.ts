import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { objectLockProblem } from '../storage/object-lock.js';

export interface BucketStatus {
  bucket: string;
  /** The account's own S3 endpoint (or region), for buckets not on the `s3` section's target. */
  endpoint?: string;
  ok: boolean;
  error?: string;
}

export interface ReadinessReport {
  ready: boolean;
  draining: boolean;
  buckets: BucketStatus[];
  /** The malware scanner (clamd PING), when scanning is configured. */
  scanner?: { ok: boolean; error?: string };
}

/** The scanner check: resolves when it answers, rejects with the reason. */
export type ScannerCheck = () => Promise<void>;

/** The scanner is asked at most this often, however short `cacheMs` is and however often /readyz is polled. */
const SCANNER_MIN_CACHE_MS = 3000;

/** A bucket to check, with the client of its S3 target. */
export interface ReadinessTarget {
  client: S3Client;
  bucket: string;
  /** Shown in the report for buckets on another target than the default one. */
  endpoint?: string;
  /** An account writing with Object Lock uses the bucket: it must have Object Lock enabled. */
  objectLock?: boolean;
}

/** HeadBucket calls in flight at once, however many buckets the accounts name. */
const CONCURRENCY = 16;

/**
 * Readiness: every bucket of the accounts in force answers HeadBucket on the account's S3 target
 * (results reused for `cacheMs`, so probes do not turn into S3 traffic), and the bridge is not
 * draining. `targets` is asked again whenever the cache expires, so accounts added or removed by
 * a reload of the accounts file are covered without a restart.
 */
export class Readiness {
  private draining = false;
  private cached: { at: number; buckets: Promise<BucketStatus[]> } | undefined;
  private scannerCached: { at: number; status: Promise<{ ok: boolean; error?: string }> } | undefined;

  constructor(
    private readonly targets: () => ReadinessTarget[],
    private readonly cacheMs: number,
    private readonly timeoutMs = 5000,
    /** With scanning configured: clamd must answer PING (its own time-out), asked at most every 3 s. */
    private readonly scanner?: ScannerCheck,
  ) {}

  /** Readiness turns false for good: the bridge is shutting down. */
  startDraining(): void {
    this.draining = true;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  async check(): Promise<ReadinessReport> {
    if (this.draining) return { ready: false, draining: true, buckets: [] };
    const now = Date.now();
    if (!this.cached || now - this.cached.at >= this.cacheMs) {
      this.cached = { at: now, buckets: this.checkAll() };
    }
    const [buckets, scanner] = await Promise.all([this.cached.buckets, this.scannerStatus(now)]);
    const ready = !this.draining && buckets.every((b) => b.ok) && (scanner?.ok ?? true);
    return { ready, draining: this.draining, buckets, ...(scanner && { scanner }) };
  }

  private scannerStatus(now: number): Promise<{ ok: boolean; error?: string }> | undefined {
    const check = this.scanner;
    if (!check) return undefined;
    if (!this.scannerCached || now - this.scannerCached.at >= Math.max(this.cacheMs, SCANNER_MIN_CACHE_MS)) {
      const status = check().then(
        () => ({ ok: true }),
        (err: unknown) => ({ ok: false, error: err instanceof Error ? err.message : String(err) }),
      );
      this.scannerCached = { at: now, status };
    }
    return this.scannerCached.status;
  }

  private async checkAll(): Promise<BucketStatus[]> {
    const targets = dedupe(this.targets());
    const out: BucketStatus[] = new Array(targets.length);
    let next = 0;
    const worker = async () => {
      while (next < targets.length) {
        const i = next++;
        out[i] = await this.headBucket(targets[i] as ReadinessTarget);
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, targets.length) }, worker));
    return out;
  }

  private async headBucket({ client, bucket, endpoint, objectLock }: ReadinessTarget): Promise<BucketStatus> {
    const where = endpoint === undefined ? { bucket } : { bucket, endpoint };
    try {
      await client.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: AbortSignal.timeout(this.timeoutMs) });
      const lockProblem = objectLock ? await objectLockProblem(client, bucket, AbortSignal.timeout(this.timeoutMs)) : undefined;
      if (lockProblem) return { ...where, ok: false, error: lockProblem };
      return { ...where, ok: true };
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      return { ...where, ok: false, error: e.$metadata?.httpStatusCode ? `${e.name ?? 'Error'} (HTTP ${e.$metadata.httpStatusCode})` : (e.name ?? 'Error') };
    }
  }
}

/** Each bucket once per client (accounts sharing a bucket and a target are one check). */
function dedupe(targets: ReadinessTarget[]): ReadinessTarget[] {
  const seen = new Map<S3Client, Set<string>>();
  return targets.filter((t) => {
    const buckets = seen.get(t.client) ?? new Set<string>();
    seen.set(t.client, buckets);
    // A bucket used with and without Object Lock is checked both ways (the lock check fails alone).
    const id = t.objectLock ? `${t.bucket}\nlock` : t.bucket;
    if (buckets.has(id)) return false;
    buckets.add(id);
    return true;
  });
}
