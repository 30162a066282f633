import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxiedRequest {
  method: string;
  path: string;
}

/**
 * A loopback HTTP proxy between the bridge and the real S3 that records every request: how a test
 * proves that a refused command never reached S3. Headers (Host included, it is signed) pass unchanged.
 */
export class S3Proxy {
  private constructor(
    private readonly server: Server,
    readonly endpoint: string,
    readonly requests: ProxiedRequest[],
  ) {}

  static async start(target: string): Promise<S3Proxy> {
    const upstream = new URL(target);
    const requests: ProxiedRequest[] = [];
    const server = createServer((req: IncomingMessage, res) => {
      requests.push({ method: req.method ?? '', path: req.url ?? '' });
      const out = request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      out.on('error', () => res.destroy());
      req.pipe(out);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new S3Proxy(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
