import { randomUUID } from 'node:crypto';
import { ClamdError, ClamdStream, type ClamdAddress } from './clamd.js';
import { StorageError } from './errors.js';

/** CopyObject's limit: a staged multipart upload (quarantine accounts) is moved with one. */
const MAX_STAGED_BYTES = 5 * 1024 * 1024 * 1024;

/** The bridge-wide scanner settings (config `scan`). */
export interface ScanSettings {
  clamd: ClamdAddress;
  /** Bound on each wait for clamd: a chunk's write, the verdict (plus `verdictMsPerGiB`). */
  timeoutMs: number;
  /** Added to the verdict's bound for every GiB scanned: clamd scans the stream after its last byte. */
  verdictMsPerGiB?: number;
  /** Longer uploads are not scanned; `oversize` says what becomes of them. */
  maxBytes: number;
  oversize: 'reject' | 'accept-unscanned';
  onError: 'reject' | 'accept-unscanned';
}

/** An account's scan policy: where its infected files go, if anywhere. */
export interface AccountScanPolicy {
  /** Undefined: the account asks for a scan but no scanner is configured; every upload fails closed (451). */
  settings: ScanSettings | undefined;
  mode: 'reject' | 'quarantine';
  /** For `quarantine`: the bucket and key prefix infected files are committed under (same relative path). */
  quarantine?: { bucket: string; prefix: string };
}

/** What the scan of one upload found, and what the bridge did (audit line, events, metrics). */
export interface ScanReport {
  /** clean / infected: clamd's verdict; error: no verdict (scanner down, timed out, refused); oversize: not scanned. */
  result: 'clean' | 'infected' | 'error' | 'oversize';
  signature?: string;
  action: 'committed' | 'rejected' | 'quarantined' | 'accepted-unscanned';
  /** From the upload's last byte to clamd's verdict: what the scan added to the transfer. */
  latencyMs?: number;
  /** Where a quarantined file was stored. */
  quarantined?: { bucket: string; key: string };
}

/** A refusal by the scan (550 infected or oversize, 451 scanner unavailable), with its report. */
export class ScanError extends StorageError {
  constructor(
    code: 'SCAN_REJECTED' | 'SCAN_UNAVAILABLE',
    message: string,
    readonly scan: ScanReport,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** Where and how an upload is committed once its scan decided. */
export interface ScanDecision {
  bucket: string;
  key: string;
  /** Tags that mark the object (scan=infected/unscanned, signature), ahead of the account's. */
  tags: Record<string, string>;
  report: ScanReport;
  /** Quarantine: the object is committed at bucket/key, and the upload then fails with this. */
  error?: ScanError;
}

/**
 * The scan of one upload: every chunk goes to clamd as it passes (see ClamdStream) and `decide`
 * turns the verdict into where the object is committed, or an error that aborts it. Reject mode
 * commits clean files where asked and nothing else; quarantine mode commits infected files under
 * the quarantine prefix, tagged, and fails the upload. Without a verdict (scanner down, too slow,
 * file too large) `scan.onError` / `scan.oversize` decide: refuse, or commit tagged scan=unscanned.
 */
export class UploadScan {
  /** The key a multipart upload is staged under (quarantine mode): its final key is known only after the verdict. */
  readonly stagingKey: string | undefined;
  /** Opened with the first byte (or the verdict of an empty file): an upload that never sends data holds no clamd connection. */
  private stream: ClamdStream | undefined;
  private aborted = false;
  private bytes = 0;
  private noVerdict: ScanReport['result'] | undefined;
  private cause: unknown;

  constructor(
    private readonly policy: AccountScanPolicy,
    /** The file's name as the client gave it, for the reply. */
    private readonly name: string,
    /** Where the upload goes when it is clean. */
    private readonly target: { bucket: string; key: string },
    /** The key relative to the account's prefix (the quarantined copy keeps it). */
    private readonly relativeKey: string,
  ) {
    if (!policy.settings) this.cause = new ClamdError('connect', 'no malware scanner configured (scan.clamd)');
    const q = policy.mode === 'quarantine' ? policy.quarantine : undefined;
    this.stagingKey = q ? `${q.prefix}.scanning/${randomUUID()}` : undefined;
  }

  /** The bucket a staged multipart upload lives in. */
  get stagingBucket(): string {
    return this.policy.quarantine?.bucket ?? this.target.bucket;
  }

  /**
   * Sends a chunk to clamd; undefined when nothing needs awaiting (no longer scanning). Rejects
   * (failing the upload at once) when the file cannot be scanned and the policy refuses it.
   */
  write(chunk: Buffer): Promise<void> | undefined {
    const { settings } = this.policy;
    if (!settings) return Promise.reject(this.unavailableError());
    if (this.noVerdict) return undefined;
    this.bytes += chunk.length;
    if (this.stagingKey && this.bytes > MAX_STAGED_BYTES) {
      // Only with oversize: accept-unscanned: the staged upload could not be copied to its key (CopyObject's limit).
      return Promise.reject(new ScanError('SCAN_REJECTED', `${this.name}: too large for a quarantine account (over 5 GiB)`, { result: 'oversize', action: 'rejected' }));
    }
    if (this.bytes > settings.maxBytes) {
      this.stream?.destroy();
      this.noVerdict = 'oversize';
      if (settings.oversize === 'reject') return Promise.reject(this.oversizeError());
      return undefined;
    }
    return this.open(settings).write(chunk).catch((err: unknown) => {
      if (this.noVerdict) return;
      this.noVerdict = 'error';
      this.cause = err;
      this.stream?.destroy();
      if (settings.onError === 'reject') throw this.unavailableError();
    });
  }

  /** After the last chunk: where to commit, or a ScanError (nothing is to be committed). */
  async decide(): Promise<ScanDecision> {
    const { settings, mode, quarantine } = this.policy;
    if (!settings) throw this.unavailableError();
    if (this.noVerdict === 'oversize') {
      if (settings.oversize === 'reject') throw this.oversizeError();
      return this.unscanned('oversize');
    }
    const started = Date.now();
    let verdict;
    try {
      if (this.noVerdict) throw this.cause;
      verdict = await this.open(settings).end();
    } catch (err) {
      this.cause ??= err;
      if (settings.onError === 'reject') throw this.unavailableError();
      return this.unscanned('error');
    }
    const latencyMs = Date.now() - started;
    if (!verdict.infected) return { ...this.target, tags: {}, report: { result: 'clean', action: 'committed', latencyMs } };
    const { signature } = verdict;
    const message = `${this.name}: rejected by the malware scanner (${signature})`;
    if (mode === 'reject' || !quarantine) {
      throw new ScanError('SCAN_REJECTED', message, { result: 'infected', signature, action: 'rejected', latencyMs });
    }
    const where = { bucket: quarantine.bucket, key: quarantine.prefix + this.relativeKey };
    const report: ScanReport = { result: 'infected', signature, action: 'quarantined', latencyMs, quarantined: where };
    return {
      ...where,
      tags: { scan: 'infected', signature: tagValue(signature) },
      report,
      error: new ScanError('SCAN_REJECTED', message, report),
    };
  }

  /** The upload failed or was cancelled: no verdict is needed. */
  abort(): void {
    this.aborted = true;
    this.stream?.destroy();
  }

  private open(settings: ScanSettings): ClamdStream {
    if (!this.stream) {
      this.stream = new ClamdStream(settings.clamd, settings.timeoutMs, settings.verdictMsPerGiB);
      if (this.aborted) this.stream.destroy();
    }
    return this.stream;
  }

  private unscanned(result: 'oversize' | 'error'): ScanDecision {
    return { ...this.target, tags: { scan: 'unscanned' }, report: { result, action: 'accepted-unscanned' } };
  }

  private oversizeError(): ScanError {
    const mib = Math.floor((this.policy.settings?.maxBytes ?? 0) / (1024 * 1024));
    return new ScanError('SCAN_REJECTED', `${this.name}: too large for the malware scanner (over ${mib} MiB)`, { result: 'oversize', action: 'rejected' });
  }

  private unavailableError(): ScanError {
    const timedOut = this.cause instanceof ClamdError && this.cause.reason === 'timeout';
    return new ScanError(
      'SCAN_UNAVAILABLE',
      `${this.name}: malware scanner ${timedOut ? 'timed out' : 'unavailable'}; nothing stored, try again`,
      { result: 'error', action: 'rejected' },
      { cause: this.cause },
    );
  }
}

/**
 * The object's tags: the scan's first, then the account's (as an x-amz-tagging string) while S3's
 * limit of 10 allows.
 */
export function mergeTagging(scanTags: Record<string, string>, accountTagging: string | undefined): string | undefined {
  const merged = new URLSearchParams(Object.entries(scanTags));
  for (const [key, value] of new URLSearchParams(accountTagging ?? '')) {
    if (merged.size >= 10) break;
    if (!merged.has(key)) merged.append(key, value);
  }
  return merged.size ? merged.toString() : undefined;
}

/** A signature name as an S3 tag value (letters, digits, spaces and `_.:/=+-@`, at most 256). */
function tagValue(signature: string): string {
  return signature.replace(/[^\p{L}\p{N} _.:/=+\-@]/gu, '_').slice(0, 256);
}
