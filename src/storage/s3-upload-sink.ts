import { Writable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  PutObjectTaggingCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type PutObjectCommandInput,
  type S3Client,
} from '@aws-sdk/client-s3';
import {
  checksumMember,
  createChecksum,
  fullObjectCrc,
  multipartChecksumType,
  type ChecksumHasher,
  type ObjectChecksum,
  type S3Checksum,
} from './checksums.js';
import { STORED_ALGORITHMS, StreamDigests, digestMetadata, type StoredAlgorithm, type StoredDigests } from './digests.js';
import { StorageError } from './errors.js';
import { MemoryBudget, type MemoryOwner } from './memory-budget.js';
import type { CommittedObject, UploadSink } from './object-store.js';
import { classifyS3Error } from './s3-errors.js';
import { mergeTagging, ScanError, type ScanDecision, type UploadScan } from './scan.js';
import { withObjectLockContentMd5, withPayloadSha256 } from './s3-client.js';
import { MAX_PARTS, MAX_PART_BYTES, encodeCopySource, isNotImplemented } from './s3-request.js';

/** Parts sent at the configured size before the size starts doubling. */
const PARTS_PER_SIZE_STEP = 1000;
/**
 * An upload starts in a small buffer (MemoryBudget.tryTakeSmallBuffer) when one is free at once,
 * and moves into a part buffer if it outgrows it. One size, so that small buffers recycle exactly
 * (sizes that vary fragment the heap): a camera's picture fits.
 */
const SMALL_BUFFER_BYTES = 512 * 1024;

export interface UploadOptions {
  client: S3Client;
  bucket: string;
  key: string;
  /** Size of the first 1,000 parts (see partSizeFor). */
  partSize: number;
  /** Part requests in flight at once. */
  queueSize: number;
  /** Shared budget that part buffers are taken from; omitted: a budget of this upload's own. */
  budget?: MemoryBudget;
  /** Who the buffers are charged to within the budget's shares (client address, account). */
  memoryOwner?: MemoryOwner;
  /** Per-account S3 policy and uploader metadata, sent with PutObject / CreateMultipartUpload. */
  objectParams?: ObjectParams;
  /** Settles before the object is committed; a rejection fails the upload (checks run alongside the data). */
  beforeCommit?: Promise<void>;
  /** Digests computed as the bytes pass and reported with the commit; default SHA-256 and MD5. None with `copySource`. */
  digestAlgorithms?: readonly StoredAlgorithm[];
  /**
   * Append: the object at `key` (at least MIN_PART_BYTES; its ETag guards against a concurrent
   * change) is copied server-side as the first parts, and the written bytes follow it.
   */
  copySource?: { size: number; etag: string };
  /**
   * Malware scan: every chunk also goes to the scanner (the write waits for it), and its decision,
   * awaited before the commit, says where the object is committed or fails the upload. With a
   * staging key (quarantine), `bucket`/`key` are the staging place of a multipart upload, and the
   * object is copied server-side to where the decision says. Not with `copySource`. The Object
   * Lock parameters of `objectParams` go only with the object committed where asked: neither the
   * staged upload (deleted after its copy) nor a quarantined file is locked.
   */
  scanner?: UploadScan;
  /**
   * Checksum S3 verifies on each request and keeps (s3.checksumAlgorithm), computed as the bytes
   * are copied into the part buffers; omitted: none. With `copySource`, the copied parts' checksums
   * are the ones S3 computes and returns for them (stores that return none leave the object's
   * checksum unknown), the appended bytes carry their own.
   */
  checksumAlgorithm?: S3Checksum;
}

/**
 * What every stored object carries besides its bytes. Tags go as the x-amz-tagging header of the
 * request that creates the object, so a tagging failure can never follow a commit.
 */
export type ObjectParams = Partial<
  Pick<
    PutObjectCommandInput,
    'Metadata' | 'Tagging' | 'StorageClass' | 'ServerSideEncryption' | 'SSEKMSKeyId' | 'ObjectLockMode' | 'ObjectLockRetainUntilDate' | 'ObjectLockLegalHoldStatus'
  >
>;

/**
 * Size of part `partNumber` (from 1): `base` for the first 1,000 parts, then doubling every 1,000
 * parts up to S3's 5 GiB, so a stream of unknown length is not cut off at base x 10,000 parts
 * (80 GiB at 8 MiB): with a 5 MiB base, 10,000 parts hold 4.9 TiB; with 8 MiB, S3's 5 TiB limit.
 */
export function partSizeFor(partNumber: number, base: number): number {
  return Math.min(MAX_PART_BYTES, base * 2 ** Math.floor((partNumber - 1) / PARTS_PER_SIZE_STEP));
}

/**
 * A Writable that streams into one S3 object: a single PutObject when everything fits the first
 * part, otherwise a multipart upload. Bytes are copied into part buffers taken from the shared
 * MemoryBudget (and recycled through it); at most `queueSize` parts are in flight, and a write
 * waits for a free slot or for budget, which pauses the data socket: a slow S3 slows the client.
 *
 * `_final` waits for the commit, so 'finish' means the object exists. Destroying the sink before
 * that aborts the requests in flight and the multipart upload; `committed` rejects once the abort
 * has been sent.
 *
 * SHA-256 and MD5 are computed as the bytes pass. A single PutObject is sent after the last byte,
 * so it carries them as metadata; a multipart upload sent its metadata with CreateMultipartUpload,
 * before the digests existed, and `committed` reports them with `digestsInMetadata: false`.
 *
 * Append (`copySource`, APPE onto an object of at least 5 MiB): the multipart upload starts at once
 * with UploadPartCopy requests of the existing object, so its bytes never pass through the bridge;
 * the written bytes follow as further parts, and the commit is always CompleteMultipartUpload.
 * Readers see the old object until that commit; a failure aborts the upload and leaves it as it
 * was. `ready` rejects (APPEND_UNSUPPORTED on stores without UploadPartCopy) before any byte is
 * taken. No digests: those of the written bytes would not be the object's.
 *
 * Why not lib-storage's Upload: it concatenates every part into a freshly allocated buffer (on
 * this project's benchmark VM that cost more CPU than hashing the same bytes), it cannot take part
 * buffers from a shared budget, and its part size is fixed, which caps a stream at 10,000 parts.
 */
export class S3UploadSink extends Writable implements UploadSink {
  /** Bytes written (with `copySource`, the committed object is `copySource.size` longer). */
  bytesWritten = 0;
  readonly committed: Promise<CommittedObject>;
  /** Settles once `copySource` is copied into the upload (at once without one); rejects when that failed. */
  readonly ready: Promise<void>;
  private resolveCommitted!: (object: CommittedObject) => void;
  private rejectCommitted!: (err: StorageError) => void;
  private readonly budget: MemoryBudget;
  private readonly abortController = new AbortController();
  private readonly digests: StreamDigests | undefined;
  private readonly checksumAlgorithm: S3Checksum | undefined;
  /** The checksum of the part being filled (of the whole object when it ends as one PutObject). */
  private partChecksum: ChecksumHasher | undefined;
  private readonly digestsComputeSha256: boolean;
  /** Bytes per part number, to combine the parts' CRC64NVMEs into the object's. */
  private readonly partLengths = new Map<number, number>();
  /**
   * The part being filled, and how many bytes it holds; or the small buffer an upload starts in,
   * told apart by its length (part buffers are never shorter than partSize).
   */
  private current: Buffer | undefined;
  private fill = 0;
  /** Parts handed to S3 so far (the number of the last one). */
  private partCount = 0;
  private uploadId: Promise<string> | undefined;
  private readonly parts: CompletedPart[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private failure: StorageError | undefined;
  private isCommitted = false;
  /** The scanner found the file infected and it is being committed under the quarantine prefix. */
  private quarantining: ScanDecision | undefined;

  constructor(private readonly options: UploadOptions) {
    // Small: writes are copied into the part buffer at once; only while a part waits for a slot
    // or for budget do chunks queue here, and with many sessions waiting at the cap that adds up.
    super({ highWaterMark: 64 * 1024 });
    this.budget = options.budget ?? new MemoryBudget(options.partSize * (options.queueSize + 1));
    this.digests = options.copySource ? undefined : new StreamDigests(options.digestAlgorithms);
    this.checksumAlgorithm = options.checksumAlgorithm;
    this.digestsComputeSha256 = this.digests !== undefined && (options.digestAlgorithms ?? STORED_ALGORITHMS).includes('SHA-256');
    this.committed = new Promise<CommittedObject>((resolve, reject) => {
      this.resolveCommitted = resolve;
      this.rejectCommitted = reject;
    });
    this.committed.catch(() => undefined);
    // Failures reach whoever pipes into this sink and `committed`; one that happens while nobody
    // listens must not become an uncaught 'error'.
    this.on('error', () => undefined);
    this.ready = options.copySource ? this.copySourceParts(options.copySource) : Promise.resolve();
    this.ready.catch(() => undefined);
  }

  /** The existing object as parts 1..n, each under S3's part limit, none under MIN_PART_BYTES. */
  private copySourceParts({ size, etag }: { size: number; etag: string }): Promise<void> {
    const { bucket, key } = this.options;
    const uploadId = (this.uploadId = this.createMultipartUpload());
    const CopySource = encodeCopySource(bucket, key);
    const step = Math.ceil(size / Math.ceil(size / MAX_PART_BYTES));
    const copies: Promise<void>[] = [];
    for (let start = 0; start < size; start += step) {
      const PartNumber = ++this.partCount;
      const CopySourceRange = `bytes=${start}-${Math.min(start + step, size) - 1}`;
      copies.push(this.track(async () => {
        const UploadId = await uploadId;
        const res = await this.send<{ CopyPartResult?: { ETag?: string } & Partial<Record<string, string>> }>(
          new UploadPartCopyCommand({ Bucket: bucket, Key: key, UploadId, PartNumber, CopySource, CopySourceIfMatch: etag, CopySourceRange }),
        ).catch((err: unknown) => {
          throw isNotImplemented(err) ? unsupported(err) : err;
        });
        // A store that ignores x-amz-copy-source stored an empty part: never complete with it.
        if (!res.CopyPartResult?.ETag) throw unsupported();
        // S3 computes the copied part's checksum (the upload names the algorithm) and the commit lists it.
        const member = this.checksumAlgorithm && checksumMember(this.checksumAlgorithm);
        const sum = member && res.CopyPartResult[member];
        this.partLengths.set(PartNumber, Math.min(start + step, size) - start);
        this.parts.push({ PartNumber, ETag: res.CopyPartResult.ETag, ...(member && sum && { [member]: sum }) });
      }));
    }
    return Promise.all(copies).then(() => {
      if (this.failure) throw this.failure;
    });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.failure) return callback(this.failure);
    this.bytesWritten += chunk.length;
    // The scanner holds the chunk until the kernel has it: the callback (after which the chunk may be freed) waits.
    const scanned = this.options.scanner?.write(chunk);
    const copied = this.copyIn(chunk, 0);
    if (copied === chunk.length && !scanned) return callback();
    const copying = copied === chunk.length ? undefined : this.copyInAsync(chunk, copied);
    Promise.all([copying, scanned]).then(() => callback(), callback);
  }

  /** Copies what fits into the current part buffer; returns the offset reached. */
  private copyIn(chunk: Buffer, offset: number): number {
    const current = this.current;
    if (!current || this.fill === current.length) return offset;
    const n = chunk.copy(current, this.fill, offset);
    this.fill += n;
    if (n > 0) {
      // Digests and checksum are fed the bytes as they enter the part, so the object's SHA-256 so
      // far is the first part's (see takePartChecksum).
      const bytes = chunk.subarray(offset, offset + n);
      this.digests?.update(bytes);
      if (this.checksumAlgorithm && !this.firstPartFromDigests()) (this.partChecksum ??= createChecksum(this.checksumAlgorithm)).update(bytes);
    }
    return offset + n;
  }

  /**
   * The rest of a chunk that needs a new buffer: a small one to start in, or a part buffer. A full
   * part is sent first; a full small buffer's bytes move into the part buffer.
   */
  private async copyInAsync(chunk: Buffer, offset: number): Promise<void> {
    while (offset < chunk.length) {
      let buffer = this.nextSmallBuffer();
      if (!buffer) {
        if (this.current && this.current.length >= this.options.partSize) await this.sendCurrentPart();
        // A new part buffer only once a slot is free: an upload holds at most queueSize parts, the
        // one filling included (the client waits meanwhile, as it would for a full buffer).
        await this.slotFree();
        if (this.failure) throw this.failure;
        buffer = await this.budget.takeBuffer(partSizeFor(this.partCount + 1, this.options.partSize), this.options.memoryOwner);
        if (this.failure) {
          this.budget.giveBack(buffer);
          throw this.failure;
        }
      }
      const outgrown = this.current;
      if (outgrown) {
        outgrown.copy(buffer, 0, 0, this.fill);
        this.budget.giveBack(outgrown);
      }
      this.current = buffer;
      offset = this.copyIn(chunk, offset);
    }
  }

  /**
   * The first buffer of an upload, if the budget has a small one at once: an upload smaller than
   * that never holds a part's worth of budget.
   */
  private nextSmallBuffer(): Buffer | undefined {
    if (this.current || this.uploadId || SMALL_BUFFER_BYTES >= this.options.partSize) return undefined;
    return this.budget.tryTakeSmallBuffer(SMALL_BUFFER_BYTES, this.options.memoryOwner);
  }

  /** Hands the current part to S3 once a slot is free; its buffer returns to the budget when it is stored. */
  private async sendCurrentPart(): Promise<void> {
    await this.slotFree();
    const buffer = this.current as Buffer;
    const length = this.fill;
    const checksum = this.takePartChecksum();
    this.current = undefined;
    this.fill = 0;
    if (this.failure) {
      this.budget.giveBack(buffer);
      throw this.failure;
    }
    const partNumber = ++this.partCount;
    this.partLengths.set(partNumber, length);
    if (partNumber > MAX_PARTS) {
      this.budget.giveBack(buffer);
      throw this.fail(new StorageError('STORAGE_FULL', `The file exceeds the largest object S3 can hold (${MAX_PARTS} parts)`));
    }
    this.uploadId ??= this.createMultipartUpload();
    const uploadId = this.uploadId;
    void this.track(async () => {
      try {
        const UploadId = await uploadId;
        const sum = checksum && { [checksumMember(checksum.algorithm)]: await checksum.hasher.digest() };
        // ChecksumAlgorithm also names it (x-amz-sdk-checksum-algorithm); the SDK adds no checksum of its own next to a given one.
        const part = new UploadPartCommand({
          Bucket: this.options.bucket,
          Key: this.options.key,
          UploadId,
          PartNumber: partNumber,
          Body: buffer.subarray(0, length),
          ...(checksum && { ChecksumAlgorithm: checksum.algorithm }),
          ...sum,
        });
        const res = await this.send<{ ETag?: string }>(sum?.ChecksumSHA256 ? withPayloadSha256(part, base64ToHex(sum.ChecksumSHA256)) : part);
        this.parts.push({ PartNumber: partNumber, ETag: res.ETag, ...sum });
      } catch (err) {
        // An aborted request may still be writing the buffer: release its bytes, never reuse it.
        this.budget.discard(buffer);
        throw err;
      }
      this.budget.giveBack(buffer);
    });
  }

  /** Resolves once fewer than queueSize parts are in flight, or the upload failed. */
  private async slotFree(): Promise<void> {
    while (this.inFlight.size >= this.options.queueSize && !this.failure) await Promise.race(this.inFlight);
  }

  /** Runs a part request as one of those in flight; its failure fails the upload. Never rejects. */
  private track(run: () => Promise<void>): Promise<void> {
    const request: Promise<void> = run().then(
      () => {
        this.inFlight.delete(request);
      },
      (err: unknown) => {
        this.inFlight.delete(request);
        this.fail(classifyS3Error(err));
      },
    );
    this.inFlight.add(request);
    return request;
  }

  /**
   * Whether the part being filled is the first and its SHA256 checksum is the object's SHA-256 so
   * far (s3.uploadDigests computes it): then no second SHA-256 runs over its bytes, which is all of
   * them for an upload that ends as one PutObject.
   */
  private firstPartFromDigests(): boolean {
    return this.checksumAlgorithm === 'SHA256' && this.partCount === 0 && this.digestsComputeSha256;
  }

  /**
   * The checksum of the bytes copied into the current part so far, handed over with it (an empty
   * part's too); `final`: the object's digests, once the stream has ended.
   */
  private takePartChecksum(final?: StoredDigests): { algorithm: S3Checksum; hasher: ChecksumHasher } | undefined {
    const algorithm = this.checksumAlgorithm;
    if (!algorithm) return undefined;
    if (this.firstPartFromDigests()) {
      const value = Buffer.from(final?.['SHA-256'] ?? this.digests?.digestSoFar('SHA-256') ?? '', 'hex').toString('base64');
      return { algorithm, hasher: { update: () => undefined, digest: async () => value } };
    }
    const hasher = this.partChecksum ?? createChecksum(algorithm);
    this.partChecksum = undefined;
    return { algorithm, hasher };
  }

  private createMultipartUpload(): Promise<string> {
    const { bucket, key } = this.options;
    // A staged upload (quarantine) is copied to its final key, which alone takes the Object Lock.
    const objectParams = this.options.scanner?.stagingKey ? withoutObjectLock(this.options.objectParams) : this.options.objectParams;
    const algorithm = this.checksumAlgorithm;
    const checksum = algorithm && { ChecksumAlgorithm: algorithm, ChecksumType: multipartChecksumType(algorithm) };
    // Not cancellable: a create cancelled in flight may still exist on the server, with no id to abort it by.
    const create = this.options.client.send(new CreateMultipartUploadCommand({ ...objectParams, ...checksum, Bucket: bucket, Key: key }));
    const id = create.then((res) => {
      if (!res.UploadId) throw new StorageError('INTERNAL', 'Storage returned no upload id');
      return res.UploadId;
    });
    id.catch(() => undefined);
    return id;
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.commit().then(
      () => callback(),
      (err: unknown) => {
        if (this.isCommitted) {
          // Committed, yet the upload fails (quarantined): nothing to abort.
          const error = err instanceof StorageError ? err : classifyS3Error(err);
          this.rejectCommitted(error);
          callback(error);
          return;
        }
        let error = this.failure ?? classifyS3Error(err);
        const infected = this.quarantining?.error;
        if (infected) {
          // The quarantine could not be stored (a store without object tagging, an S3 failure): the
          // file is still infected and refused (550), and stored nowhere.
          const { quarantined: _notStored, ...report } = infected.scan;
          error = new ScanError('SCAN_REJECTED', infected.message, { ...report, action: 'rejected' }, { cause: error });
        }
        this.fail(error);
        callback(error);
      },
    );
  }

  private async commit(): Promise<void> {
    if (this.failure) throw this.failure;
    // clamd scans what it has while the last parts are stored.
    const scanned = this.options.scanner?.decide();
    scanned?.catch(() => undefined);
    if (this.options.beforeCommit) await this.options.beforeCommit;
    const { bucket, key } = this.options;
    const digests = this.digests?.digest();
    if (!this.uploadId) {
      // A single request: nothing reaches the store before the verdict, and it goes where the verdict says.
      const decision = await scanned;
      if (decision?.error) this.quarantining = decision;
      const buffer = this.current;
      const body = buffer ? buffer.subarray(0, this.fill) : Buffer.alloc(0);
      this.current = undefined;
      const params = decision ? { ...this.paramsAt(decision), Tagging: mergeTagging(decision.tags, this.options.objectParams?.Tagging) } : this.options.objectParams;
      const taken = this.takePartChecksum(digests);
      const checksum: ObjectChecksum | undefined = taken && { algorithm: taken.algorithm, value: await taken.hasher.digest(), type: 'FULL_OBJECT' };
      let res: { ETag?: string };
      try {
        const put = new PutObjectCommand({
          ...params,
          ...(checksum && { ChecksumAlgorithm: checksum.algorithm, [checksumMember(checksum.algorithm)]: checksum.value }),
          Metadata: { ...params?.Metadata, ...digestMetadata(digests ?? {}) },
          Bucket: decision?.bucket ?? bucket,
          Key: decision?.key ?? key,
          Body: body,
        });
        // The body is the whole stream, whose SHA-256 is at hand: SigV4 need not hash it again.
        const sha256 = digests?.['SHA-256'] ?? (checksum?.algorithm === 'SHA256' ? base64ToHex(checksum.value) : undefined);
        res = await this.send(sha256 ? withPayloadSha256(put, sha256) : put);
      } catch (err) {
        if (buffer) this.budget.discard(buffer);
        throw err;
      }
      if (buffer) this.budget.giveBack(buffer);
      this.committedAs(res.ETag, digests, true, checksum, decision);
      return;
    }
    if (this.current) await this.sendCurrentPart();
    while (this.inFlight.size) await Promise.all(this.inFlight);
    if (this.failure) throw this.failure;
    // Reject mode: an infected upload is aborted here, never completed.
    const decision = await scanned;
    if (decision?.error) this.quarantining = decision;
    if (this.failure) throw this.failure;
    const UploadId = await this.uploadId;
    const Parts = [...this.parts].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    const algorithm = this.checksumAlgorithm;
    // The object's CRC goes along, combined from the parts' (no second CRC over every byte): S3
    // checks it against the parts it assembled, and keeps it.
    const member = algorithm && checksumMember(algorithm);
    const whole = algorithm && algorithm !== 'SHA256' && member && Parts.every((p) => p[member]) && {
      ChecksumType: 'FULL_OBJECT' as const,
      [member]: fullObjectCrc(algorithm, Parts.map((p) => ({ value: p[member] ?? '', length: this.partLengths.get(p.PartNumber ?? 0) ?? 0 }))),
    };
    const res = await this.send<{ ETag?: string } & Partial<Record<string, string>>>(
      new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts }, ...(whole || {}) }),
    );
    const value = algorithm && (res[checksumMember(algorithm)] ?? (whole && member ? whole[member] : await compositeChecksum(algorithm, Parts)));
    const checksum: ObjectChecksum | undefined = algorithm && value ? { algorithm, value, type: multipartChecksumType(algorithm) } : undefined;
    if (decision && (decision.bucket !== bucket || decision.key !== key)) {
      const moved = await this.moveStaged(decision, digests, res.VersionId);
      this.committedAs(moved.etag, digests, true, moved.checksum ?? checksum, decision);
      return;
    }
    if (decision && Object.keys(decision.tags).length) {
      // Committed unscanned where asked: its tags were sent with CreateMultipartUpload, before the
      // scan gave up; the mark follows the commit (a store without tagging keeps the object unmarked).
      const Tagging = mergeTagging(decision.tags, this.options.objectParams?.Tagging) ?? '';
      const TagSet = [...new URLSearchParams(Tagging)].map(([Key, Value]) => ({ Key, Value }));
      await this.options.client.send(new PutObjectTaggingCommand({ Bucket: bucket, Key: key, Tagging: { TagSet } })).catch(() => undefined);
    }
    this.committedAs(res.ETag, digests, false, checksum, decision);
  }

  /**
   * A multipart upload staged under another key (quarantine mode) goes where the scan decided: one
   * server-side CopyObject (with the digests as metadata, and the decision's tags), then the
   * staged object is deleted. The staging key is unique, so no other upload's object is touched.
   * With s3.checksumAlgorithm the copy asks S3 for that checksum of the copied bytes, which S3
   * computes and keeps (a whole-object one, where the staged upload had a composite); the copy
   * where asked takes the account's Object Lock (the staged upload had none). On a versioned
   * bucket (Object Lock needs one) the staged version itself is deleted, not hidden behind a
   * delete marker.
   */
  private async moveStaged(
    decision: ScanDecision,
    digests: StoredDigests | undefined,
    stagedVersion: string | undefined,
  ): Promise<{ etag?: string; checksum?: ObjectChecksum }> {
    const { bucket, key, objectParams } = this.options;
    const algorithm = this.checksumAlgorithm;
    try {
      const res = await this.options.client.send(
        withObjectLockContentMd5(new CopyObjectCommand({
          ...this.paramsAt(decision),
          Metadata: { ...objectParams?.Metadata, ...digestMetadata(digests ?? {}) },
          MetadataDirective: 'REPLACE',
          Tagging: mergeTagging(decision.tags, objectParams?.Tagging) ?? '',
          TaggingDirective: 'REPLACE',
          Bucket: decision.bucket,
          Key: decision.key,
          CopySource: encodeCopySource(bucket, key),
          ...(algorithm && { ChecksumAlgorithm: algorithm }),
        })),
      );
      const result = res.CopyObjectResult;
      const value = algorithm && result?.[checksumMember(algorithm)];
      return { etag: result?.ETag, ...(algorithm && value && { checksum: { algorithm, value, type: result?.ChecksumType ?? 'FULL_OBJECT' } }) };
    } finally {
      await this.options.client
        .send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: stagedVersion }))
        // Without s3:DeleteObjectVersion: at least out of sight (a lifecycle rule expires noncurrent versions).
        .catch(() => (stagedVersion ? this.options.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })) : undefined))
        .catch(() => undefined);
    }
  }

  /**
   * The object parameters of the object the scan decision commits: a quarantined file carries no
   * Object Lock (it is the operator's to inspect and delete, and the quarantine bucket need not
   * have Object Lock).
   */
  private paramsAt(decision: ScanDecision): ObjectParams | undefined {
    return decision.error ? withoutObjectLock(this.options.objectParams) : this.options.objectParams;
  }

  /** The store holds the object: that is the truth reported, even if an abort raced with the commit. */
  private committedAs(
    etag: string | undefined,
    digests: StoredDigests | undefined,
    digestsInMetadata: boolean,
    checksum: ObjectChecksum | undefined,
    decision?: ScanDecision,
  ): void {
    this.isCommitted = true;
    this.releaseCurrent();
    const { copySource } = this.options;
    const bucket = decision?.bucket ?? this.options.bucket;
    const key = decision?.key ?? this.options.key;
    const object: CommittedObject = {
      bucket,
      key,
      size: (copySource?.size ?? 0) + this.bytesWritten,
      etag,
      digests,
      digestsInMetadata,
      ...(checksum && { checksum }),
      ...(decision ? { scan: decision.report } : {}),
    };
    // Quarantined: the object is stored, and the upload fails (550).
    if (decision?.error) throw decision.error;
    this.resolveCommitted(object);
  }

  private send<T>(command: { input: unknown } & object): Promise<T> {
    return this.options.client.send(command as never, { abortSignal: this.abortController.signal }) as Promise<T>;
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.isCommitted) {
      this.fail(error instanceof StorageError ? error : new StorageError('ABORTED', 'Transfer aborted', { cause: error ?? undefined }));
    }
    callback(error);
  }

  private releaseCurrent(): void {
    if (this.current) this.budget.giveBack(this.current);
    this.current = undefined;
    this.fill = 0;
  }

  /**
   * First failure wins: stop the requests in flight, abort the multipart upload, then reject
   * `committed`. Returns the error that is in force.
   */
  private fail(error: StorageError): StorageError {
    if (this.failure || this.isCommitted) return this.failure ?? error;
    this.failure = error;
    this.abortController.abort();
    this.options.scanner?.abort();
    this.releaseCurrent();
    const uploadId = this.uploadId;
    void (async () => {
      if (uploadId) {
        try {
          const UploadId = await uploadId;
          await Promise.allSettled([...this.inFlight]);
          await this.options.client.send(new AbortMultipartUploadCommand({ Bucket: this.options.bucket, Key: this.options.key, UploadId }));
        } catch {
          // No upload id (nothing to abort), or the abort itself failed: the sweep and the bucket's
          // lifecycle rule for incomplete multipart uploads remove the parts.
        }
      }
      this.rejectCommitted(error);
      if (!this.destroyed) this.destroy(error);
    })();
    return error;
  }
}

function unsupported(cause?: unknown): StorageError {
  return new StorageError('APPEND_UNSUPPORTED', 'The storage cannot copy parts (UploadPartCopy); appending to this file is not possible', { cause });
}

/** `params` without Object Lock (for an object that must stay deletable). */
function withoutObjectLock(params: ObjectParams | undefined): ObjectParams | undefined {
  if (!params) return params;
  const { ObjectLockMode: _mode, ObjectLockRetainUntilDate: _until, ObjectLockLegalHoldStatus: _hold, ...rest } = params;
  return rest;
}

const base64ToHex = (b64: string): string => Buffer.from(b64, 'base64').toString('hex');

/**
 * What S3 reports as a composite checksum: the checksum of the parts' checksums (raw bytes, in part
 * order), "-<parts>"; for stores whose CompleteMultipartUpload answer leaves it out.
 */
async function compositeChecksum(algorithm: S3Checksum, parts: CompletedPart[]): Promise<string | undefined> {
  const hasher = createChecksum(algorithm);
  for (const part of parts) {
    const value = part[checksumMember(algorithm)];
    if (!value) return undefined;
    hasher.update(Buffer.from(value, 'base64'));
  }
  return `${await hasher.digest()}-${parts.length}`;
}
