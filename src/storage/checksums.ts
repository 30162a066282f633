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
 * A value with a "-<parts>" suffix is composite; so is, when the store reports no ChecksumType
 * (older ones), any checksum of a multipart object (its ETag ends in "-<parts>"): a composite
 * checksum must never be taken for the object's.
 */
export function checksumOf(
  head: Partial<Record<ChecksumMember, string>> & { ChecksumType?: ChecksumType | string; ETag?: string },
): ObjectChecksum | undefined {
  for (const algorithm of S3_CHECKSUM_ALGORITHMS) {
    const value = head[checksumMember(algorithm)];
    if (!value) continue;
    const multipart = /-\d+"?$/.test(head.ETag ?? '');
    const type: ChecksumType = value.includes('-') ? 'COMPOSITE' : ((head.ChecksumType as ChecksumType | undefined) ?? (multipart ? 'COMPOSITE' : 'FULL_OBJECT'));
    return { algorithm, value, type };
  }
  return undefined;
}

/** SDK enum value for CreateMultipartUpload's ChecksumAlgorithm. */
export const sdkChecksumAlgorithm = (algorithm: S3Checksum): S3ChecksumAlgorithm => algorithm as S3ChecksumAlgorithm;

/** CRC64NVME's polynomial, bit-reflected (the CRC's init and final XOR are all ones, as CRC-32's). */
const CRC64NVME_POLY_REFLECTED = 0x9a6c9329ac4bc9b5n;

/** The 64x64 GF(2) matrix `mat` (rows as bigints) times the vector `vec`. */
function gf2Times(mat: readonly bigint[], vec: bigint): bigint {
  let sum = 0n;
  for (let i = 0; vec; i++, vec >>= 1n) if (vec & 1n) sum ^= mat[i] as bigint;
  return sum;
}

function gf2Square(mat: readonly bigint[]): bigint[] {
  return mat.map((row) => gf2Times(mat, row));
}

/**
 * CRC64NVME of A followed by B, from CRC64NVME(A), CRC64NVME(B) and B's length (zlib's
 * crc32_combine, for 64 bits): a multipart upload's full-object checksum from its parts' without
 * running a second CRC over every byte.
 */
export function combineCrc64Nvme(crcA: bigint, crcB: bigint, lengthB: number): bigint {
  if (lengthB <= 0) return crcA;
  // The operator for one zero bit, then squared into the operators for 2, 4, 8... zero bits.
  let op: bigint[] = [CRC64NVME_POLY_REFLECTED, ...Array.from({ length: 63 }, (_, n) => 1n << BigInt(n))];
  op = gf2Square(gf2Square(op)); // four zero bits
  let crc = crcA;
  for (let bytes = BigInt(lengthB); bytes; bytes >>= 1n) {
    op = gf2Square(op); // the operator for 8 x 2^k zero bits: 2^k zero bytes
    if (bytes & 1n) crc = gf2Times(op, crc);
  }
  return crc ^ crcB;
}

/** The full-object CRC64NVME (base64) of parts given in order as base64 checksums and lengths. */
export function fullObjectCrc64Nvme(parts: readonly { value: string; length: number }[]): string {
  let crc: bigint | undefined;
  for (const part of parts) {
    const value = Buffer.from(part.value, 'base64').readBigUInt64BE();
    crc = crc === undefined ? value : combineCrc64Nvme(crc, value, part.length);
  }
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(crc ?? 0n);
  return out.toString('base64');
}
