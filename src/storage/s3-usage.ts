import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { s3Request } from './s3-request.js';

/** Bytes and objects stored under a prefix. */
export interface Usage {
  bytes: number;
  objects: number;
}

/** Usage, and the ETags listed for the keys the caller watched. */
export interface MeasuredUsage extends Usage {
  etags?: ReadonlyMap<string, string>;
}

/**
 * Measures a prefix with one paged ListObjectsV2 (1000 keys a page). Directory markers ("dir/",
 * zero bytes) count as objects, as S3 counts them. The ETag of each listed key for which
 * `watching` says yes (asked as its page arrives) is returned too.
 */
export async function measurePrefix(client: S3Client, bucket: string, prefix: string, watching?: (key: string) => boolean): Promise<MeasuredUsage> {
  const usage = { bytes: 0, objects: 0, etags: new Map<string, string>() };
  let token: string | undefined;
  do {
    const page = await s3Request(client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token })));
    for (const o of page.Contents ?? []) {
      usage.bytes += o.Size ?? 0;
      usage.objects++;
      if (o.Key !== undefined && o.ETag !== undefined && watching?.(o.Key)) usage.etags.set(o.Key, o.ETag);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return usage;
}
