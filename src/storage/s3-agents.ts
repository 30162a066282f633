import type { Agent as HttpAgent, AgentOptions } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Duplex } from 'node:stream';
import { http } from '../config/node-http.js';
import { freeBuffer } from './free-buffer.js';

/**
 * The keep-alive agents of the S3 client. The sockets of the plain-HTTP agent free each chunk they
 * read as soon as the HTTP client has parsed it, instead of leaving it to V8's next garbage
 * collection. (A TLS socket hands out 16 KiB slices of shared 64 KiB buffers, which cannot be
 * freed one by one: the HTTPS agent is Node's own.)
 *
 * Why this is safe: Node's HTTP client parses a socket chunk synchronously in its 'data' listener
 * and copies what it keeps out of it (the body with `Buffer::Copy` in node_http_parser.cc's
 * on_body, header fields as strings), so the chunk is garbage once the listeners have returned.
 * Only a protocol upgrade (HTTP 101 or CONNECT, which S3 never answers) keeps a slice of it.
 * test/unit/storage/s3-agents.test.ts fails if a Node release stops copying.
 *
 * Why: a GetObject body arrives in 64 KiB socket reads. Left to the collector, a GiB of them is
 * ~16 full collections, each freeing 64 MiB at once for glibc to hand back and the next reads to
 * fault in again: CPU on the download path, and RSS that grows by tens of MiB per download.
 */
export function createS3Agents(options: AgentOptions): { httpAgent: HttpAgent; httpsAgent: HttpsAgent } {
  return { httpAgent: new ReadFreeingHttpAgent(options), httpsAgent: new HttpsAgent(options) };
}

class ReadFreeingHttpAgent extends http.Agent {
  override createConnection(...args: Parameters<HttpAgent['createConnection']>): ReturnType<HttpAgent['createConnection']> {
    return freeReadsAfterUse(super.createConnection(...args));
  }
}

/** Frees each chunk a socket emits once every 'data' listener has run. */
function freeReadsAfterUse<T extends Duplex | null | undefined>(socket: T): T {
  if (!socket) return socket;
  const emit = socket.emit;
  socket.emit = function emitThenFree(this: Duplex, event: string | symbol, ...args: unknown[]): boolean {
    const listened = emit.call(this, event, ...args);
    if (event === 'data' && Buffer.isBuffer(args[0])) freeBuffer(args[0]);
    return listened;
  };
  return socket;
}
