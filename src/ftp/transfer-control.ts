import { FtpError } from './errors.js';

/**
 * The handle of one running transfer (STOR/STOU/APPE/RETR/LIST/NLST/MLSD), held by the control
 * channel while its command runs: ABOR, QUIT and the data idle timeout abort it through `signal`;
 * the data pumps (data-transfer.ts) report the bytes they move, which STAT tells and which keep
 * the idle clock from running out.
 */
export class TransferControl {
  private readonly controller = new AbortController();
  /** Bytes moved over the data connection so far. */
  bytes = 0;
  private lastProgress = Date.now();
  private waitingOnClient: () => boolean = () => false;
  private watchdog: NodeJS.Timeout | undefined;

  /** `idleMs`: a transfer waiting on its client that long with no byte moved is aborted (0: never). */
  constructor(private readonly idleMs: number) {}

  /** Aborted by ABOR, QUIT or the idle timeout; `signal.reason` is the FtpError to reply with. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  abort(reason: FtpError): void {
    this.controller.abort(reason);
  }

  /** `n` bytes crossed the data connection. */
  moved(n: number): void {
    this.bytes += n;
    this.lastProgress = Date.now();
  }

  /**
   * Starts the idle clock. It runs only while `waitingOnClient()` says the transfer waits for the
   * client (an upload ready for bytes, a download with bytes the client has not taken): a slow S3
   * or a full memory budget never counts against the client.
   */
  watchIdle(waitingOnClient: () => boolean): void {
    this.waitingOnClient = waitingOnClient;
    this.lastProgress = Date.now();
    if (this.idleMs <= 0 || this.watchdog) return;
    this.watchdog = setInterval(() => this.checkIdle(), Math.min(1000, Math.max(50, this.idleMs / 4)));
    this.watchdog.unref();
  }

  private checkIdle(): void {
    const now = Date.now();
    if (!this.waitingOnClient()) {
      this.lastProgress = now;
      return;
    }
    if (now - this.lastProgress < this.idleMs) return;
    clearInterval(this.watchdog);
    this.abort(new FtpError('TRANSFER_ABORTED', `No data moved for ${Math.round(this.idleMs / 1000)} s; transfer aborted`));
  }

  /** The transfer's command has finished. */
  end(): void {
    clearInterval(this.watchdog);
    this.watchdog = undefined;
  }
}

/** Calls `onAbort(reason)` when `signal` aborts (at once if it already has); returns the unsubscriber. */
export function whenAborted(signal: AbortSignal | undefined, onAbort: (reason: Error) => void): () => void {
  if (!signal) return () => undefined;
  const listener = () => onAbort(signal.reason as Error);
  if (signal.aborted) {
    queueMicrotask(listener);
    return () => undefined;
  }
  signal.addEventListener('abort', listener, { once: true });
  return () => signal.removeEventListener('abort', listener);
}
