import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { s3Request } from './s3-request.js';

/** Bytes and objects stored under a prefix. */
export interface Usage {
  bytes: number;
  objects: number;
}

/**
 * Measures a prefix with one paged ListObjectsV2 (1000 keys a page). Directory markers ("dir/",
 * zero bytes) count as objects, as S3 counts them.
 */
export async function measurePrefix(client: S3Client, bucket: string, prefix: string): Promise<Usage> {
  const usage: Usage = { bytes: 0, objects: 0 };
  let token: string | undefined;
  do {
    const page = await s3Request(client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token })));
    for (const o of page.Contents ?? []) {
      usage.bytes += o.Size ?? 0;
      usage.objects++;
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return usage;
}
