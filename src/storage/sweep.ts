import { AbortMultipartUploadCommand, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { isStorageError } from './errors.js';
import { s3Request } from './s3-request.js';

export interface SweepTarget {
  bucket: string;
  /** Key prefix ("" for the whole bucket). */
  prefix: string;
}

export interface SweepResult {
  aborted: number;
}

/** One S3 target (a client: endpoint, region, credentials) and what to sweep on it. */
export interface SweepGroup {
  client: S3Client;
  /** Names the target in errors (endpoint and region; never credentials). */
  label: string;
  targets: SweepTarget[];
}

/** Some buckets or prefixes could not be swept; the others were, and `aborted` counts what was aborted. */
export class SweepError extends Error {
  constructor(
    readonly aborted: number,
    readonly failures: { target: string; error: string }[],
  ) {
    super(failures.map((f) => `${f.target}: ${f.error}`).join('; '));
    this.name = 'SweepError';
  }
}

/**
 * Aborts the incomplete multipart uploads under each bucket and prefix of each S3 target that were
 * initiated before `olderThan`: what a crashed bridge (kill -9, OOM) leaves behind. Age-based, so
 * several replicas may sweep at once: an upload still in progress is younger than any sane
 * threshold. A bucket or prefix that fails (a partner's store down, a bucket gone) does not stop
 * the others; the failures are thrown together at the end as a {@link SweepError}.
 */
export async function sweepTargets(groups: SweepGroup[], olderThan: Date): Promise<SweepResult> {
  let aborted = 0;
  const failures: { target: string; error: string }[] = [];
  for (const group of groups) {
    for (const target of dedupe(group.targets)) {
      try {
        aborted += await sweepOne(group.client, target, olderThan);
      } catch (err) {
        const where = `${group.label ? group.label + ' ' : ''}${target.bucket}/${target.prefix}`;
        failures.push({ target: where, error: (err as Error).message });
      }
    }
  }
  if (failures.length) throw new SweepError(aborted, failures);
  return { aborted };
}

async function sweepOne(client: S3Client, { bucket, prefix }: SweepTarget, olderThan: Date): Promise<number> {
  let aborted = 0;
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const page = await s3Request(
      client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix || undefined, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker })),
    );
    for (const upload of page.Uploads ?? []) {
      if (!upload.Key || !upload.UploadId || !upload.Initiated || upload.Initiated >= olderThan) continue;
      try {
        await s3Request(client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId })));
        aborted++;
      } catch (err) {
        // Another replica got there first.
        if (!isStorageError(err, 'NOT_FOUND')) throw err;
      }
    }
    if (!page.IsTruncated) break;
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
    if (!keyMarker && !uploadIdMarker) break;
  }
  return aborted;
}

/** Nested prefixes of one bucket are swept once, under the shortest. */
function dedupe(targets: SweepTarget[]): SweepTarget[] {
  const sorted = [...targets].sort((a, b) => a.bucket.localeCompare(b.bucket) || a.prefix.length - b.prefix.length);
  const out: SweepTarget[] = [];
  for (const t of sorted) {
    if (!out.some((o) => o.bucket === t.bucket && t.prefix.startsWith(o.prefix))) out.push(t);
  }
  return out;
}

/** "30s", "15m", "24h", "7d" (or a bare number of seconds) in milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new Error(`invalid duration "${text}" (examples: 30s, 15m, 24h, 7d)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}
