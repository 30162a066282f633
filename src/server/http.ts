import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { http } from '../config/node-http.js';
import type { Readiness, ReadinessReport } from './health.js';

/** What /readyz answers without `http.readyzDetails`: ok/failed per named check, nothing about the targets. */
export interface ReadinessSummary {
  ready: boolean;
  draining: boolean;
  checks: {
    /** Not draining: new sessions are accepted. */
    serving: 'ok' | 'failed';
    /** Every bucket of the accounts in force answers HeadBucket (absent while draining: not checked). */
    buckets?: 'ok' | 'failed';
    /** clamd answers PING (only when `scan` is configured; absent while draining). */
    scanner?: 'ok' | 'failed';
  };
}

/**
 * The /readyz body. The bucket list names buckets, endpoints and access key ids, which anyone who can
 * reach the ops port would learn: it is shown only when `details` (http.readyzDetails) is on.
 */
export function readinessBody(report: ReadinessReport, details: boolean): ReadinessSummary & Partial<ReadinessReport> {
  const checks: ReadinessSummary['checks'] = { serving: report.draining ? 'failed' : 'ok' };
  if (!report.draining) checks.buckets = report.buckets.every((b) => b.ok) ? 'ok' : 'failed';
  if (!report.draining && report.scanner) checks.scanner = report.scanner.ok ? 'ok' : 'failed';
  const summary = { ready: report.ready, draining: report.draining, checks };
  return details ? { ...summary, buckets: report.buckets, ...(report.scanner && { scanner: report.scanner }) } : summary;
}

/** The operations HTTP server: /metrics (Prometheus), /healthz (liveness), /readyz (readiness). */
export class OpsHttpServer {
  private readonly server: Server;

  constructor(
    private readonly registry: Registry,
    private readonly readiness: Readiness,
    private readonly logger: Logger,
    /** http.readyzDetails: /readyz names buckets, endpoints and key ids. */
    private readonly readyzDetails = false,
  ) {
    this.server = http.createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const send = (status: number, type: string, body: string) => {
        res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
      const handle = async () => {
        switch (path) {
          case '/healthz':
            return send(200, 'text/plain', 'ok\n');
          case '/readyz': {
            const report = await this.readiness.check();
            return send(report.ready ? 200 : 503, 'application/json', JSON.stringify(readinessBody(report, this.readyzDetails)) + '\n');
          }
          case '/metrics':
            return send(200, this.registry.contentType, await this.registry.metrics());
          default:
            return send(404, 'text/plain', 'not found\n');
        }
      };
      handle().catch((err: unknown) => {
        this.logger.error({ err, path }, 'ops HTTP request failed');
        if (!res.headersSent) send(500, 'text/plain', 'internal error\n');
        else res.destroy();
      });
    });
    this.server.keepAliveTimeout = 5000;
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Stops listening and closes idle keep-alive connections. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }
}
