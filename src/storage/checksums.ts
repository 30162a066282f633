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
 * How a multipart upload's checksum covers the object: the CRCs are full-object (S3 combines the
 * parts' CRCs into the whole object's, and the bridge sends that value with the commit, so
 * `HASH`/`XCRC` can answer from it); SHA-256 cannot be combined and is composite (a checksum of
 * the parts' checksums, "-<parts>"), which does not describe the bytes of the object.
 */
export const multipartChecksumType = (algorithm: S3Checksum): ChecksumType => (algorithm === 'SHA256' ? 'COMPOSITE' : 'FULL_OBJECT');

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

/** The CRCs' polynomials, bit-reflected, and their widths (init and final XOR are all ones for each). */
const CRC_PARAMS = {
  CRC32: { poly: 0xedb88320n, width: 32 },
  CRC32C: { poly: 0x82f63b78n, width: 32 },
  CRC64NVME: { poly: 0x9a6c9329ac4bc9b5n, width: 64 },
} as const;
export type CrcAlgorithm = keyof typeof CRC_PARAMS;

/** The GF(2) matrix `mat` (rows as bigints) times the vector `vec`. */
function gf2Times(mat: readonly bigint[], vec: bigint): bigint {
  let sum = 0n;
  for (let i = 0; vec; i++, vec >>= 1n) if (vec & 1n) sum ^= mat[i] as bigint;
  return sum;
}

function gf2Square(mat: readonly bigint[]): bigint[] {
  return mat.map((row) => gf2Times(mat, row));
}

/**
 * The CRC of A followed by B, from CRC(A), CRC(B) and B's length (zlib's crc32_combine, for any
 * of the reflected CRCs S3 uses): a multipart upload's full-object checksum from its parts' without
 * running a second CRC over every byte.
 */
export function combineCrc(algorithm: CrcAlgorithm, crcA: bigint, crcB: bigint, lengthB: number): bigint {
  if (lengthB <= 0) return crcA;
  const { poly, width } = CRC_PARAMS[algorithm];
  // The operator for one zero bit, then squared into the operators for 2, 4, 8... zero bits.
  let op: bigint[] = [poly, ...Array.from({ length: width - 1 }, (_, n) => 1n << BigInt(n))];
  op = gf2Square(gf2Square(op)); // four zero bits
  let crc = crcA;
  for (let bytes = BigInt(lengthB); bytes; bytes >>= 1n) {
    op = gf2Square(op); // the operator for 8 x 2^k zero bits: 2^k zero bytes
    if (bytes & 1n) crc = gf2Times(op, crc);
  }
  return crc ^ crcB;
}

/** {@link combineCrc} for CRC64NVME. */
export const combineCrc64Nvme = (crcA: bigint, crcB: bigint, lengthB: number): bigint => combineCrc('CRC64NVME', crcA, crcB, lengthB);

/** The full-object CRC (base64) of parts given in order as base64 checksums and lengths. */
export function fullObjectCrc(algorithm: CrcAlgorithm, parts: readonly { value: string; length: number }[]): string {
  const bytes = CRC_PARAMS[algorithm].width / 8;
  const read = (value: string) => {
    const raw = Buffer.from(value, 'base64');
    return bytes === 8 ? raw.readBigUInt64BE() : BigInt(raw.readUInt32BE());
  };
  let crc: bigint | undefined;
  for (const part of parts) crc = crc === undefined ? read(part.value) : combineCrc(algorithm, crc, read(part.value), part.length);
  const out = Buffer.alloc(bytes);
  if (bytes === 8) out.writeBigUInt64BE(crc ?? 0n);
  else out.writeUInt32BE(Number(crc ?? 0n));
  return out.toString('base64');
}

/** {@link fullObjectCrc} for CRC64NVME. */
export const fullObjectCrc64Nvme = (parts: readonly { value: string; length: number }[]): string => fullObjectCrc('CRC64NVME', parts);
