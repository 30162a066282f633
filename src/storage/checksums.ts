import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { Crc32cJs, Crc64NvmeJs } from '@aws-sdk/checksums/crc';
import type { ChecksumAlgorithm as S3ChecksumAlgorithm, ChecksumType } from '@aws-sdk/client-s3';

/** Checksums S3 verifies on the request that carries them, and keeps with the object (s3.checksumAlgorithm). */
export const S3_CHECKSUM_ALGORITHMS = ['SHA256', 'CRC64NVME', 'CRC32C', 'CRC32'] as const;
export type S3Checksum = (typeof S3_CHECKSUM_ALGORITHMS)[number];

/** The request/response member that carries a checksum of that algorithm (ChecksumSHA256...). */
export type ChecksumMember = `Checksum${S3Checksum}`;
export const checksumMember = (algorithm: S3Checksum): ChecksumMember => `Checksum${algorithm}`;

/**
 * How a multipart upload's checksum covers the object: CRC64NVME only exists as a full-object
 * checksum (S3 combines the parts' CRCs into the whole object's); the others are composite (a
 * checksum of the parts' checksums, "-<parts>"), which does not describe the bytes of the object.
 */
export const multipartChecksumType = (algorithm: S3Checksum): ChecksumType => (algorithm === 'CRC64NVME' ? 'FULL_OBJECT' : 'COMPOSITE');

/** A checksum S3 verified and stored with a committed object. */
export interface ObjectChecksum {
  algorithm: S3Checksum;
  /** Base64, as S3 reports it (composite ones end in "-<parts>"). */
  value: string;
  /** FULL_OBJECT: the checksum of the object's bytes; COMPOSITE: of its parts' checksums. */
  type: ChecksumType;
}

/** The checksum as events and the audit line carry it: `<algorithm>:<base64>` (composite ones end in "-<parts>"). */
export const formatChecksum = (c: ObjectChecksum): string => `${c.algorithm}:${c.value}`;

/** An incremental checksum; `digest` once, after the last update. */
export interface ChecksumHasher {
  update(chunk: Uint8Array): void;
  /** The checksum in base64 (S3's encoding of x-amz-checksum-*). */
  digest(): Promise<string>;
}

/**
 * A hasher of the algorithm: SHA-256 and CRC32 from Node (native), CRC32C and CRC64NVME from the
 * AWS SDK's own pure-JS implementations (the ones its checksum middleware would use; no native
 * module).
 */
export function createChecksum(algorithm: S3Checksum): ChecksumHasher {
  switch (algorithm) {
    case 'SHA256': {
      const hash = createHash('sha256');
      return { update: (c) => void hash.update(c), digest: async () => hash.digest('base64') };
    }
    case 'CRC32': {
      let value = 0;
      return {
        update: (c) => void (value = crc32(c, value)),
        digest: async () => {
          const out = Buffer.alloc(4);
          out.writeUInt32BE(value >>> 0);
          return out.toString('base64');
        },
      };
    }
    case 'CRC32C':
    case 'CRC64NVME': {
      const impl = algorithm === 'CRC32C' ? new Crc32cJs() : new Crc64NvmeJs();
      return { update: (c) => impl.update(c), digest: async () => Buffer.from(await impl.digest()).toString('base64') };
    }
  }
}

/**
 * The object's checksum from a HeadObject answer with ChecksumMode ENABLED, if it has one of ours.
 * Stores that report no ChecksumType (older ones) mark a composite value by its "-<parts>" suffix.
 */
export function checksumOf(head: Partial<Record<ChecksumMember, string>> & { ChecksumType?: ChecksumType | string }): ObjectChecksum | undefined {
  for (const algorithm of S3_CHECKSUM_ALGORITHMS) {
    const value = head[checksumMember(algorithm)];
    if (!value) continue;
    const type = (head.ChecksumType as ChecksumType | undefined) ?? (value.includes('-') ? 'COMPOSITE' : 'FULL_OBJECT');
    return { algorithm, value, type: value.includes('-') ? 'COMPOSITE' : type };
  }
  return undefined;
}

/** SDK enum value for CreateMultipartUpload's ChecksumAlgorithm. */
export const sdkChecksumAlgorithm = (algorithm: S3Checksum): S3ChecksumAlgorithm => algorithm as S3ChecksumAlgorithm;

/**
 * The algorithm in force: s3.checksumAlgorithm, else SHA256 on AWS and none with a custom endpoint
 * (many S3-compatible stores reject or ignore x-amz-checksum-*). Undefined: none.
 */
export function resolveChecksumAlgorithm(s3: { endpoint?: string; checksumAlgorithm?: S3Checksum | 'none' }): S3Checksum | undefined {
  const configured = s3.checksumAlgorithm ?? (s3.endpoint === undefined ? 'SHA256' : 'none');
  return configured === 'none' ? undefined : configured;
}
