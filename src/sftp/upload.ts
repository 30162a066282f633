import { PassThrough, type Readable, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { freeMemoryOf } from '../storage/free-buffer.js';
import type { CommittedObject, UploadSink } from '../storage/object-store.js';
import { StorageError } from '../storage/errors.js';
import { SftpError } from './status.js';

/**
 * Memory for writes held out of order: buffers from the shared memory budget, taken only when
 * they can be had at once (a write never waits for memory the upload's own parts may hold).
 */
export interface ReorderMemory {
  tryTake(bytes: number): Buffer | undefined;
  /** Returns a buffer's bytes to the budget (the buffer itself may still be in a stream). */
  discard(buffer: Buffer): void;
}

export interface OrderedUploadOptions {
  sink: UploadSink;
  /** Wraps the ordered byte stream before it reaches the sink (bandwidth, quota); identity when absent. */
  wrap?: (data: Readable) => Readable;
  /** The file offset of the first byte the sink receives (the current size when resuming). */
  startOffset: number;
  /** How far beyond the next expected offset a write may end and still wait for the gap before it. */
  windowBytes: number;
  memory?: ReorderMemory;
}

/**
 * The SFTP form of STOR's data stream: WRITE requests carry their offset, and a client with
 * several in flight may have them answered, or even sent, out of order. Writes are passed on to
 * the upload sink in offset order; one that arrives early waits (within `windowBytes` of the next
 * expected offset, its bytes taken from the memory budget at once or the upload fails) for the gap before it. A write that
 * goes backwards, overlaps, or would wait beyond the window fails with UNSUPPORTED and aborts the
 * upload: S3 objects are written once, front to back.
 */
export class OrderedUpload {
  private next: number;
  private readonly early = new Map<number, Buffer>();
  /**
   * Where the ordered bytes go: the sink itself when nothing (bandwidth, quota) wraps the stream,
   * else the stream the wrap reads. Only a write to the sink itself calls back once its bytes are
   * copied out (into a part buffer): a stream in between calls back as soon as it queued them.
   */
  private readonly input: Writable;
  private readonly direct: boolean;
  /** Owned WRITE data on its way through the wrap: freed if it reaches the sink as it went in. */
  private readonly owned = new WeakSet<Buffer>();
  private failure: Error | undefined;
  /** Settles when the sink committed (or failed); never rejects unhandled. */
  private readonly done: Promise<CommittedObject>;

  constructor(private readonly options: OrderedUploadOptions) {
    this.next = options.startOffset;
    const { sink, wrap } = options;
    const stream = new PassThrough({ highWaterMark: 256 * 1024 });
    const source = wrap ? wrap(stream) : stream;
    this.direct = source === stream;
    this.input = this.direct ? sink : stream;
    this.done = (this.direct ? finished(sink) : this.relay(source, sink)).then(() => sink.committed);
    this.done.catch((err: unknown) => this.fail(err instanceof Error ? err : new Error(String(err))));
  }

  /** Bytes passed on to the sink so far, counted from `startOffset`. */
  get bytesAccepted(): number {
    return this.next - this.options.startOffset;
  }

  /** The upload failed (and was aborted); nothing was committed. */
  get failed(): Error | undefined {
    return this.failure;
  }

  /**
   * One WRITE: resolves once its bytes are passed on (or held within the window) and the stream
   * towards the sink has room again; rejects when the write is refused or the upload failed.
   * `owned`: all the memory `data` is a view of is this upload's, to free once the bytes are copied
   * out (ssh2 says so of a WRITE it put together from several SSH packets); `data` reads as empty then.
   */
  async write(offset: number, data: Buffer, owned = false): Promise<void> {
    this.throwIfFailed();
    if (data.length === 0) return;
    if (offset < this.next || this.overlapsEarly(offset, data.length)) {
      throw this.refuse(`write at ${offset} goes backwards or overlaps (next expected offset ${this.next}); only sequential writes are supported`);
    }
    if (offset > this.next) {
      if (offset + data.length - this.next > this.options.windowBytes) {
        throw this.refuse(`write at ${offset} leaves a gap at ${this.next} beyond the reorder window of ${this.options.windowBytes} bytes`);
      }
      // Copied: the request buffer is a slice of the packet buffer.
      const copy = this.options.memory ? this.options.memory.tryTake(data.length) : Buffer.allocUnsafe(data.length);
      if (!copy) {
        const err = new StorageError('UNAVAILABLE', 'No memory for an out-of-order write; try again');
        this.fail(err);
        throw err;
      }
      data.copy(copy);
      if (owned) freeMemoryOf(data);
      this.early.set(offset, copy);
      return;
    }
    let room = this.push(data, owned);
    for (let chunk = this.early.get(this.next); chunk; chunk = this.early.get(this.next)) {
      this.early.delete(this.next);
      room = this.push(chunk);
      this.options.memory?.discard(chunk);
    }
    if (!room) await this.roomOrFailure();
    this.throwIfFailed();
  }

  /**
   * CLOSE: the stream ends and this resolves with the committed object once the sink has it in S3.
   * A gap still open (writes held early) fails the upload.
   */
  async finish(): Promise<CommittedObject> {
    this.throwIfFailed();
    if (this.early.size > 0) throw this.refuse(`the upload ends with a gap at offset ${this.next}`);
    this.input.end();
    try {
      return await this.done;
    } catch (err) {
      // The failure is reported once the sink has aborted: no open multipart upload behind it.
      await this.sinkSettled();
      throw this.failure ?? err;
    }
  }

  /**
   * Aborts the upload (client gone, channel closed, shutdown): the sink aborts, nothing becomes
   * visible. Resolves once the sink has finished aborting its multipart upload.
   */
  abort(err: Error): Promise<void> {
    this.fail(err);
    return this.sinkSettled();
  }

  private sinkSettled(): Promise<void> {
    return this.options.sink.committed.then(
      () => undefined,
      () => undefined,
    );
  }

  /** Passes bytes on; `owned` ones are freed once the sink has copied them out (or failed). */
  private push(chunk: Buffer, owned = false): boolean {
    this.next += chunk.length;
    if (!owned) return this.input.write(chunk);
    if (!this.direct) {
      this.owned.add(chunk);
      return this.input.write(chunk);
    }
    return this.input.write(chunk, () => freeMemoryOf(chunk));
  }

  /**
   * pipeline(source, sink), except that owned WRITE data that comes out of the wrap as it went in
   * (the quota's count passes chunks on unchanged; every upload has one) is freed once the sink has
   * copied it, as FTP's relay frees its socket reads: left to the collector, every WRITE packet of
   * an upload would stay in RSS until V8's next full collection. A chunk the wrap cut (bandwidth
   * pacing) is another Buffer and is left to the collector.
   */
  private relay(source: Readable, sink: UploadSink): Promise<void> {
    source.on('data', (chunk: Buffer) => {
      const written = this.owned.has(chunk) ? sink.write(chunk, () => freeMemoryOf(chunk)) : sink.write(chunk);
      if (!written) source.pause();
    });
    sink.on('drain', () => source.resume());
    source.once('end', () => sink.end());
    const sourceDone = finished(source).catch((err: unknown) => {
      sink.destroy(err as Error);
      throw err;
    });
    const sinkDone = finished(sink).catch((err: unknown) => {
      source.destroy(err as Error);
      throw err;
    });
    sourceDone.catch(() => undefined);
    sinkDone.catch(() => undefined);
    return Promise.all([sourceDone, sinkDone]).then(() => undefined);
  }

  /** Waits until the stream towards the sink drains, or the upload ends or fails. */
  private async roomOrFailure(): Promise<void> {
    const input = this.input;
    let done = () => {};
    await new Promise<void>((resolve) => {
      done = resolve;
      input.once('drain', resolve);
      input.once('close', resolve);
      void this.done.then(() => resolve(), () => resolve());
    }).finally(() => {
      input.off('drain', done);
      input.off('close', done);
    });
  }

  private overlapsEarly(offset: number, length: number): boolean {
    for (const [at, chunk] of this.early) {
      if (offset < at + chunk.length && at < offset + length) return true;
    }
    return false;
  }

  private refuse(message: string): SftpError {
    const err = new SftpError('UNSUPPORTED', message);
    this.fail(err);
    return err;
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (const chunk of this.early.values()) this.options.memory?.discard(chunk);
    this.early.clear();
    this.input.destroy(err);
    this.options.sink.destroy(err);
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }
}
