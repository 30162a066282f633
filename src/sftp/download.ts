import type { Readable } from 'node:stream';
import { freeBuffer } from '../storage/free-buffer.js';

/** How much a sequential reader keeps fetched ahead of the client's READs. */
export const READ_AHEAD_BYTES = 1024 * 1024;

/**
 * Serves READs of one open file from one ranged GET streaming from `start`: the common
 * sequential case (READs at increasing offsets, each where the previous ended) takes bytes off the
 * stream, which keeps up to READ_AHEAD_BYTES fetched ahead (back-pressure beyond). The caller
 * opens a new reader for a READ anywhere else.
 */
export class SequentialReader {
  private readonly chunks: Buffer[] = [];
  /** Bytes of chunks[0] already taken. */
  private headOffset = 0;
  /** Chunks taken completely by the last take(), freed by release(). */
  private spent: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly source: Readable,
    /** The file offset of the stream's first byte. */
    public position: number,
  ) {
    source.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered >= READ_AHEAD_BYTES) source.pause();
      this.notify();
    });
    source.once('end', () => {
      this.ended = true;
      this.notify();
    });
    source.once('error', (err) => {
      this.error = err;
      this.notify();
    });
    source.once('close', () => {
      if (!this.ended) this.error ??= new Error('read stream closed');
      this.notify();
    });
  }

  /** Up to `length` bytes from `position` on; fewer only at the end of the file; undefined at its end. */
  async take(length: number): Promise<Buffer | undefined> {
    while (this.buffered < length && !this.ended && !this.error) {
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    if (this.buffered === 0 && this.error) throw this.error;
    if (this.buffered === 0) return undefined;
    const out: Buffer[] = [];
    let want = Math.min(length, this.buffered);
    while (want > 0) {
      const head = this.chunks[0] as Buffer;
      const n = Math.min(want, head.length - this.headOffset);
      out.push(head.subarray(this.headOffset, this.headOffset + n));
      this.headOffset += n;
      want -= n;
      if (this.headOffset === head.length) {
        this.spent.push(head);
        this.chunks.shift();
        this.headOffset = 0;
      }
    }
    const data = out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out);
    this.buffered -= data.length;
    this.position += data.length;
    if (this.buffered < READ_AHEAD_BYTES && this.source.isPaused() && !this.ended) this.source.resume();
    return data;
  }

  /**
   * Frees the chunks the last take() used up, and `taken` (what it returned) if that is a buffer of
   * its own: the caller has copied it out (ssh2 copies READ data into its packet). Chunks come from
   * the S3 response (the HTTP parser's copies), so nothing else reads them.
   */
  release(taken: Buffer): void {
    for (const chunk of this.spent) freeBuffer(chunk);
    this.spent = [];
    freeBuffer(taken);
  }

  close(): void {
    this.source.destroy();
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
