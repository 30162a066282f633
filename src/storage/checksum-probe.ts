import { randomBytes } from 'node:crypto';
import { DeleteObjectCommand, GetObjectLockConfigurationCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { S3_CHECKSUM_ALGORITHMS, checksumMember, checksumOf, createChecksum, type S3Checksum } from './checksums.js';
import { classifyS3Error } from './s3-errors.js';

/**
 * What a store does with one checksum algorithm. `verified`: it refuses bytes that do not match
 * the checksum; `kept`: keeps it (HeadObject reports it) but stores mismatching bytes too; `accepted`:
 * neither refuses nor keeps it; `rejected`: refuses the header itself (uploads would fail).
 */
export type ChecksumSupport = 'verified' | 'kept' | 'accepted' | 'rejected';

export interface ChecksumProbe {
  algorithm: S3Checksum;
  support: ChecksumSupport;
  /** For `rejected`: the store's error name. */
  error?: string;
}

const checksumOfBytes = async (algorithm: S3Checksum, body: Buffer): Promise<string> => {
  const hasher = createChecksum(algorithm);
  hasher.update(body);
  return hasher.digest();
};

/**
 * Whether the bucket retains every new object by default (an Object Lock rule): a probe object
 * written there could not be removed again, so none is written.
 */
export async function retainsByDefault(client: S3Client, bucket: string): Promise<boolean> {
  try {
    const res = await client.send(new GetObjectLockConfigurationCommand({ Bucket: bucket }));
    return res.ObjectLockConfiguration?.Rule?.DefaultRetention !== undefined;
  } catch {
    return false;
  }
}

/**
 * Writes a small object at `key` once per algorithm with its correct checksum (then reads it back
 * with ChecksumMode ENABLED), and once with a wrong one, then deletes it: what `check-config
 * --probe` reports. On a versioned bucket each write leaves a noncurrent version.
 */
export async function probeChecksums(client: S3Client, bucket: string, key: string): Promise<ChecksumProbe[]> {
  const body = Buffer.concat([Buffer.from('ftp-s3-bridge checksum probe '), randomBytes(16)]);
  const other = Buffer.from(body);
  other[0] = (other[0] as number) ^ 0xff;
  const put = async (algorithm: S3Checksum, value: string) =>
    client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ChecksumAlgorithm: algorithm, [checksumMember(algorithm)]: value }));
  const out: ChecksumProbe[] = [];
  try {
    for (const algorithm of S3_CHECKSUM_ALGORITHMS) {
      const value = await checksumOfBytes(algorithm, body);
      try {
        await put(algorithm, value);
      } catch (err) {
        out.push({ algorithm, support: 'rejected', error: (err as { name?: string }).name ?? 'Error' });
        continue;
      }
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
      const kept = checksumOf(head)?.value === value;
      let refusesMismatch = false;
      try {
        await put(algorithm, await checksumOfBytes(algorithm, other));
      } catch (err) {
        refusesMismatch = classifyS3Error(err).code === 'CHECKSUM_MISMATCH' || (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 400;
      }
      out.push({ algorithm, support: refusesMismatch ? 'verified' : kept ? 'kept' : 'accepted' });
    }
  } finally {
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })).catch(() => undefined);
  }
  return out;
}
