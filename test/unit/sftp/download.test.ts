import { randomFillSync } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { SequentialReader } from '../../../src/sftp/download.js';

/** Chunks of their own memory (as the S3 response's are), and the stream that delivers them. */
function source(sizes: number[]): { chunks: Buffer[]; all: Buffer; stream: Readable } {
  const chunks = sizes.map((n) => randomFillSync(Buffer.alloc(n))); // Buffer.alloc: never from the shared pool
  for (const c of chunks) expect(c.byteLength).toBe(c.buffer.byteLength);
  return { chunks, all: Buffer.concat(chunks), stream: Readable.from(chunks, { objectMode: false }) };
}

describe('SequentialReader', () => {
  it('serves READs across chunk boundaries byte-exact; release() frees only the chunks used up, after the caller copied them', async () => {
    const { chunks, all, stream } = source([65_536, 65_536, 10_000, 65_536]);
    const reader = new SequentialReader(stream, 0);
    const copies: Buffer[] = [];
    let freedBefore = 0;
    for (;;) {
      const data = await reader.take(32_768);
      if (!data) break;
      copies.push(Buffer.from(data)); // what ssh2 does with READ data: copies it into its packet
      // Until release(), nothing taken is freed (the caller still has to copy it).
      expect(data.length).toBeGreaterThan(0);
      expect(chunks.filter((c) => c.buffer.byteLength === 0).length).toBe(freedBefore);
      reader.release(data);
      freedBefore = chunks.filter((c) => c.buffer.byteLength === 0).length;
    }
    expect(Buffer.concat(copies).equals(all)).toBe(true);
    expect(reader.position).toBe(all.length);
    // Every chunk was used up and freed.
    expect(chunks.map((c) => c.buffer.byteLength)).toEqual([0, 0, 0, 0]);
  });

  it('a chunk only partly taken is not freed', async () => {
    const { chunks, all, stream } = source([65_536, 65_536]);
    const reader = new SequentialReader(stream, 0);
    const first = await reader.take(40_000);
    expect(first?.equals(all.subarray(0, 40_000))).toBe(true);
    reader.release(first as Buffer);
    expect(chunks[0]?.buffer.byteLength).toBe(65_536);
    const second = await reader.take(40_000);
    // Spans both chunks: a copy of its own, and the first chunk is used up.
    expect(second?.equals(all.subarray(40_000, 80_000))).toBe(true);
    reader.release(second as Buffer);
    expect(chunks[0]?.buffer.byteLength).toBe(0);
    expect(chunks[1]?.buffer.byteLength).toBe(65_536);
    const rest = await reader.take(65_536);
    expect(rest?.equals(all.subarray(80_000))).toBe(true);
    reader.close();
  });
});
