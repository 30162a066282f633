import { createHash, randomBytes } from 'node:crypto';
import { Agent as HttpAgent, createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createS3Agents } from '../../../src/storage/s3-agents.js';

const MiB = 1024 * 1024;
const body = randomBytes(12 * MiB + 4321);
const bodySha256 = createHash('sha256').update(body).digest('hex');

/** Answers every request with `body`, in pieces of various sizes (so reads split headers and body). */
function serve(res: ServerResponse): void {
  res.writeHead(200, { 'content-length': body.length, 'x-amz-request-id': 'a'.repeat(200) });
  let at = 0;
  const next = (): void => {
    while (at < body.length) {
      const piece = body.subarray(at, at + 100_000 + (at % 7_777));
      at += piece.length;
      if (!res.write(piece)) return void res.once('drain', next);
    }
    res.end();
  };
  next();
}

interface Fetched {
  sha256: string;
  bytes: number;
  /** The chunks the socket emitted, with their lengths when emitted. */
  reads: { chunk: Buffer; length: number }[];
}

/** One GET through `agent`, recording the socket's reads; the body is hashed as it arrives. */
function fetchThrough(url: string, agent: HttpAgent): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const reads: Fetched['reads'] = [];
    const req = httpRequest(url, { agent }, (res: IncomingMessage) => {
      const hash = createHash('sha256');
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.length;
      });
      res.on('end', () => resolve({ sha256: hash.digest('hex'), bytes, reads }));
      res.on('error', reject);
    });
    req.on('socket', (socket) => socket.on('data', (chunk: Buffer) => reads.push({ chunk, length: chunk.length })));
    req.on('error', reject);
    req.end();
  });
}

/** How many bytes of the socket's reads are freed by now. */
function freedBytes(reads: Fetched['reads']): number {
  return reads.reduce((sum, read) => sum + (read.chunk.buffer.byteLength === 0 ? read.length : 0), 0);
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function listen(server: Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

describe('S3 agents', () => {
  it('free each socket read once parsed, and the body arrives intact (http, keep-alive reuse)', async () => {
    const port = await listen(createHttpServer((_req, res) => serve(res)));
    const { httpAgent } = createS3Agents({ keepAlive: true, maxSockets: 1 });
    try {
      for (let round = 0; round < 3; round++) {
        const got = await fetchThrough(`http://127.0.0.1:${port}/o`, httpAgent);
        expect({ sha256: got.sha256, bytes: got.bytes }).toEqual({ sha256: bodySha256, bytes: body.length });
        // Reads are whole ArrayBuffers, but for the odd one: nearly all the bytes read are freed.
        expect(freedBytes(got.reads)).toBeGreaterThan(body.length * 0.95);
      }
    } finally {
      httpAgent.destroy();
    }
  });

  it('a stock agent leaves its reads to the collector (what the agents change)', async () => {
    const port = await listen(createHttpServer((_req, res) => serve(res)));
    const agent = new HttpAgent({ keepAlive: true });
    try {
      const got = await fetchThrough(`http://127.0.0.1:${port}/o`, agent);
      expect(got.sha256).toBe(bodySha256);
      expect(freedBytes(got.reads)).toBe(0);
    } finally {
      agent.destroy();
    }
  });
});
