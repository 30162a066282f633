import { createHmac } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { splitUrlCredentials } from '../config/redact.js';
import type { BridgeConfig } from '../config/schema.js';
import type { OperationEvent } from '../sessions/operations.js';
import type { ScanReport } from '../storage/scan.js';

/** The JSON body POSTed to the webhook. */
export interface BridgeEvent {
  /** quarantined: an upload the malware scanner flagged, stored under the account's quarantine prefix (bucket/key say where). */
  type: 'upload' | 'delete' | 'rename' | 'quarantined';
  /** ISO 8601 time the operation finished. */
  time: string;
  user: string;
  clientIp: string;
  bucket: string;
  key: string;
  /** Virtual path as the client saw it. */
  path: string;
  /** The protocol the client used. */
  protocol: 'ftp' | 'sftp';
  /** rename: the old virtual path. */
  fromPath?: string;
  /** upload: object size in bytes. */
  size?: number;
  etag?: string;
  /** upload, quarantined (accounts that scan): the malware scanner's verdict. */
  scan?: { result: ScanReport['result']; action: ScanReport['action']; signature?: string };
  /** upload: the checksum S3 verified and keeps, `<algorithm>:<base64>`. */
  checksum?: string;
}

const SIGNATURE_HEADER = 'X-FTP-S3-Bridge-Signature';

const EVENT_TYPES: Partial<Record<OperationEvent['op'], BridgeEvent['type']>> = {
  STOR: 'upload',
  STOU: 'upload',
  APPE: 'upload',
  DELE: 'delete',
  RENAME: 'rename',
};

/**
 * The event an operation announces, if any: successful uploads, deletes and renames, and uploads
 * the scanner put in quarantine (the client got 550, yet an object was stored).
 */
export function eventFor(op: OperationEvent, now = new Date()): BridgeEvent | undefined {
  const quarantined = op.scan?.quarantined;
  const type = quarantined ? 'quarantined' : EVENT_TYPES[op.op];
  if (!type || (op.result !== 'ok' && !quarantined)) return undefined;
  const { result, action, signature } = op.scan ?? {};
  return {
    type,
    time: now.toISOString(),
    user: op.user,
    clientIp: op.clientIp,
    bucket: quarantined?.bucket ?? op.bucket,
    key: quarantined?.key ?? op.key,
    path: op.path,
    protocol: op.protocol ?? 'ftp',
    ...(op.from !== undefined ? { fromPath: op.from } : {}),
    ...(op.bytes !== undefined ? { size: op.bytes } : {}),
    ...(op.etag !== undefined ? { etag: op.etag } : {}),
    ...(result && action ? { scan: { result, action, ...(signature !== undefined ? { signature } : {}) } } : {}),
    ...(op.checksum !== undefined ? { checksum: op.checksum } : {}),
  };
}

/** `sha256=<hex>` of the body under `secret`: what the receiver recomputes to trust an event. */
export function signBody(secret: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
}

type WebhookConfig = NonNullable<BridgeConfig['events']['webhook']>;

export interface WebhookStats {
  onDelivered(): void;
  onFailed(): void;
  onDropped(): void;
}

/**
 * Delivers events to the webhook one at a time, off the FTP path: `publish` only queues. A full
 * queue drops its oldest event; a delivery is retried with exponential backoff (on network errors,
 * timeouts, 408, 429 and 5xx) up to `maxAttempts`, then given up and logged.
 */
export class WebhookPublisher {
  private readonly queue: string[] = [];
  private running = false;
  private closed = false;
  private dropped = 0;
  private readonly stop = new AbortController();
  private idle: Promise<void> = Promise.resolve();

  constructor(
    private readonly config: WebhookConfig,
    private readonly logger: Logger,
    private readonly stats?: WebhookStats,
    /** First retry delay; doubled per attempt, capped at 30 s. */
    private readonly backoffMs = 500,
  ) {}

  publish(event: BridgeEvent): void {
    if (this.closed) return;
    if (this.queue.length >= this.config.queueSize) {
      this.queue.shift();
      this.dropped++;
      this.stats?.onDropped();
      this.logger.warn({ dropped: this.dropped, queueSize: this.config.queueSize }, 'webhook queue full: oldest event dropped');
    }
    this.queue.push(JSON.stringify(event));
    if (!this.running) {
      this.running = true;
      this.idle = this.drain();
    }
  }

  /** Waits up to `graceMs` for queued events to go out, then abandons the rest. */
  async close(graceMs: number): Promise<void> {
    this.closed = true;
    const timer = setTimeout(() => this.stop.abort(), graceMs);
    await this.idle;
    clearTimeout(timer);
    if (this.queue.length) this.logger.warn({ abandoned: this.queue.length }, 'webhook events not delivered before shutdown');
  }

  private async drain(): Promise<void> {
    try {
      let body: string | undefined;
      while ((body = this.queue.shift()) !== undefined && !this.stop.signal.aborted) {
        await this.deliver(body);
      }
    } finally {
      this.running = false;
    }
  }

  private async deliver(body: string): Promise<void> {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'ftp-s3-bridge' };
    if (this.config.secret) headers[SIGNATURE_HEADER] = signBody(this.config.secret, body);
    const target = splitUrlCredentials(this.config.url);
    if (target.authorization) headers.authorization = target.authorization;
    for (let attempt = 1; ; attempt++) {
      let problem: string;
      try {
        const res = await fetch(target.url, {
          method: 'POST',
          headers,
          body,
          signal: AbortSignal.any([this.stop.signal, AbortSignal.timeout(this.config.timeoutSeconds * 1000)]),
        });
        await res.body?.cancel();
        if (res.ok) {
          this.stats?.onDelivered();
          return;
        }
        problem = `HTTP ${res.status}`;
        if (res.status < 500 && res.status !== 408 && res.status !== 429) attempt = this.config.maxAttempts;
      } catch (err) {
        problem = (err as Error).name === 'TimeoutError' ? 'timeout' : ((err as Error).message ?? String(err));
      }
      if (attempt >= this.config.maxAttempts || this.stop.signal.aborted) {
        this.stats?.onFailed();
        this.logger.warn({ attempts: attempt, problem }, 'webhook event not delivered');
        return;
      }
      this.logger.debug({ attempt, problem }, 'webhook delivery failed, retrying');
      try {
        await sleep(Math.min(30_000, this.backoffMs * 2 ** (attempt - 1)), undefined, { signal: this.stop.signal });
      } catch {
        // Aborted by close(): give up on this event.
      }
    }
  }
}
