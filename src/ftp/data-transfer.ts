import type { Socket } from 'node:net';
import { finished, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { freeBuffer } from '../storage/free-buffer.js';
import type { CommittedObject, UploadSink } from '../storage/object-store.js';
import { FtpError } from './errors.js';

/**
 * How long a data EOF waits for a control-connection close that raced it. A client process that
 * dies sends FIN on both connections at once; without this grace the truncated upload would be
 * committed before the control FIN is read.
 */
const EOF_GRACE_MS = 20;

const controlGone = (control: Socket): boolean => control.destroyed || control.readableEnded;

/**
 * Feeds the data connection into an upload sink. Stream mode marks the end of a file by closing
 * the data connection, so only a clean EOF (FIN) on a live control connection commits; a reset,
 * a close without EOF, or a control connection that is gone aborts the upload. Resolves once the
 * object is committed.
 */
export function receiveUpload(data: Readable, sink: UploadSink, control: Socket): Promise<CommittedObject> {
  return new Promise<CommittedObject>((resolve, reject) => {
    let settled = false;
    let sawEof = false;

    const cleanup = () => {
      control.off('close', onControlClose);
      control.off('end', onControlClose);
    };
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      cleanup();
      sink.destroy(err);
      data.destroy();
      // The sink settles `committed` after the abort request; report the FTP-side reason.
      sink.committed.then(
        () => reject(err),
        () => reject(err),
      );
    };
    const onControlClose = () =>
      fail(new FtpError('CONTROL_CONNECTION_LOST', 'Control connection closed during transfer'));

    // Before anything can fail: destroying the sink emits 'error', which must have a listener.
    sink.on('error', (err) => fail(err));
    control.once('close', onControlClose);
    control.once('end', onControlClose);
    if (controlGone(control)) return onControlClose();

    data.on('data', (chunk: Buffer) => {
      if (!sink.write(chunk, () => freeBuffer(chunk))) data.pause();
    });
    sink.on('drain', () => data.resume());
    data.once('end', () => {
      sawEof = true;
      void sleep(EOF_GRACE_MS).then(() => {
        if (settled) return;
        if (controlGone(control)) return onControlClose();
        sink.end();
      });
    });
    data.once('error', (err) => fail(new FtpError('DATA_CONNECTION_LOST', 'Data connection lost', { cause: err })));
    data.once('close', () => {
      if (!sawEof) fail(new FtpError('DATA_CONNECTION_LOST', 'Data connection closed before end of file'));
    });
    sink.once('finish', () => {
      if (settled) return;
      settled = true;
      cleanup();
      sink.committed.then(resolve, reject);
    });
    data.resume();
  });
}

/**
 * Sends a stream over the data connection and closes it; resolves once every byte has been handed
 * to the kernel. A control connection that goes away stops the transfer. The chunks of `source`
 * are the relay's to free once written (see freeBuffer).
 */
export function sendStream(source: Readable, data: Socket, control: Socket): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let bytes = 0;
    let settled = false;
    const settle = (err: Error | null | undefined) => {
      if (settled) return;
      settled = true;
      control.off('close', onControlClose);
      source.off('data', onData);
      data.off('drain', onDrain);
      if (!err) return resolve(bytes);
      source.destroy();
      data.destroy();
      reject(sendError(err));
    };
    const onControlClose = () => settle(new FtpError('CONTROL_CONNECTION_LOST', 'Control connection closed during transfer'));
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      if (!data.write(chunk, () => freeBuffer(chunk))) source.pause();
    };
    const onDrain = () => source.resume();
    control.once('close', onControlClose);
    data.on('drain', onDrain);
    source.on('data', onData);
    finished(source, { writable: false }, (err) => (err ? settle(err) : data.end()));
    finished(data, { readable: false }, (err) => settle(err));
  });
}

/** The reply-worthy error of a failed send: a broken data connection is DATA_CONNECTION_LOST. */
function sendError(err: Error): Error {
  if (err instanceof FtpError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE') {
    return new FtpError('DATA_CONNECTION_LOST', 'Data connection lost', { cause: err });
  }
  return err;
}

/** Writes lines (CRLF-terminated) to the data connection with back-pressure. */
export async function writeLines(data: Socket, lines: string[]): Promise<void> {
  if (!lines.length) return;
  const ok = data.write(lines.join('\r\n') + '\r\n', 'utf8');
  if (!ok) {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => {
        data.off('drain', onDrain);
        reject(new FtpError('DATA_CONNECTION_LOST', 'Data connection lost', { cause: err }));
      };
      const onDrain = () => {
        data.off('error', onError);
        data.off('close', onClose);
        resolve();
      };
      const onClose = () => onError(new Error('closed'));
      data.once('drain', onDrain);
      data.once('error', onError);
      data.once('close', onClose);
    });
  }
}

/** Ends the data connection and waits until all written data is flushed. */
export function closeData(data: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    if (data.destroyed) return reject(new FtpError('DATA_CONNECTION_LOST', 'Data connection lost'));
    data.once('error', (err) => reject(new FtpError('DATA_CONNECTION_LOST', 'Data connection lost', { cause: err })));
    data.end(() => resolve());
  });
}
