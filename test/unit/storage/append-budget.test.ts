import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { MemoryBudget } from '../../../src/storage/memory-budget.js';
import { S3UploadSink } from '../../../src/storage/s3-upload-sink.js';

/**
 * APPE's part buffers under the shared s3.memoryLimitMiB budget: a part's worth is acquired before
 * the first byte of each part is buffered and released once the part is uploaded or the upload
 * failed; no path leaks budget, and sessions sharing a one-part budget do not deadlock.
 */
const PART = 1000;

/** A budget that records every grant and release. */
class RecordingBudget extends MemoryBudget {
  readonly events: string[] = [];
  override async acquire(bytes: number): Promise<void> {
    this.events.push(`want ${bytes}`);
    await super.acquire(bytes);
    this.events.push(`got ${bytes}`);
  }
  override release(bytes: number): void {
    this.events.push(`release ${bytes}`);
    super.release(bytes);
  }
}

interface FakeS3 {
  client: S3Client;
  /** Bytes of every UploadPart body, in order sent, with the budget in use when it was sent. */
  parts: { bytes: number; inUse: number }[];
  /** Resolves the pending UploadPart requests (they wait when `holdParts` is set). */
  releaseParts(): void;
  aborted: boolean;
}

function fakeS3(budget: MemoryBudget, options: { holdParts?: boolean; failPart?: number } = {}): FakeS3 {
  const parts: FakeS3['parts'] = [];
  let waiting: (() => void)[] = [];
  let hold = options.holdParts ?? false;
  const fake: FakeS3 = {
    parts,
    aborted: false,
    releaseParts() {
      hold = false;
      for (const w of waiting) w();
      waiting = [];
    },
    client: {
      send: async (command: { constructor: { name: string }; input: { Body?: Buffer } }) => {
        switch (command.constructor.name) {
          case 'CreateMultipartUploadCommand':
            return { UploadId: 'u1' };
          case 'UploadPartCopyCommand':
            return { CopyPartResult: { ETag: '"copied"' } };
          case 'UploadPartCommand': {
            parts.push({ bytes: command.input.Body?.length ?? 0, inUse: budget.inUse });
            if (options.failPart === parts.length) throw Object.assign(new Error('boom'), { name: 'InternalError', $metadata: { httpStatusCode: 500 } });
            if (hold) await new Promise<void>((resolve) => waiting.push(resolve));
            return { ETag: `"p${parts.length}"` };
          }
          case 'CompleteMultipartUploadCommand':
            return { ETag: '"done-3"' };
          case 'AbortMultipartUploadCommand':
            fake.aborted = true;
            return {};
          default:
            throw new Error(`unexpected ${command.constructor.name}`);
        }
      },
    } as unknown as S3Client,
  };
  return fake;
}

function append(s3: FakeS3, budget: MemoryBudget, queueSize = 2): S3UploadSink {
  return new S3UploadSink({ client: s3.client, bucket: 'b', key: 'k', copySource: { size: 10, etag: '"src"' }, partSize: PART, queueSize, budget });
}

const write = (sink: S3UploadSink, bytes: number) =>
  new Promise<void>((resolve, reject) => sink.write(Buffer.alloc(bytes, 1), (err) => (err ? reject(err) : resolve())));
const end = (sink: S3UploadSink) => new Promise<void>((resolve, reject) => sink.end((err?: Error | null) => (err ? reject(err) : resolve())));
const tick = () => new Promise((r) => setImmediate(r));

describe('S3UploadSink appending (copySource) under the shared memory budget', () => {
  it('acquires a part before buffering it and releases it once uploaded; nothing is held after the commit', async () => {
    const budget = new RecordingBudget(10 * PART);
    const s3 = fakeS3(budget);
    const sink = append(s3, budget);
    await sink.ready;
    expect(budget.inUse).toBe(0); // the server-side copy of the old object buffers nothing
    await write(sink, 10);
    expect(budget.inUse).toBe(PART); // the first byte of a part: its budget is held
    for (let i = 0; i < 34; i++) await write(sink, 100); // 3.41 parts in all
    await end(sink);
    const object = await sink.committed;
    expect(object.size).toBe(10 + 3410);
    expect(s3.parts.map((p) => p.bytes)).toEqual([PART, PART, PART, 410]);
    // Each part was covered by budget when it was sent.
    for (const p of s3.parts) expect(p.inUse).toBeGreaterThanOrEqual(PART);
    expect(budget.events.filter((e) => e.startsWith('got')).length).toBe(4);
    expect(budget.inUse).toBe(0);
    expect(budget.peak).toBeLessThanOrEqual(3 * PART); // queueSize parts in flight + the one being filled
  });

  it('a chunk spanning several parts cuts each part before asking for the next one', async () => {
    const budget = new RecordingBudget(10 * PART);
    const s3 = fakeS3(budget);
    const sink = append(s3, budget, 4);
    await sink.ready;
    await write(sink, 2500);
    await end(sink);
    await sink.committed;
    expect(s3.parts.map((p) => p.bytes)).toEqual([PART, PART, 500]);
    expect(budget.inUse).toBe(0);
  });

  it('waits (back-pressure) while the budget is taken by others, and goes on when it is released', async () => {
    const budget = new RecordingBudget(2 * PART);
    await budget.acquire(2 * PART); // other sessions hold it all
    const s3 = fakeS3(budget);
    const sink = append(s3, budget);
    await sink.ready;
    let written = false;
    const first = write(sink, 100).then(() => (written = true));
    await tick();
    await tick();
    expect(written).toBe(false);
    expect(budget.waiting).toBe(1);
    budget.release(2 * PART);
    await first;
    expect(budget.inUse).toBe(PART);
    await write(sink, 1500);
    await end(sink);
    await sink.committed;
    expect(budget.inUse).toBe(0);
  });

  it('two appends sharing a budget of one part both complete (no deadlock)', async () => {
    const budget = new RecordingBudget(PART);
    const a = fakeS3(budget);
    const b = fakeS3(budget);
    const sinkA = append(a, budget);
    const sinkB = append(b, budget);
    await Promise.all([sinkA.ready, sinkB.ready]);
    const feed = async (sink: S3UploadSink) => {
      for (let i = 0; i < 25; i++) await write(sink, 230);
      await end(sink);
      return sink.committed;
    };
    const [ra, rb] = await Promise.all([feed(sinkA), feed(sinkB)]);
    expect(ra.size).toBe(10 + 5750);
    expect(rb.size).toBe(10 + 5750);
    expect(budget.peak).toBeLessThanOrEqual(PART);
    expect(budget.inUse).toBe(0);
  });

  it('a failed part aborts the upload and gives back every byte of budget, in flight or buffered', async () => {
    const budget = new RecordingBudget(10 * PART);
    const s3 = fakeS3(budget, { failPart: 2 });
    const sink = append(s3, budget, 3);
    await sink.ready;
    const writes = (async () => {
      for (let i = 0; i < 40; i++) await write(sink, 100);
      await end(sink);
    })();
    await expect(writes).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(sink.committed).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await tick();
    expect(s3.aborted).toBe(true);
    expect(budget.inUse).toBe(0);
  });

  it('an upload destroyed while it waits for budget releases the grant it gets later', async () => {
    const budget = new RecordingBudget(PART);
    await budget.acquire(PART);
    const s3 = fakeS3(budget);
    const sink = append(s3, budget);
    await sink.ready;
    const pending = write(sink, 10).catch((err: unknown) => err);
    await tick();
    expect(budget.waiting).toBe(1);
    sink.destroy(new Error('client gone'));
    await expect(sink.committed).rejects.toMatchObject({ code: 'ABORTED' });
    budget.release(PART); // the grant goes to the destroyed upload, which gives it back at once
    await pending;
    await tick();
    expect(budget.inUse).toBe(0);
    expect(budget.waiting).toBe(0);
  });

  it('parts held up by a slow store keep their budget until they are uploaded, and no more than queueSize are held', async () => {
    const budget = new RecordingBudget(10 * PART);
    const s3 = fakeS3(budget, { holdParts: true });
    const sink = append(s3, budget, 2);
    await sink.ready;
    // A full part is sent when the next byte arrives (or at the end).
    await write(sink, PART); // part 1 full
    await write(sink, PART); // part 1 in flight, part 2 full
    let third = false;
    // Part 2 goes in flight; the upload then holds queueSize (2) parts: no third buffer until a slot frees.
    const w = write(sink, PART).then(() => (third = true));
    await tick();
    await tick();
    expect(third).toBe(false);
    expect(s3.parts).toHaveLength(2);
    expect(budget.inUse).toBe(2 * PART);
    s3.releaseParts();
    await w;
    await end(sink);
    await sink.committed;
    expect(budget.inUse).toBe(0);
  });
});
