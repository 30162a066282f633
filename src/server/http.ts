import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Readiness } from './health.js';

/** The operations HTTP server: /metrics (Prometheus), /healthz (liveness), /readyz (readiness). */
export class OpsHttpServer {
  private readonly server: Server;

  constructor(
    private readonly registry: Registry,
    private readonly readiness: Readiness,
    private readonly logger: Logger,
  ) {
    this.server = createServer((req, res) => {
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
            return send(report.ready ? 200 : 503, 'application/json', JSON.stringify(report) + '\n');
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
