import { pipeline, type Readable } from 'node:stream';
import { reserveAsReceived, type QuotaTracker } from '../accounts/quota.js';
import { StorageError } from '../storage/errors.js';
import type { UploadSink } from '../storage/object-store.js';
import type { Bandwidth } from './bandwidth.js';
import type { Session } from './session.js';

/** An admitted upload: how its data stream is wrapped before it reaches the sink; the release of its quota reservation. */
export interface UploadAdmission {
  /** Also ties the quota reservation to the sink: what the sink commits counts as usage, an abort frees it. */
  wrap(data: Readable, sink: UploadSink): Readable;
  /** The upload is over: what it still reserves of the quota (no sink was wrapped, or it never settled) is free again. */
  release(): void;
}

/**
 * Quotas and bandwidth as the transfer commands apply them: an upload is admitted (or refused with
 * STORAGE_FULL before its first byte), its stream is throttled and its bytes are reserved against
 * the quota as they arrive (see QuotaTracker); a download stream is throttled.
 */
export class TransferPolicy {
  constructor(
    private readonly bandwidth: Bandwidth,
    private readonly quota: QuotaTracker | undefined,
  ) {}

  /**
   * Admits an upload of `path` (an append when `append`): refused with STORAGE_FULL at a quota
   * limit; otherwise its bytes are reserved as they arrive and the one that crosses maxBytes aborts it.
   * `size`: the size ALLO announced, which lets a quota refuse the upload before its first byte.
   */
  async admitUpload(session: Session, path: string, options: { append?: boolean; size?: number } = {}): Promise<UploadAdmission> {
    const size = options.size;
    const account = session.account;
    const reservation = await this.quota?.reserve(account, {
      key: session.store.locate(path).key,
      size,
      append: options.append,
      replacesObject: () => session.store.stat(path).then((e) => !e.isDirectory, () => false),
    });
    return {
      wrap: (data, sink) => {
        let stream = this.bandwidth.upload(data, account.bandwidth);
        if (reservation) {
          sink.committed.then(
            (object) => reservation.commit(object.etag),
            () => reservation.release(),
          );
          const guard = reserveAsReceived(reservation, () => {
            session.log.info({ event: 'quota', quota: account.quota, bytes: reservation.bytes }, 'upload aborted: quota crossed');
            sink.destroy(new StorageError('STORAGE_FULL', 'Quota exceeded'));
          });
          stream = pipeline(stream, guard, () => undefined);
        }
        return stream;
      },
      release: () => reservation?.release(),
    };
  }

  download(session: Session, source: Readable): Readable {
    return this.bandwidth.download(source, session.account.bandwidth);
  }
}
