import type { Socket } from 'node:net';
import { finished, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { freeBuffer } from '../storage/free-buffer.js';
import type { CommittedObject, UploadSink } from '../storage/object-store.js';
import { FtpError } from './errors.js';
import { dataChannelEstablished } from './tls.js';
import { whenAborted, type TransferControl } from './transfer-control.js';

/**
 * How long a data EOF waits for a control-connection close that raced it. A client process that
 * dies sends FIN on both connections at once; without this grace the truncated upload would be
 * committed before the control FIN is read.
 */
const EOF_GRACE_MS = 20;

const controlGone = (control: Socket): boolean => control.destroyed || control.readableEnded;

/**
 * Starts the idle clock of the transfer a data connection was opened for: it runs while bytes
 * written wait for the client (an upload sets its own rule in receiveUpload). The functions here
 * are given the transfer, report its bytes to it and stop when it is aborted.
 */
export function attachTransfer(data: Socket, transfer: TransferControl): void {
  transfer.watchIdle(() => data.writableLength > 0);
}

/**
 * Feeds the data connection into an upload sink. Stream mode marks the end of a file by closing
 * the data connection, so only a clean EOF (FIN) on a live control connection commits; a reset,
 * a close without EOF, a control connection that is gone, or an abort of `transfer` (ABOR, QUIT,
 * idle data connection; even after a clean EOF, until the commit) aborts the upload. Resolves once
 * the object is committed.
 */
export function receiveUpload(data: Readable, sink: UploadSink, control: Socket, transfer?: TransferControl): Promise<CommittedObject> {
  return new Promise<CommittedObject>((resolve, reject) => {
    let settled = false;
    let sawEof = false;
    /** Paused by the sink's back-pressure: the bridge, not the client, is behind. */
    let paused = false;

    const cleanup = () => {
      control.off('close', onControlClose);
      control.off('end', onControlClose);
      stopAbortWatch();
      transfer?.end();
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
    const stopAbortWatch = whenAborted(transfer?.signal, fail);
    if (controlGone(control)) return onControlClose();
    transfer?.watchIdle(() => !paused && !sawEof);

    data.on('data', (chunk: Buffer) => {
      transfer?.moved(chunk.length);
      if (!sink.write(chunk, () => freeBuffer(chunk))) {
        paused = true;
        data.pause();
      }
    });
    sink.on('drain', () => {
      paused = false;
      data.resume();
    });
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
 * to the kernel. A control connection that goes away, or an abort of `transfer`, stops the
 * transfer. The chunks of `source` are the relay's to free once written (see freeBuffer).
 */
export function sendStream(source: Readable, data: Socket, control: Socket, transfer?: TransferControl): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let bytes = 0;
    let settled = false;
    const settle = (err: Error | null | undefined) => {
      if (settled) return;
      settled = true;
      stopAbortWatch();
      transfer?.end();
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
      const ok = data.write(chunk, () => {
        transfer?.moved(chunk.length);
        freeBuffer(chunk);
      });
      if (!ok) source.pause();
    };
    const onDrain = () => source.resume();
    const stopAbortWatch = whenAborted(transfer?.signal, settle);
    control.once('close', onControlClose);
    data.on('drain', onDrain);
    source.on('data', onData);
    finished(source, { writable: false }, (err) => {
      if (err) return settle(err);
      dataChannelEstablished(data).then(
        () => data.end(),
        () => settle(new FtpError('DATA_CONNECTION_LOST', 'Data connection lost: no TLS handshake')),
      );
    });
    finished(data, { readable: false }, (err) => settle(err));
  });
}

/** The reply-worthy error of a failed send: a broken data connection is DATA_CONNECTION_LOST. */
function sendError(err: Error): Error {
  if (err instanceof FtpError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ERR_TLS_HANDSHAKE_TIMEOUT') {
    return new FtpError('DATA_CONNECTION_LOST', 'Data connection lost', { cause: err });
  }
  return err;
}

/**
 * Writes lines (CRLF-terminated) to the data connection with back-pressure; an abort of `transfer`
 * destroys the data connection and rejects with its reason.
 */
export async function writeLines(data: Socket, lines: string[], transfer?: TransferControl): Promise<void> {
  if (transfer?.signal.aborted) throw abortReason(data, transfer);
  if (!lines.length) return;
  const text = lines.join('\r\n') + '\r\n';
  const size = Buffer.byteLength(text);
  const ok = data.write(text, 'utf8', () => transfer?.moved(size));
  if (!ok) await untilFlushed(data, 'drain', transfer);
}

/** Ends the data connection and waits until all written data is flushed (or `transfer` is aborted). */
export async function closeData(data: Socket, transfer?: TransferControl): Promise<void> {
  if (data.destroyed) throw new FtpError('DATA_CONNECTION_LOST', 'Data connection lost');
  if (transfer?.signal.aborted) throw abortReason(data, transfer);
  // Written data waits in a TLS socket until its handshake; the end of the stream would not.
  await untilSecure(data, transfer);
  const flushed = untilFlushed(data, 'finish', transfer);
  data.end();
  await flushed;
}

/** Waits for the TLS handshake of a protected data connection (see dataChannelEstablished), or an abort of `transfer`. */
function untilSecure(data: Socket, transfer: TransferControl | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const stopAbortWatch = whenAborted(transfer?.signal, (reason) => {
      data.destroy();
      reject(reason);
    });
    dataChannelEstablished(data).then(
      () => {
        stopAbortWatch();
        resolve();
      },
      () => {
        stopAbortWatch();
        reject(new FtpError('DATA_CONNECTION_LOST', 'Data connection lost: no TLS handshake'));
      },
    );
  });
}

/** Waits for `event` on the data connection; rejects when it breaks or `transfer` is aborted. */
function untilFlushed(data: Socket, event: 'drain' | 'finish', transfer: TransferControl | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (err?: Error) => {
      data.off(event, onDone);
      data.off('error', onError);
      data.off('close', onClose);
      stopAbortWatch();
      if (err) reject(err);
      else resolve();
    };
    const onDone = () => done();
    const onError = (err: Error) => done(new FtpError('DATA_CONNECTION_LOST', 'Data connection lost', { cause: err }));
    const onClose = () => done(new FtpError('DATA_CONNECTION_LOST', 'Data connection lost'));
    const stopAbortWatch = whenAborted(transfer?.signal, (reason) => {
      data.destroy();
      done(reason);
    });
    data.once(event, onDone);
    data.once('error', onError);
    data.once('close', onClose);
  });
}

function abortReason(data: Socket, transfer: TransferControl): Error {
  data.destroy();
  return transfer.signal.reason as Error;
}
