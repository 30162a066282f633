import { createServer, type Server } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClamdError, ClamdStream, parseVerdict, pingClamd } from '../../src/storage/clamd.js';
import { EICAR, EICAR_SIGNATURE, PATTERN_SIGNATURE, TEST_PATTERN, startClamd, type TestClamd } from '../support/clamd.js';

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

describe('the wait for the verdict grows with the bytes scanned (clamd scans after the last byte)', () => {
  const MiB = 1024 * 1024;
  let dir: string;
  let socket: string;
  let slow: Server;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clamd-slow-'));
    socket = join(dir, 'slow.sock');
    // Reads the stream up to its zero-length end, then answers OK one second later: a clamd scanning a large file.
    slow = createServer((c) => {
      let pending = Buffer.alloc(0);
      let need = -1;
      c.on('data', (d: Buffer) => {
        pending = Buffer.concat([pending, d]);
        if (need < 0) {
          const start = pending.indexOf(0);
          if (start < 0) return;
          pending = pending.subarray(start + 1);
          need = 0;
        }
        for (;;) {
          if (need === 0) {
            if (pending.length < 4) return;
            const length = pending.readUInt32BE(0);
            pending = pending.subarray(4);
            if (length === 0) {
              setTimeout(() => c.end('stream: OK\0'), 1000);
              return;
            }
            need = length;
          }
          const take = Math.min(need, pending.length);
          pending = pending.subarray(take);
          need -= take;
          if (need > 0 || pending.length === 0) return;
        }
      });
    });
    await new Promise<void>((resolve) => slow.listen(socket, resolve));
  });
  afterAll(async () => {
    slow?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function scanSlow(verdictMsPerGiB: number) {
    const stream = new ClamdStream({ socket }, 300, verdictMsPerGiB);
    const data = Buffer.alloc(16 * MiB, 0x61);
    for (let i = 0; i < data.length; i += MiB) await stream.write(data.subarray(i, i + MiB));
    return { bound: stream.verdictTimeoutMs(), verdict: await stream.end().catch((e: unknown) => e) };
  }

  it('16 MiB at 192 s per GiB: 300 ms + 3 s, so a verdict one second after the last byte arrives', async () => {
    const { bound, verdict } = await scanSlow(192_000);
    expect(bound).toBe(3300);
    expect(verdict).toEqual({ infected: false });
  });

  it('without the allowance the same verdict is a time-out after 300 ms', async () => {
    const { bound, verdict } = await scanSlow(0);
    expect(bound).toBe(300);
    expect(verdict).toBeInstanceOf(ClamdError);
    expect((verdict as ClamdError).reason).toBe('timeout');
  });
});

describe('pingClamd', () => {
  it('resolves on a real clamd, fails with connect where nothing listens and with timeout on a mute one', async () => {
    const clamd = await startClamd();
    const dir = await mkdtemp(join(tmpdir(), 'clamd-ping-'));
    const mute: Server = createServer((c) => c.resume());
    try {
      await expect(pingClamd({ socket: clamd.socket }, 5000)).resolves.toBeUndefined();
      await expect(pingClamd({ socket: join(dir, 'missing.sock') }, 5000)).rejects.toMatchObject({ reason: 'connect' });
      await new Promise<void>((resolve) => mute.listen(join(dir, 'mute.sock'), resolve));
      await expect(pingClamd({ socket: join(dir, 'mute.sock') }, 300)).rejects.toMatchObject({ reason: 'timeout' });
    } finally {
      mute.close();
      await clamd.close();
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
