import { createHash, type Hash } from 'node:crypto';
import { crc32 } from 'node:zlib';

/** Digests the bridge can answer for (HASH, XSHA256, XMD5). The first is the default. */
export const DIGEST_ALGORITHMS = ['SHA-256', 'SHA-1', 'SHA-512', 'MD5'] as const;
/** Those, and CRC32 (XCRC), which HASH does not offer. */
export type DigestAlgorithm = (typeof DIGEST_ALGORITHMS)[number] | 'CRC32';

/** Digests computed while an upload streams in, and stored with the object. */
export const STORED_ALGORITHMS = ['SHA-256', 'MD5'] as const satisfies readonly DigestAlgorithm[];
export type StoredAlgorithm = (typeof STORED_ALGORITHMS)[number];
export type StoredDigests = Partial<Record<DigestAlgorithm, string>>;

const NODE_NAMES: Record<Exclude<DigestAlgorithm, 'CRC32'>, string> = { 'SHA-256': 'sha256', 'SHA-1': 'sha1', 'SHA-512': 'sha512', MD5: 'md5' };

/** An incremental digest with a hex result. */
export interface Digest {
  update(chunk: Uint8Array): unknown;
  digest(encoding: 'hex'): string;
}

/**
 * User metadata keys (x-amz-meta-<key>) holding the hex digests of the object's whole content.
 * Only the bridge writes them, and only from the bytes it streamed into that very object.
 */
const DIGEST_METADATA_KEYS: Partial<Record<DigestAlgorithm, string>> = { 'SHA-256': 'sha256', MD5: 'md5' };

export const parseDigestAlgorithm = (name: string): DigestAlgorithm | undefined => {
  const n = name.trim().toUpperCase();
  const alias: Record<string, DigestAlgorithm> = { SHA256: 'SHA-256', SHA1: 'SHA-1', SHA512: 'SHA-512' };
  return (DIGEST_ALGORITHMS as readonly string[]).includes(n) ? (n as DigestAlgorithm) : alias[n];
};

export function createDigest(algorithm: DigestAlgorithm): Digest {
  if (algorithm !== 'CRC32') return createHash(NODE_NAMES[algorithm]);
  let value = 0;
  return {
    update: (chunk) => (value = crc32(chunk, value)),
    digest: () => (value >>> 0).toString(16).padStart(8, '0'),
  };
}

/** Digests of a stream (by default SHA-256 and MD5), fed chunk by chunk as the bytes pass. */
export class StreamDigests {
  private readonly hashes: (readonly [StoredAlgorithm, Digest])[];

  constructor(algorithms: readonly StoredAlgorithm[] = STORED_ALGORITHMS) {
    this.hashes = [...new Set(algorithms)].map((a) => [a, createDigest(a)] as const);
  }

  update(chunk: Buffer): void {
    for (const [, h] of this.hashes) h.update(chunk);
  }

  /**
   * The hex digest of the bytes so far, without ending the stream's (a copy of its state is
   * finished); undefined when `algorithm` is not computed.
   */
  digestSoFar(algorithm: StoredAlgorithm): string | undefined {
    const hash = this.hashes.find(([a]) => a === algorithm)?.[1];
    return hash && (hash as Hash).copy().digest('hex');
  }

  /** Hex digests; call once, after the last chunk. */
  digest(): StoredDigests {
    return Object.fromEntries(this.hashes.map(([a, h]) => [a, h.digest('hex')]));
  }
}

/** S3 user metadata for digests. */
export function digestMetadata(digests: StoredDigests): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [algorithm, key] of Object.entries(DIGEST_METADATA_KEYS)) {
    const hex = digests[algorithm as DigestAlgorithm];
    if (hex && key) out[key] = hex;
  }
  return out;
}

/** Digests found in S3 user metadata (keys arrive lower-cased). */
export function digestsFromMetadata(metadata: Record<string, string> | undefined): StoredDigests {
  const out: StoredDigests = {};
  if (!metadata) return out;
  for (const [algorithm, key] of Object.entries(DIGEST_METADATA_KEYS)) {
    const hex = key && metadata[key];
    if (hex && /^[0-9a-f]+$/.test(hex)) out[algorithm as DigestAlgorithm] = hex;
  }
  return out;
}

/**
 * Digests of objects committed by this process whose metadata could not carry them (multipart
 * uploads send their metadata before the first byte). Keyed by bucket, key and ETag, so an object
 * replaced since is never answered with a stale digest. Bounded; the oldest entries go first.
 */
export class DigestCache {
  private readonly entries = new Map<string, StoredDigests>();

  constructor(private readonly maxEntries = 10_000) {}

  private static id(bucket: string, key: string, etag: string): string {
    return `${bucket}\n${key}\n${etag}`;
  }

  set(bucket: string, key: string, etag: string | undefined, digests: StoredDigests): void {
    if (!etag) return;
    const id = DigestCache.id(bucket, key, etag);
    this.entries.delete(id);
    this.entries.set(id, digests);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  get(bucket: string, key: string, etag: string | undefined): StoredDigests | undefined {
    return etag ? this.entries.get(DigestCache.id(bucket, key, etag)) : undefined;
  }
}
