import { createServer, type Server } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClamdError, ClamdStream, parseVerdict } from '../../../src/storage/clamd.js';
import { EICAR, EICAR_SIGNATURE, PATTERN_SIGNATURE, TEST_PATTERN, startClamd, type TestClamd } from '../../support/clamd.js';

/** Scans `data` in chunks of `chunkBytes`, as an upload would. */
async function scan(socket: string, data: Buffer, chunkBytes = 64 * 1024, timeoutMs = 30_000) {
  const stream = new ClamdStream({ socket }, timeoutMs);
  for (let i = 0; i < data.length; i += chunkBytes) await stream.write(data.subarray(i, i + chunkBytes));
  return stream.end();
}

describe('clamd INSTREAM client (real clamd)', () => {
  let clamd: TestClamd;
  beforeAll(async () => {
    clamd = await startClamd({ streamMaxMiB: 64 });
  });
  afterAll(async () => {
    await clamd?.close();
  });

  it('answers clean for ordinary bytes, and for an empty stream', async () => {
    expect(await scan(clamd.socket, Buffer.from('hello, world\n'))).toEqual({ infected: false });
    expect(await scan(clamd.socket, Buffer.alloc(0))).toEqual({ infected: false });
  });

  it('finds EICAR, and the test pattern split across chunks deep in a 20 MiB stream', async () => {
    expect(await scan(clamd.socket, EICAR)).toEqual({ infected: true, signature: EICAR_SIGNATURE });
    const big = Buffer.alloc(20 * 1024 * 1024, 0x61);
    const chunk = 64 * 1024 - 5;
    // Ten bytes before the border of chunks 320 and 321: the pattern spans two chunks.
    TEST_PATTERN.copy(big, 320 * chunk - 10);
    expect(await scan(clamd.socket, big, chunk)).toEqual({ infected: true, signature: PATTERN_SIGNATURE });
  });

  it("fails with a clamd error when the stream exceeds clamd's StreamMaxLength", async () => {
    const err = await scan(clamd.socket, Buffer.alloc(65 * 1024 * 1024)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClamdError);
    expect((err as ClamdError).reason).toBe('clamd');
    expect((err as ClamdError).message).toMatch(/size limit/i);
  });

  it('fails with reason connect when nothing listens on the socket', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clamd-none-'));
    try {
      const err = await scan(join(dir, 'missing.sock'), Buffer.from('x')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ClamdError);
      expect((err as ClamdError).reason).toBe('connect');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('times out when the scanner accepts the connection but never answers', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clamd-mute-'));
    const socket = join(dir, 'mute.sock');
    // Reads everything, answers nothing: a hung clamd.
    const mute: Server = createServer((c) => c.resume());
    await new Promise<void>((resolve) => mute.listen(socket, resolve));
    try {
      const started = Date.now();
      const err = await scan(socket, Buffer.from('x'), 1024, 500).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ClamdError);
      expect((err as ClamdError).reason).toBe('timeout');
      expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    } finally {
      mute.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('parseVerdict', () => {
  it('reads OK, FOUND and ERROR replies', () => {
    expect(parseVerdict('stream: OK')).toEqual({ infected: false });
    expect(parseVerdict('stream: Win.Test.EICAR_HDB-1 FOUND')).toEqual({ infected: true, signature: 'Win.Test.EICAR_HDB-1' });
    expect(() => parseVerdict('INSTREAM size limit exceeded. ERROR')).toThrow(ClamdError);
    expect(() => parseVerdict('something else')).toThrow(/unexpected/);
  });
});
