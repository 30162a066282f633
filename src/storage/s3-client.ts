import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { BridgeConfig } from '../config/schema.js';

/**
 * Builds the one S3 client the bridge shares between all sessions. Non-AWS endpoints default to
 * `WHEN_REQUIRED` checksums: with `WHEN_SUPPORTED`, streamed bodies are sent aws-chunked with CRC
 * trailers, which s3rver stores verbatim inside the object and Swift refuses.
 */
export function createS3Client(s3: BridgeConfig['s3']): S3Client {
  const custom = s3.endpoint !== undefined;
  const agentOptions = { keepAlive: true, maxSockets: 256 };
  return new S3Client({
    region: s3.region,
    endpoint: s3.endpoint,
    forcePathStyle: s3.forcePathStyle,
    credentials: s3.credentials,
    maxAttempts: s3.maxAttempts,
    requestChecksumCalculation: s3.requestChecksumCalculation ?? (custom ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED'),
    responseChecksumValidation: s3.responseChecksumValidation ?? (custom ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED'),
    requestHandler: new NodeHttpHandler({
      connectionTimeout: 10_000,
      requestTimeout: 60_000,
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
    }),
  });
}
