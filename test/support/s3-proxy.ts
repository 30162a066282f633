import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { Crc32cJs, Crc64NvmeJs } from '@aws-sdk/checksums/crc';
import { ActiveRule, classifyRequest, s3ErrorXml, type FaultRule, type S3Operation } from './fault-proxy.js';

export interface ProxiedRequest {
  method: string;
  path: string;
  operation: S3Operation;
  key: string;
  /** The Range header, for GetObject. */
  range?: string;
  /** The request headers as sent (signed ones included). */
  headers: IncomingMessage['headers'];
  /** The fault applied to it, if any. */
  fault?: string;
}

/**
 * A loopback HTTP proxy between the bridge and the real S3 that records every request (how a test
 * proves that a refused command never reached S3) and injects faults by rule (`addRule`): S3
 * error replies, latency, connection resets before or during a response body, truncated and
 * stalled bodies. Headers (Host included, it is signed) pass unchanged.
 */
export class S3Proxy {
  private readonly rules: ActiveRule[] = [];

  private constructor(
    private readonly server: Server,
    readonly endpoint: string,
    readonly requests: ProxiedRequest[],
    private readonly upstream: URL,
  ) {}

  static async start(target: string): Promise<S3Proxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new S3Proxy(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, [], new URL(target));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => void proxy.handle(req, res));
    return proxy;
  }

  /** Installs a fault rule; rules are tried in order and the first that fires applies. */
  addRule(rule: FaultRule): ActiveRule {
    const active = new ActiveRule(rule);
    this.rules.push(active);
    return active;
  }

  removeRule(rule: ActiveRule): void {
    const i = this.rules.indexOf(rule);
    if (i >= 0) this.rules.splice(i, 1);
  }

  clearRules(): void {
    this.rules.length = 0;
  }

  /** Recorded requests of one operation. */
  requestsOf(operation: S3Operation): ProxiedRequest[] {
    return this.requests.filter((r) => r.operation === operation);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const classified = classifyRequest(req.method ?? '', req.url ?? '', req.headers);
    const record: ProxiedRequest = { method: req.method ?? '', path: req.url ?? '', operation: classified.operation, key: classified.key, headers: req.headers };
    if (req.headers.range) record.range = req.headers.range;
    this.requests.push(record);
    let fired: ActiveRule | undefined;
    for (const rule of this.rules) {
      if (rule.decide(classified, Math.random) && !fired) fired = rule;
    }
    const action = fired?.rule.action;
    if (action) record.fault = action.kind;
    if (action?.kind === 'reset') {
      req.socket.resetAndDestroy();
      return;
    }
    if (action?.kind === 'error') {
      req.resume();
      await new Promise((resolve) => req.once('end', resolve).once('close', resolve));
      const code = action.code ?? (action.status === 503 ? 'SlowDown' : 'InternalError');
      const body = s3ErrorXml(code, new URL(req.url ?? '/', 'http://proxy').pathname);
      res.writeHead(action.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    let corrupted: Buffer | undefined;
    if (action?.kind === 'corrupt-body') {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      const at = action.atByte ?? Math.floor(body.length / 2);
      if (at < body.length) body[at] = (body[at] as number) ^ 0xff;
      const header = Object.keys(req.headers).find((h) => /^x-amz-checksum-(sha256|crc32|crc32c|crc64nvme)$/.test(h));
      if (header && (await checksumOf(header.slice('x-amz-checksum-'.length), body)) !== req.headers[header]) {
        const xml = s3ErrorXml('BadDigest', new URL(req.url ?? '/', 'http://proxy').pathname);
        res.writeHead(400, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) });
        res.end(xml);
        return;
      }
      corrupted = body;
    }
    if (action?.kind === 'latency') await sleep(action.ms);
    const out = request(
      { host: this.upstream.hostname, port: this.upstream.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        // A client that goes away stops the transfer, as with a real S3 server: the rest of the body
        // must not end up in the test's process, whose memory tests measure the bridge.
        res.once('close', () => up.destroy());
        if (action?.kind !== 'reset-body' && action?.kind !== 'truncate-body' && action?.kind !== 'stall-body') {
          up.pipe(res);
          return;
        }
        const length = Number(up.headers['content-length'] ?? 0);
        const limit = action.afterBytes ?? Math.floor(length / 2);
        let sent = 0;
        res.flushHeaders();
        const cut = () => {
          up.destroy();
          if (action.kind === 'reset-body') req.socket.resetAndDestroy();
          else if (action.kind === 'truncate-body') req.socket.end();
          // stall-body: the socket stays open, silent, until the client gives up or the proxy closes
        };
        if (limit <= 0) return cut();
        up.on('data', (chunk: Buffer) => {
          if (sent >= limit) return;
          const part = chunk.subarray(0, limit - sent);
          sent += part.length;
          // cut once the bytes are handed to the kernel: a reset would discard what is still queued
          if (sent >= limit) res.write(part, () => setImmediate(cut));
          else res.write(part);
        });
        up.on('end', () => {
          if (sent < limit) res.end();
        });
      },
    );
    out.on('error', () => res.destroy());
    if (corrupted) out.end(corrupted);
    else req.pipe(out);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** The base64 x-amz-checksum-<algorithm> of `body`, as S3 computes it. */
async function checksumOf(algorithm: string, body: Buffer): Promise<string> {
  if (algorithm === 'sha256') return createHash('sha256').update(body).digest('base64');
  if (algorithm === 'crc32') {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(crc32(body) >>> 0);
    return out.toString('base64');
  }
  const impl = algorithm === 'crc32c' ? new Crc32cJs() : new Crc64NvmeJs();
  impl.update(body);
  return Buffer.from(await impl.digest()).toString('base64');
}
