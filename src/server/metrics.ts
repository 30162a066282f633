import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { OperationEvent } from '../sessions/operations.js';
import type { S3RequestInfo } from '../storage/s3-client.js';

/** What the passive-port gauges read: the size of the configured range and the ports held now. */
export interface PassivePortUsage {
  total: number;
  inUse: number;
}

export interface MetricsSources {
  sessionsActive(): number;
  passivePorts(): PassivePortUsage;
  /** The upload memory budget: bytes held by uploads, and uploads waiting for budget. */
  uploadMemory(): { inUse: number; waiting: number };
  /** The shared state on Redis (cluster.redis): whether it is in use, and decisions taken without it. */
  cluster?(): { up: boolean; fallbacks: number };
}

const TRANSFER_OPS = new Set<OperationEvent['op']>(['STOR', 'STOU', 'APPE', 'RETR']);
const UPLOAD_OPS = new Set<OperationEvent['op']>(['STOR', 'STOU', 'APPE']);

/**
 * The bridge's Prometheus metrics, in a registry of their own (several bridges may share a
 * process in tests). Fed by operation events, login results and the S3 client's request hook.
 */
export class BridgeMetrics {
  readonly registry = new Registry();
  private readonly logins: Counter<'result' | 'protocol'>;
  private readonly operations: Counter<'operation' | 'result' | 'protocol'>;
  private readonly transfers: Counter<'operation' | 'result' | 'protocol'>;
  private readonly bytes: Counter<'direction'>;
  private readonly duration: Histogram<'operation' | 'result' | 'protocol'>;
  private readonly s3Requests: Counter<'operation'>;
  private readonly s3Errors: Counter<'operation' | 'code'>;
  private readonly multipartAborted: Counter;
  readonly webhookEvents: Counter<'result'>;
  private readonly scanVerdicts: Counter<'result' | 'action'>;
  private readonly scanLatency: Histogram;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'ftp_sessions_active',
      help: 'Open FTP control connections',
      registers,
      collect() {
        this.set(sources.sessionsActive());
      },
    });
    new Gauge({
      name: 'ftp_passive_ports',
      help: 'Passive data ports of the configured range, by state (in_use, free)',
      labelNames: ['state'],
      registers,
      collect() {
        const { total, inUse } = sources.passivePorts();
        this.set({ state: 'in_use' }, inUse);
        this.set({ state: 'free' }, Math.max(0, total - inUse));
      },
    });
    new Gauge({
      name: 'upload_memory_bytes',
      help: 'Bytes of s3.memoryLimitMiB held by upload buffers',
      registers,
      collect() {
        this.set(sources.uploadMemory().inUse);
      },
    });
    new Gauge({
      name: 'uploads_waiting_for_memory',
      help: 'Uploads waiting for a buffer: the budget is used up, or their client address or account holds its share (s3.memoryShare)',
      registers,
      collect() {
        this.set(sources.uploadMemory().waiting);
      },
    });
    if (sources.cluster) {
      const cluster = sources.cluster;
      new Gauge({
        name: 'cluster_redis_up',
        help: "1 while the shared state on Redis (cluster.redis) is in use; 0 while each replica decides on its own state",
        registers,
        collect() {
          this.set(cluster().up ? 1 : 0);
        },
      });
      new Counter({
        name: 'cluster_redis_fallbacks_total',
        help: "Decisions (bans, limits, quota, bandwidth) taken on this replica's own state because Redis was unavailable",
        registers,
        collect() {
          this.reset();
          this.inc(cluster().fallbacks);
        },
      });
    }
    this.logins = new Counter({ name: 'ftp_logins_total', help: 'Login attempts by result (ok, failed) and protocol (ftp, sftp)', labelNames: ['result', 'protocol'], registers });
    this.operations = new Counter({
      name: 'ftp_operations_total',
      help: 'Finished or failed file operations (transfers, DELE, MKD, RMD, RENAME) by operation, result and protocol (ftp, sftp)',
      labelNames: ['operation', 'result', 'protocol'],
      registers,
    });
    this.transfers = new Counter({
      name: 'ftp_transfers_total',
      help: 'Finished or failed data transfers (STOR, STOU, APPE, RETR) by operation, result and protocol (ftp, sftp)',
      labelNames: ['operation', 'result', 'protocol'],
      registers,
    });
    this.bytes = new Counter({
      name: 'ftp_transfer_bytes_total',
      help: 'Bytes of completed transfers by direction (in: uploads committed to S3, out: downloads sent)',
      labelNames: ['direction'],
      registers,
    });
    this.duration = new Histogram({
      name: 'ftp_transfer_duration_seconds',
      help: 'Duration of data transfers, from the command to the final reply',
      labelNames: ['operation', 'result', 'protocol'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600],
      registers,
    });
    this.s3Requests = new Counter({ name: 's3_requests_total', help: 'S3 API calls by operation (retries included in one call)', labelNames: ['operation'], registers });
    this.s3Errors = new Counter({
      name: 's3_request_errors_total',
      help: 'Failed S3 API calls by operation and error code',
      labelNames: ['operation', 'code'],
      registers,
    });
    this.multipartAborted = new Counter({ name: 's3_multipart_uploads_aborted_total', help: 'Multipart uploads aborted (failed or cut-off uploads)', registers });
    this.webhookEvents = new Counter({
      name: 'webhook_events_total',
      help: 'Webhook events by outcome (delivered, failed after all retries, dropped from a full queue)',
      labelNames: ['result'],
      registers,
    });
    this.scanVerdicts = new Counter({
      name: 'scan_verdicts_total',
      help: 'Malware scans of uploads by result (clean, infected, error, oversize) and action (committed, rejected, quarantined, accepted-unscanned)',
      labelNames: ['result', 'action'],
      registers,
    });
    this.scanLatency = new Histogram({
      name: 'scan_latency_seconds',
      help: "Time from an upload's last byte to clamd's verdict (what the scan adds to a transfer)",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
  }

  onLogin(result: 'ok' | 'failed', protocol: 'ftp' | 'sftp' = 'ftp'): void {
    this.logins.inc({ result, protocol });
  }

  onOperation(event: OperationEvent): void {
    const labels = { operation: event.op, result: event.result, protocol: event.protocol ?? 'ftp' };
    this.operations.inc(labels);
    if (!TRANSFER_OPS.has(event.op)) return;
    this.transfers.inc(labels);
    this.duration.observe(labels, event.durationMs / 1000);
    if (event.result === 'ok' && event.bytes) {
      this.bytes.inc({ direction: UPLOAD_OPS.has(event.op) ? 'in' : 'out' }, event.bytes);
    }
    if (event.scan) {
      this.scanVerdicts.inc({ result: event.scan.result, action: event.scan.action });
      if (event.scan.latencyMs !== undefined) this.scanLatency.observe(event.scan.latencyMs / 1000);
    }
  }

  onS3Request(info: S3RequestInfo): void {
    this.s3Requests.inc({ operation: info.operation });
    if (info.errorCode !== undefined) this.s3Errors.inc({ operation: info.operation, code: info.errorCode });
    else if (info.operation === 'AbortMultipartUpload') this.multipartAborted.inc();
  }
}
