import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it, vi } from 'vitest';
import { MemoryBudget, type MemoryOwner } from '../../../src/storage/memory-budget.js';
import { MAX_PARTS } from '../../../src/storage/s3-request.js';
import { S3UploadSink, partSizeFor } from '../../../src/storage/s3-upload-sink.js';

const MiB = 1024 * 1024;

interface Call {
  name: string;
  input: Record<string, unknown>;
}

/** A fake S3 client (unit test): records commands, stores part bodies, can hold or fail UploadPart. */
class FakeS3 {
  readonly calls: Call[] = [];
  readonly bodies = new Map<number, Buffer>();
  holdParts = false;
  failPart: number | undefined;
  private held: (() => void)[] = [];

  get client(): S3Client {
    return { send: (command: { constructor: { name: string }; input: Record<string, unknown> }, options?: { abortSignal?: AbortSignal }) => this.send(command, options) } as unknown as S3Client;
  }

  names(): string[] {
    return this.calls.map((c) => c.name);
  }

  releaseParts(): void {
    const held = this.held;
    this.held = [];
    for (const go of held) go();
  }

  get heldCount(): number {
    return this.held.length;
  }

  private async send(command: { constructor: { name: string }; input: Record<string, unknown> }, options?: { abortSignal?: AbortSignal }): Promise<unknown> {
    const name = command.constructor.name.replace(/Command$/, '');
    const input = command.input;
    this.calls.push({ name, input });
    switch (name) {
      case 'CreateMultipartUpload':
        return { UploadId: 'u1' };
      case 'UploadPart': {
        const n = input.PartNumber as number;
        // Copy now: the sink may reuse the buffer once the request resolved.
        this.bodies.set(n, Buffer.from(input.Body as Buffer));
        if (this.holdParts) {
          await new Promise<void>((resolve, reject) => {
            this.held.push(resolve);
            options?.abortSignal?.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })));
          });
        }
        if (n === this.failPart) throw Object.assign(new Error('boom'), { name: 'InternalError', $metadata: { httpStatusCode: 500 } });
        return { ETag: `"p${n}"` };
      }
      case 'UploadPartCopy':
        return { CopyPartResult: { ETag: `"c${input.PartNumber as number}"` } };
      case 'PutObject':
        this.bodies.set(1, Buffer.from(input.Body as Buffer));
        return { ETag: '"single"' };
      case 'CompleteMultipartUpload':
        return { ETag: '"multi-2"' };
      case 'AbortMultipartUpload':
        return {};
      default:
        throw new Error(`unexpected ${name}`);
    }
  }
}

const data = (bytes: number, seed = 1): Buffer => {
  const out = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
};

function chunked(buffer: Buffer, size = 64 * 1024): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < buffer.length; i += size) chunks.push(buffer.subarray(i, i + size));
  return Readable.from(chunks);
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The part bodies a FakeS3 received, in part-number order (a PutObject body is part 1). */
const partsOf = (s3: FakeS3): Buffer[] => [...s3.bodies.entries()].sort(([a], [b]) => a - b).map(([, b]) => b);

/**
 * Starts `count` uploads at once through one budget, each to its own FakeS3 (5 MiB parts, queueSize
 * 2); upload `i` sends `size(i)` bytes in chunks of `chunkSize`. `done` settles when it is committed.
 */
function uploadsAtOnce(count: number, budget: MemoryBudget, size: (i: number) => number, options: { chunkSize?: number; memoryOwner?: MemoryOwner } = {}) {
  return Array.from({ length: count }, (_, i) => {
    const s3 = new FakeS3();
    const sink = new S3UploadSink({ client: s3.client, bucket: 'b', key: `k${i}`, partSize: 5 * MiB, queueSize: 2, budget, memoryOwner: options.memoryOwner });
    const bytes = data(size(i), i);
    return { s3, bytes, done: pipeline(chunked(bytes, options.chunkSize), sink).then(() => sink.committed) };
  });
}

describe('S3UploadSink', () => {
  it('sends one PutObject, with the digests as metadata, when the data fits one part', async () => {
    const s3 = new FakeS3();
    const budget = new MemoryBudget(64 * MiB);
    const sink = new S3UploadSink({ client: s3.client, bucket: 'b', key: 'k', partSize: 5 * MiB, queueSize: 2, budget, objectParams: { Metadata: { 'ftp-user': 'cam' } } });
    const bytes = data(5 * MiB); // exactly one part: still a single request
    await pipeline(chunked(bytes), sink);
    const committed = await sink.committed;
    expect(s3.names()).toEqual(['PutObject']);
    expect(s3.calls[0]?.input.Metadata).toEqual({ 'ftp-user': 'cam', sha256: sha256(bytes), md5: createHash('md5').update(bytes).digest('hex') });
    expect(sha256(s3.bodies.get(1) as Buffer)).toBe(sha256(bytes));
    expect(committed).toMatchObject({ size: bytes.length, etag: '"single"', digestsInMetadata: true });
    expect(budget.inUse).toBe(0);
  });

  it('holds an upload smaller than a part in small buffers, not a whole part of the budget', async () => {
    const s3 = new FakeS3();
    const budget = new MemoryBudget(64 * MiB);
    const sink = new S3UploadSink({ client: s3.client, bucket: 'b', key: 'k', partSize: 8 * MiB, queueSize: 4, budget });
    const bytes = data(300 * 1024);
    await pipeline(chunked(bytes), sink);
    await sink.committed;
    expect(s3.names()).toEqual(['PutObject']);
    expect(sha256(s3.bodies.get(1) as Buffer)).toBe(sha256(bytes));
    expect(budget.peak).toBeLessThanOrEqual(512 * 1024);
    expect(budget.inUse).toBe(0);
  });

  it('many small uploads at once: those beyond the small share take part buffers, all land, nothing is left held', async () => {
    const budget = new MemoryBudget(16 * MiB); // small share 2 MiB (4 small buffers); a part is 5 MiB
    const uploads = uploadsAtOnce(24, budget, (i) => 300 * 1024 + i * 40_000, { chunkSize: 16 * 1024 });
    await Promise.all(uploads.map((u) => u.done));
    for (const u of uploads) {
      expect(u.s3.names()).toEqual(['PutObject']);
      expect(sha256(u.s3.bodies.get(1) as Buffer)).toBe(sha256(u.bytes));
    }
    expect(budget.inUse).toBe(0);
    expect(budget.peak).toBeLessThanOrEqual(16 * MiB + 2 * MiB);
  });

  it('an upload that outgrows its small buffers while others wait at the cap still completes (no deadlock)', async () => {
    const budget = new MemoryBudget(16 * MiB);
    const uploads = uploadsAtOnce(8, budget, (i) => 12 * MiB + i);
    await Promise.all(uploads.map((u) => u.done));
    for (const u of uploads) expect(sha256(Buffer.concat(partsOf(u.s3)))).toBe(sha256(u.bytes));
    expect(budget.inUse).toBe(0);
  });

  it('uploads of one owner whose share is less than a part all complete, one part at a time (no deadlock)', async () => {
    const budget = new MemoryBudget(16 * MiB, { perClientPercent: 1 }); // 164 KiB: not even a small buffer
    const memoryOwner = { client: '192.0.2.1', account: 'cam' };
    const uploads = uploadsAtOnce(6, budget, (i) => 12 * MiB + i, { memoryOwner });
    await Promise.all(uploads.map((u) => u.done));
    for (const u of uploads) expect(sha256(Buffer.concat(partsOf(u.s3)))).toBe(sha256(u.bytes));
    expect(budget.peak).toBe(5 * MiB);
    expect(budget.inUse).toBe(0);
  });

  it("one owner's stalled uploads hold no more than its share: another owner's upload completes meanwhile", async () => {
    const budget = new MemoryBudget(16 * MiB, { perClientPercent: 25, perAccountPercent: 50 });
    const stalled = Array.from({ length: 40 }, (_, i) => {
      const sink = new S3UploadSink({ client: new FakeS3().client, bucket: 'b', key: `a${i}`, partSize: 5 * MiB, queueSize: 2, budget, memoryOwner: { client: '192.0.2.1', account: 'a' } });
      sink.write(data(600 * 1024, i)); // more than a small buffer holds, and never ended
      return sink;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(budget.waiting).toBe(39);
    expect(budget.inUse).toBeLessThanOrEqual(8 * MiB);
    const s3 = new FakeS3();
    const sink = new S3UploadSink({ client: s3.client, bucket: 'b', key: 'b', partSize: 5 * MiB, queueSize: 2, budget, memoryOwner: { client: '192.0.2.2', account: 'b' } });
    const bytes = data(2 * MiB, 99);
    await pipeline(chunked(bytes), sink);
    await sink.committed;
    expect(sha256(s3.bodies.get(1) as Buffer)).toBe(sha256(bytes));
    for (const upload of stalled) upload.destroy();
    await vi.waitFor(() => expect(budget.waiting).toBe(0));
    expect(budget.inUse).toBe(0);
  });

  it('streams larger data as a multipart upload, reusing part buffers, and reports the digests as not stored', async () => {
    const s3 = new FakeS3();
    const budget = new MemoryBudget(64 * MiB);
    const sink = new S3UploadSink({ client: s3.client, bucket: 'b', key: 'k', partSize: 5 * MiB, queueSize: 2, budget });
    const bytes = data(23 * MiB + 7);
    await pipeline(chunked(bytes, 100_000), sink);
    const committed = await sink.committed;
    expect(s3.names().filter((n) => n === 'UploadPart')).toHaveLength(5);
    expect(s3.names()[0]).toBe('CreateMultipartUpload');
    expect(s3.names().at(-1)).toBe('CompleteMultipartUpload');
    const parts = partsOf(s3);
    expect(parts.slice(0, 4).map((p) => p.length)).toEqual([5 * MiB, 5 * MiB, 5 * MiB, 5 * MiB]);
    expect(sha256(Buffer.concat(parts))).toBe(sha256(bytes));
    const complete = s3.calls.at(-1)?.input.MultipartUpload as { Parts: { PartNumber: number }[] };
    expect(complete.Parts.map((p) => p.PartNumber)).toEqual([1, 2, 3, 4, 5]);
    expect(committed).toMatchObject({ size: bytes.length, digestsInMetadata: false, digests: { 'SHA-256': sha256(bytes) } });
    expect(budget.inUse).toBe(0);
    // Two in flight plus one filling at most: recycled, not one fresh buffer per part.
    expect(budget.spare).toBeLessThanOrEqual(3 * 5 * MiB);
    expect(budget.peak).toBeLessThanOrEqual(3 * 5 * MiB);
  });

  it('back-pressures the writer while queueSize parts are in flight, holding no more than queueSize part buffers', async () => {
    const s3 = new FakeS3();
    s3.holdParts = true;
    const budget = new MemoryBudget(64 * MiB);
    const sink = new S3UploadSink({ client: s3.client, bucket: 'b', key: 'k', partSize: 5 * MiB, queueSize: 2, budget });
    const bytes = data(24 * MiB);
    let written = 0;
    const source = chunked(bytes);
    source.on('data', (c: Buffer) => (written += c.length));
    const done = pipeline(source, sink);
    await new Promise((r) => setTimeout(r, 100));
    // Parts 1 and 2 in flight; no third buffer is taken until a slot frees: memory per upload is
    // partSize x queueSize (plus the streams' small buffers).
    expect(s3.heldCount).toBe(2);
    expect(budget.peak).toBeLessThanOrEqual(2 * 5 * MiB);
    expect(written).toBeLessThan(11 * MiB);
    for (let i = 0; i < 20 && !sink.writableFinished; i++) {
      s3.releaseParts();
      await new Promise((r) => setTimeout(r, 20));
    }
    await done;
    expect((await sink.committed).size).toBe(bytes.length);
  });

  it('aborts the multipart upload when destroyed, and commits nothing', async () => {
    const s3 = new FakeS3();
    s3.holdParts = true;
    const budget = new MemoryBudget(64 * MiB);
    const sink = new S3UploadSink({ client: s3.client, bucket: 'b', key: 'k', partSize: 5 * MiB, queueSize: 2, budget });
    sink.write(data(6 * MiB));
    sink.write(data(1));
    await new Promise((r) => setTimeout(r, 50));
    sink.destroy(new Error('client gone'));
    await expect(sink.committed).rejects.toMatchObject({ code: 'ABORTED' });
    expect(s3.names()).toContain('AbortMultipartUpload');
    expect(s3.names()).not.toContain('CompleteMultipartUpload');
    expect(budget.inUse).toBe(0);
  });

  it('fails and aborts when a part fails, before any commit', async () => {
    const s3 = new FakeS3();
    s3.failPart = 2;
    const budget = new MemoryBudget(64 * MiB);
    const sink = new S3UploadSink({ client: s3.client, bucket: 'b', key: 'k', partSize: 5 * MiB, queueSize: 2, budget });
    await expect(pipeline(chunked(data(20 * MiB)), sink)).rejects.toBeTruthy();
    await expect(sink.committed).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(s3.names()).toContain('AbortMultipartUpload');
    expect(s3.names()).not.toContain('CompleteMultipartUpload');
    expect(budget.inUse).toBe(0);
  });

  it('with copySource and nothing appended, commits the copied parts alone (multipart) and reports the source size, no digests', async () => {
    const s3 = new FakeS3();
    const budget = new MemoryBudget(64 * MiB);
    const size = 6 * 1024 * MiB + 1; // over S3's 5 GiB part limit: two copied parts
    const sink = new S3UploadSink({ client: s3.client, bucket: 'b', key: 'dir/k', partSize: 5 * MiB, queueSize: 2, budget, copySource: { size, etag: '"src"' } });
    await sink.ready;
    await pipeline(Readable.from([]), sink);
    const committed = await sink.committed;
    expect(s3.names()).toEqual(['CreateMultipartUpload', 'UploadPartCopy', 'UploadPartCopy', 'CompleteMultipartUpload']);
    const copies = s3.calls.filter((c) => c.name === 'UploadPartCopy').map((c) => c.input);
    const half = Math.ceil(size / 2);
    expect(copies).toEqual([
      expect.objectContaining({ PartNumber: 1, CopySource: 'b/dir/k', CopySourceIfMatch: '"src"', CopySourceRange: `bytes=0-${half - 1}` }),
      expect.objectContaining({ PartNumber: 2, CopySource: 'b/dir/k', CopySourceIfMatch: '"src"', CopySourceRange: `bytes=${half}-${size - 1}` }),
    ]);
    expect(s3.calls.at(-1)?.input.MultipartUpload).toEqual({ Parts: [{ PartNumber: 1, ETag: '"c1"' }, { PartNumber: 2, ETag: '"c2"' }] });
    expect(committed).toMatchObject({ size, etag: '"multi-2"' });
    expect(committed.digests).toBeUndefined();
    expect(budget.inUse).toBe(0);
  });

  it('grows the part size so a stream of unknown length fits 10,000 parts', () => {
    const base = 8 * MiB;
    expect(partSizeFor(1, base)).toBe(base);
    expect(partSizeFor(1000, base)).toBe(base);
    expect(partSizeFor(1001, base)).toBe(2 * base);
    let total = 0;
    for (let n = 1; n <= MAX_PARTS; n++) total += partSizeFor(n, base);
    expect(total).toBeGreaterThanOrEqual(5 * 1024 * 1024 * MiB); // S3's 5 TiB object limit
    for (let n = 1; n <= MAX_PARTS; n++) expect(partSizeFor(n, 5 * MiB)).toBeLessThanOrEqual(5 * 1024 * MiB);
  });
});
