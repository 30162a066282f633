import { PassThrough, Transform, Writable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { StorageError } from '../../../src/storage/errors.js';
import type { CommittedObject, UploadSink } from '../../../src/storage/object-store.js';
import { SftpError } from '../../../src/sftp/status.js';
import { OrderedUpload, type ReorderMemory } from '../../../src/sftp/upload.js';

/** An in-memory upload sink: copies out what it is given (as S3UploadSink does), commits it on end, aborts on destroy. */
function fakeSink(): UploadSink & { received: Buffer[]; aborted: () => boolean } {
  const received: Buffer[] = [];
  let resolveCommit!: (o: CommittedObject) => void;
  let rejectCommit!: (e: unknown) => void;
  const committed = new Promise<CommittedObject>((res, rej) => {
    resolveCommit = res;
    rejectCommit = rej;
  });
  committed.catch(() => undefined);
  let aborted = false;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      received.push(Buffer.from(chunk));
      cb();
    },
    final(cb) {
      const size = received.reduce((n, b) => n + b.length, 0);
      resolveCommit({ bucket: 'b', key: 'k', size });
      cb();
    },
    destroy(err, cb) {
      if (!sink.writableFinished) {
        aborted = true;
        rejectCommit(err ?? new StorageError('ABORTED', 'aborted'));
      }
      cb(err);
    },
  });
  return Object.assign(sink, {
    received,
    aborted: () => aborted,
    committed,
    get bytesWritten() {
      return received.reduce((n, b) => n + b.length, 0);
    },
  }) as unknown as UploadSink & { received: Buffer[]; aborted: () => boolean };
}

/** A budget that counts what is held and can be told to have nothing left. */
function countingMemory(limit = Infinity): ReorderMemory & { held: number } {
  const memory = {
    held: 0,
    tryTake(bytes: number) {
      if (memory.held + bytes > limit) return undefined;
      memory.held += bytes;
      return Buffer.alloc(bytes);
    },
    discard(buffer: Buffer) {
      memory.held -= buffer.length;
    },
  };
  return memory;
}

const bytes = (n: number, fill: number) => Buffer.alloc(n, fill);

describe('OrderedUpload', () => {
  it('passes in-order and early writes on in offset order; early ones hold budget until passed on', async () => {
    const sink = fakeSink();
    const memory = countingMemory();
    const upload = new OrderedUpload({ sink, startOffset: 0, windowBytes: 100, memory });
    await upload.write(10, bytes(10, 2));
    await upload.write(30, bytes(5, 4));
    expect(memory.held).toBe(15);
    await upload.write(0, bytes(10, 1));
    await upload.write(20, bytes(10, 3));
    expect(memory.held).toBe(0);
    const object = await upload.finish();
    expect(object.size).toBe(35);
    expect(Buffer.concat(sink.received)).toEqual(Buffer.concat([bytes(10, 1), bytes(10, 2), bytes(10, 3), bytes(5, 4)]));
  });

  it('a backwards or overlapping write is refused with UNSUPPORTED and aborts the sink', async () => {
    for (const [offset, length] of [
      [0, 5],
      [12, 10],
    ] as const) {
      const sink = fakeSink();
      const memory = countingMemory();
      const upload = new OrderedUpload({ sink, startOffset: 0, windowBytes: 100, memory });
      await upload.write(0, bytes(10, 1));
      await upload.write(20, bytes(10, 3));
      await expect(upload.write(offset, bytes(length, 9))).rejects.toMatchObject({ code: 'UNSUPPORTED' });
      expect(sink.aborted()).toBe(true);
      expect(memory.held).toBe(0);
      await expect(upload.finish()).rejects.toBeInstanceOf(SftpError);
    }
  });

  it('a write ending beyond the window is refused; a gap left at CLOSE fails the upload', async () => {
    const beyond = new OrderedUpload({ sink: fakeSink(), startOffset: 0, windowBytes: 100 });
    await expect(beyond.write(95, bytes(10, 1))).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    const sink = fakeSink();
    const gap = new OrderedUpload({ sink, startOffset: 0, windowBytes: 100 });
    await gap.write(50, bytes(10, 1));
    await expect(gap.finish()).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    expect(sink.aborted()).toBe(true);
  });

  it('no budget for an early write: the upload fails (UNAVAILABLE) instead of waiting', async () => {
    const sink = fakeSink();
    const upload = new OrderedUpload({ sink, startOffset: 0, windowBytes: 100, memory: countingMemory(5) });
    await expect(upload.write(10, bytes(10, 1))).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(sink.aborted()).toBe(true);
  });

  it('frees an owned WRITE packet once the sink copied its data (held early: once copied into the window); its bytes arrive whole', async () => {
    const sink = fakeSink();
    const memory = countingMemory();
    const upload = new OrderedUpload({ sink, startOffset: 0, windowBytes: 100, memory });
    // As ssh2 hands them on: the data is the end of a packet that also holds the header and handle.
    const packet = (fill: number) => {
      const p = Buffer.alloc(40, 0xee);
      p.fill(fill, 20);
      return p;
    };
    const early = packet(2);
    await upload.write(20, early.subarray(20), true);
    expect(early.buffer.byteLength).toBe(0);
    const first = packet(1);
    await upload.write(0, first.subarray(20), true);
    await nextTurn();
    expect(first.buffer.byteLength).toBe(0);
    const notOwned = packet(3);
    await upload.write(40, notOwned.subarray(20));
    await nextTurn();
    expect(notOwned.buffer.byteLength).toBe(40);
    await upload.finish();
    expect(Buffer.concat(sink.received)).toEqual(Buffer.concat([bytes(20, 1), bytes(20, 2), bytes(20, 3)]));
    expect(memory.held).toBe(0);
  });

  it('frees an owned WRITE packet that reaches the sink through a wrap (the quota count) as it went in, once copied; leaves one the wrap cut to the collector', async () => {
    // Every upload has a wrap: the quota's count passes chunks on unchanged.
    const sink = fakeSink();
    const upload = new OrderedUpload({ sink, startOffset: 0, windowBytes: 100, wrap: (data) => data.pipe(new PassThrough()) });
    const packet = Buffer.alloc(40, 5);
    await upload.write(0, packet.subarray(20), true);
    await upload.finish();
    expect(packet.buffer.byteLength).toBe(0);
    expect(Buffer.concat(sink.received)).toEqual(bytes(20, 5));

    // Bandwidth pacing may cut a chunk: the pieces are other Buffers, still being read when the first is copied.
    const cutSink = fakeSink();
    const cut = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        this.push(chunk.subarray(0, 5));
        this.push(chunk.subarray(5));
        cb();
      },
    });
    const paced = new OrderedUpload({ sink: cutSink, startOffset: 0, windowBytes: 100, wrap: (data) => data.pipe(cut) });
    const cutPacket = Buffer.alloc(40, 6);
    await paced.write(0, cutPacket.subarray(20), true);
    await paced.finish();
    expect(cutPacket.buffer.byteLength).toBe(40);
    expect(Buffer.concat(cutSink.received)).toEqual(bytes(20, 6));
  });

  it('through a wrap, a failing sink fails the upload and its source, and a failing wrap aborts the sink', async () => {
    const sink = fakeSink();
    const upload = new OrderedUpload({ sink, startOffset: 0, windowBytes: 100, wrap: (data) => data.pipe(new PassThrough()) });
    await upload.write(0, bytes(4, 1));
    sink.destroy(new StorageError('UNAVAILABLE', 'S3 gone'));
    await expect(upload.finish()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(upload.write(4, bytes(4, 1))).rejects.toMatchObject({ code: 'UNAVAILABLE' });

    const sink2 = fakeSink();
    const guard = new PassThrough();
    const upload2 = new OrderedUpload({ sink: sink2, startOffset: 0, windowBytes: 100, wrap: (data) => data.pipe(guard) });
    await upload2.write(0, bytes(4, 1));
    guard.destroy(new StorageError('STORAGE_FULL', 'Quota exceeded'));
    await expect(upload2.finish()).rejects.toMatchObject({ code: 'STORAGE_FULL' });
    expect(sink2.aborted()).toBe(true);
  });

  it('a resume counts offsets from the start offset; abort() aborts the sink and fails later writes', async () => {
    const sink = fakeSink();
    const upload = new OrderedUpload({ sink, startOffset: 1000, windowBytes: 100 });
    await upload.write(1000, bytes(4, 1));
    expect(upload.bytesAccepted).toBe(4);
    upload.abort(new StorageError('ABORTED', 'gone'));
    expect(sink.aborted()).toBe(true);
    await expect(upload.write(1004, bytes(4, 1))).rejects.toMatchObject({ code: 'ABORTED' });
  });
});
