import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { receiveUpload, sendStream, writeLines } from '../../../src/ftp/data-transfer.js';
import { FtpError } from '../../../src/ftp/errors.js';
import { TransferControl } from '../../../src/ftp/transfer-control.js';
import type { CommittedObject, UploadSink } from '../../../src/storage/object-store.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A connected pair of loopback sockets: `local` is the bridge's end, `remote` the client's. */
async function socketPair(): Promise<{ local: Socket; remote: Socket; server: Server }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const remote = connect((server.address() as { port: number }).port, '127.0.0.1');
  const [local] = (await accepted) as [Socket];
  await once(remote, 'connect').catch(() => undefined);
  return { local, remote, server };
}

const open: Array<{ local: Socket; remote: Socket; server: Server }> = [];
afterEach(() => {
  for (const p of open.splice(0)) {
    p.local.destroy();
    p.remote.destroy();
    p.server.close();
  }
});
async function pair() {
  const p = await socketPair();
  open.push(p);
  return p;
}

function readAll(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  return once(socket, 'end').then(() => Buffer.concat(chunks));
}

describe('sendStream', () => {
  it('sends every byte, frees whole chunks once written, and leaves slices of a shared buffer alone', async () => {
    const data = await pair();
    const control = await pair();
    const whole = Array.from({ length: 40 }, () => randomBytes(64 * 1024));
    const shared = randomBytes(64 * 1024);
    const slices = [shared.subarray(0, 1000), shared.subarray(1000)];
    const expected = Buffer.concat([...whole, ...slices]);
    const received = readAll(data.remote);
    const bytes = await sendStream(Readable.from([...whole, ...slices]), data.local, control.local);
    const got = await received;
    expect(bytes).toBe(expected.length);
    expect(sha256(got)).toBe(sha256(expected));
    expect(whole.every((c) => c.buffer.detached && c.length === 0)).toBe(true);
    expect(shared.buffer.detached).toBe(false);
    expect(slices.map((s) => s.length)).toEqual([1000, 64 * 1024 - 1000]);
  });

  it('a data connection reset by the client rejects with DATA_CONNECTION_LOST and stops reading the source', async () => {
    const data = await pair();
    const control = await pair();
    let pulled = 0;
    const endless = new Readable({
      read() {
        pulled++;
        this.push(randomBytes(64 * 1024));
      },
    });
    data.remote.on('data', () => data.remote.resetAndDestroy());
    await expect(sendStream(endless, data.local, control.local)).rejects.toMatchObject({ code: 'DATA_CONNECTION_LOST' });
    expect(endless.destroyed).toBe(true);
    const after = pulled;
    await new Promise((r) => setTimeout(r, 50));
    expect(pulled).toBe(after);
  });

  it('the control connection closing stops the transfer with CONTROL_CONNECTION_LOST', async () => {
    const data = await pair();
    const control = await pair();
    data.remote.pause(); // the client does not read: the relay is held by back-pressure
    const endless = new Readable({
      read() {
        this.push(randomBytes(64 * 1024));
      },
    });
    const sent = sendStream(endless, data.local, control.local);
    setTimeout(() => control.remote.destroy(), 100);
    await expect(sent).rejects.toMatchObject({ code: 'CONTROL_CONNECTION_LOST' });
    expect(data.local.destroyed).toBe(true);
  });
});

/** A sink that keeps a copy of what it is given, as the S3 sink copies into part buffers. */
class CopyingSink extends Writable implements UploadSink {
  bytesWritten = 0;
  readonly seen: Buffer[] = [];
  /** The chunks that spanned their whole ArrayBuffer when they arrived. */
  readonly whole: Buffer[] = [];
  private readonly copies: Buffer[] = [];
  private resolveCommit!: (o: CommittedObject) => void;
  readonly committed = new Promise<CommittedObject>((resolve) => (this.resolveCommit = resolve));

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: () => void): void {
    this.seen.push(chunk);
    if (chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength) this.whole.push(chunk);
    this.bytesWritten += chunk.length;
    this.copies.push(Buffer.from(chunk));
    setImmediate(callback);
  }

  override _final(callback: () => void): void {
    const body = Buffer.concat(this.copies);
    this.resolveCommit({ bucket: 'b', key: 'k', size: body.length, etag: sha256(body) });
    callback();
  }
}

/** A sink whose commit waits to be released; destroying it aborts, as the S3 sink does. */
class HeldSink extends CopyingSink {
  aborted = false;
  release!: () => void;
  private readonly held = new Promise<void>((resolve) => (this.release = resolve));
  private rejectCommit!: (e: Error) => void;
  override readonly committed: Promise<CommittedObject> = new Promise((resolve, reject) => {
    this.rejectCommit = reject;
    void this.held.then(() => resolve({ bucket: 'b', key: 'k', size: this.bytesWritten }));
  });
  override _final(callback: () => void): void {
    void this.held.then(() => callback());
  }
  override _destroy(error: Error | null, callback: (e?: Error | null) => void): void {
    this.aborted = true;
    this.rejectCommit(error ?? new Error('aborted'));
    callback(error);
  }
}

describe('receiveUpload', () => {
  it('commits every byte and frees each socket chunk once the sink has taken it', async () => {
    const data = await pair();
    const control = await pair();
    const body = randomBytes(3 * 1024 * 1024 + 17);
    const sink = new CopyingSink();
    const result = receiveUpload(data.local, sink, control.local);
    data.remote.end(body);
    const object = await result;
    expect(object.size).toBe(body.length);
    expect(object.etag).toBe(sha256(body));
    expect(sink.seen.length).toBeGreaterThan(1);
    // A socket read comes in an ArrayBuffer of its own: every one it spans was freed after the
    // sink's callback (a read a little short of 64 KiB may keep its larger buffer, and is left alone).
    expect(sink.whole.length).toBeGreaterThan(sink.seen.length / 2);
    expect(sink.whole.every((c) => c.length === 0)).toBe(true);
  });
});

describe('aborting a transfer (ABOR, QUIT, data idle timeout)', () => {
  it('an upload aborted after a clean EOF, before its commit, is aborted with the reason given', async () => {
    const data = await pair();
    const control = await pair();
    const sink = new HeldSink();
    const transfer = new TransferControl(0);
    const result = receiveUpload(data.local, sink, control.local, transfer);
    data.remote.end(randomBytes(1000));
    await expect.poll(() => sink.writableEnded, { timeout: 5000 }).toBe(true);
    transfer.abort(new FtpError('TRANSFER_ABORTED', 'Transfer aborted'));
    await expect(result).rejects.toMatchObject({ code: 'TRANSFER_ABORTED' });
    expect(sink.aborted).toBe(true);
    expect(transfer.bytes).toBe(1000);
  });

  it('a download aborted while the client reads nothing destroys the data connection', async () => {
    const data = await pair();
    const control = await pair();
    data.remote.pause();
    const endless = new Readable({
      read() {
        this.push(randomBytes(64 * 1024));
      },
    });
    const transfer = new TransferControl(0);
    const sent = sendStream(endless, data.local, control.local, transfer);
    setTimeout(() => transfer.abort(new FtpError('TRANSFER_ABORTED', 'Transfer aborted')), 100);
    await expect(sent).rejects.toMatchObject({ code: 'TRANSFER_ABORTED' });
    expect(data.local.destroyed).toBe(true);
    expect(endless.destroyed).toBe(true);
  });

  it('a listing write waiting for the client is ended by an abort', async () => {
    const data = await pair();
    data.remote.pause();
    const transfer = new TransferControl(0);
    const lines = Array.from({ length: 2000 }, (_, i) => `line ${i} ${'x'.repeat(2000)}`);
    const writing = (async () => {
      for (;;) await writeLines(data.local, lines, transfer);
    })();
    setTimeout(() => transfer.abort(new FtpError('TRANSFER_ABORTED', 'Transfer aborted')), 100);
    await expect(writing).rejects.toMatchObject({ code: 'TRANSFER_ABORTED' });
    expect(data.local.destroyed).toBe(true);
  });
});
