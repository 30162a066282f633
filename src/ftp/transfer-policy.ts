import { pipeline, type Readable } from 'node:stream';
import { byteLimit, type QuotaTracker } from '../accounts/quota.js';
import { StorageError } from '../storage/errors.js';
import type { UploadSink } from '../storage/object-store.js';
import type { Bandwidth } from './bandwidth.js';
import type { Session } from './session.js';

/** How an admitted upload's data stream is to be wrapped before it reaches the sink. */
export interface UploadAdmission {
  wrap(data: Readable, sink: UploadSink): Readable;
}

/**
 * Quotas and bandwidth as the transfer commands apply them: an upload is admitted (or refused with
 * STORAGE_FULL before its first byte) and its stream is throttled and cut at the quota; a download
 * stream is throttled.
 */
export class TransferPolicy {
  private readonly allocations = new WeakMap<Session, number>();

  constructor(
    private readonly bandwidth: Bandwidth,
    private readonly quota: QuotaTracker | undefined,
  ) {}

  /** ALLO n: the size of the next upload, checked against the quota when it starts. */
  allocate(session: Session, bytes: number): void {
    this.allocations.set(session, bytes);
  }

  async admitUpload(session: Session, path: string): Promise<UploadAdmission> {
    const size = this.allocations.get(session);
    this.allocations.delete(session);
    const account = session.account;
    const remaining = this.quota
      ? (
          await this.quota.admit(account, {
            size,
            replacesObject: () => session.store.stat(path).then((e) => !e.isDirectory, () => false),
          })
        ).remainingBytes
      : Infinity;
    return {
      wrap: (data, sink) => {
        let stream = this.bandwidth.upload(data, account.bandwidth);
        if (Number.isFinite(remaining)) {
          const guard = byteLimit(remaining, () => {
            session.log.info({ event: 'quota', quota: account.quota }, 'upload aborted: quota crossed');
            sink.destroy(new StorageError('STORAGE_FULL', 'Quota exceeded'));
          });
          stream = pipeline(stream, guard, () => undefined);
        }
        return stream;
      },
    };
  }

  download(session: Session, source: Readable): Readable {
    return this.bandwidth.download(source, session.account.bandwidth);
  }
}
