import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';

export interface BucketStatus {
  bucket: string;
  ok: boolean;
  error?: string;
}

export interface ReadinessReport {
  ready: boolean;
  draining: boolean;
  buckets: BucketStatus[];
}

/**
 * Readiness: every configured bucket answers HeadBucket (results reused for `cacheMs`, so probes
 * do not turn into S3 traffic), and the bridge is not draining.
 */
export class Readiness {
  private draining = false;
  private cached: { at: number; buckets: Promise<BucketStatus[]> } | undefined;

  constructor(
    private readonly s3: S3Client,
    private readonly buckets: readonly string[],
    private readonly cacheMs: number,
    private readonly timeoutMs = 5000,
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
      this.cached = { at: now, buckets: Promise.all(this.buckets.map((b) => this.headBucket(b))) };
    }
    const buckets = await this.cached.buckets;
    return { ready: !this.draining && buckets.every((b) => b.ok), draining: this.draining, buckets };
  }

  private async headBucket(bucket: string): Promise<BucketStatus> {
    try {
      await this.s3.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: AbortSignal.timeout(this.timeoutMs) });
      return { bucket, ok: true };
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      return { bucket, ok: false, error: e.$metadata?.httpStatusCode ? `${e.name ?? 'Error'} (HTTP ${e.$metadata.httpStatusCode})` : (e.name ?? 'Error') };
    }
  }
}
