import { S3Client, type CopyObjectCommand, type PutObjectCommand, type UploadPartCommand } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { BridgeConfig } from '../config/schema.js';
import { createS3Agents } from './s3-agents.js';

/**
 * Builds the one S3 client the bridge shares between all sessions. Non-AWS endpoints default to
 * `WHEN_REQUIRED` checksums: with `WHEN_SUPPORTED`, streamed bodies are sent aws-chunked with CRC
 * trailers, which s3rver stores verbatim inside the object and Swift refuses.
 */
export function createS3Client(s3: BridgeConfig['s3'], onRequest?: (info: S3RequestInfo) => void): S3Client {
  const custom = s3.endpoint !== undefined;
  const client = new S3Client({
    region: s3.region,
    endpoint: s3.endpoint,
    forcePathStyle: s3.forcePathStyle,
    // A copy: the SDK marks the credentials object it is given, and the config is frozen.
    credentials: s3.credentials && { ...s3.credentials },
    maxAttempts: s3.maxAttempts,
    retryMode: s3.retryMode,
    requestChecksumCalculation: s3.requestChecksumCalculation ?? (custom ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED'),
    responseChecksumValidation: s3.responseChecksumValidation ?? (custom ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED'),
    requestHandler: new NodeHttpHandler({
      connectionTimeout: 10_000,
      // An idle-socket timeout, armed until the response body is consumed: it fails a request, or
      // a response body, that makes no progress for this long (stalls included). A wall-clock
      // timeout would fail large parts on a slow link.
      socketTimeout: s3.requestTimeoutSeconds * 1000,
      ...createS3Agents({ keepAlive: true, maxSockets: 256 }),
    }),
  });
  if (onRequest) observeRequests(client, onRequest);
  return client;
}

/**
 * Hands SigV4 the SHA-256 (hex) of a command's body that the caller computed anyway (the upload
 * digests): the signer takes a preset x-amz-content-sha256 instead of hashing the body once more,
 * and the store still checks the body against it. A wrong hash makes the request fail, never
 * stores other bytes.
 */
export function withPayloadSha256<C extends PutObjectCommand | UploadPartCommand>(command: C, sha256Hex: string): C {
  (command.middlewareStack as PutObjectCommand['middlewareStack']).add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers['x-amz-content-sha256'] = sha256Hex;
      return next(args);
    },
    { step: 'build', name: 'ftpS3BridgePayloadSha256' },
  );
  return command;
}

/** Content-MD5 of an empty body. */
const EMPTY_BODY_MD5 = '1B2M2Y8AsgTpgAmY7PhCfg==';

/**
 * A CopyObject that sets Object Lock: S3 (and moto) want a Content-MD5 or checksum header on any
 * PUT of an object with Object Lock parameters, and a copy's request body is empty, so its
 * Content-MD5 is that of no bytes (which the store can verify).
 */
export function withObjectLockContentMd5(command: CopyObjectCommand): CopyObjectCommand {
  const { ObjectLockMode, ObjectLockLegalHoldStatus } = command.input;
  if (!ObjectLockMode && ObjectLockLegalHoldStatus !== 'ON') return command;
  command.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers['content-md5'] = EMPTY_BODY_MD5;
      return next(args);
    },
    { step: 'build', name: 'ftpS3BridgeObjectLockContentMd5' },
  );
  return command;
}

/** One S3 API call as the request hook sees it: after its last retry. */
export interface S3RequestInfo {
  /** The API name, e.g. "PutObject", "UploadPart". */
  operation: string;
  durationMs: number;
  /** Set when the call failed: the S3 error code, the SDK error name or the HTTP status. */
  errorCode?: string;
}

function observeRequests(client: S3Client, onRequest: (info: S3RequestInfo) => void): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = String(context.commandName ?? 'Unknown').replace(/Command$/, '');
      const started = Date.now();
      const tell = (errorCode?: string) => {
        try {
          onRequest({ operation, durationMs: Date.now() - started, ...(errorCode !== undefined ? { errorCode } : {}) });
        } catch {
          // An observer never changes the outcome of a request.
        }
      };
      try {
        const result = await next(args);
        tell();
        return result;
      } catch (err) {
        const e = err as { Code?: string; name?: string; $metadata?: { httpStatusCode?: number } };
        tell(e.Code ?? e.name ?? String(e.$metadata?.httpStatusCode ?? 'Unknown'));
        throw err;
      }
    },
    { step: 'initialize', name: 'ftpS3BridgeRequestObserver' },
  );
}
