import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../../src/config/load.js';
import { createS3Client, withPayloadSha256 } from '../../../src/storage/s3-client.js';
import { S3ClientCache } from '../../../src/storage/s3-client-cache.js';

const created: S3Client[] = [];
afterEach(() => {
  for (const c of created.splice(0)) c.destroy();
});

/** A well-formed bcrypt hash: these tests never log in. */
const account = { username: 'cam', passwordHash: `$2b$10$${'a'.repeat(53)}`, bucket: 'uploads' };

function clientFor(s3: Record<string, unknown>): S3Client {
  const client = createS3Client(parseConfig({ s3: { endpoint: 'http://127.0.0.1:9000', ...s3 }, accounts: [account] }).s3);
  created.push(client);
  return client;
}

/** The SDK's own strategy object the client retries with. */
async function strategyOf(client: S3Client): Promise<{ mode: string; attempts: number; name: string }> {
  const strategy = (await client.config.retryStrategy()) as unknown as { mode: string; maxAttemptsProvider: () => Promise<number> };
  return { mode: strategy.mode, attempts: await strategy.maxAttemptsProvider(), name: strategy.constructor.name };
}

describe('S3 client retry strategy', () => {
  it('is the SDK standard strategy by default, with s3.maxAttempts', async () => {
    expect(await strategyOf(clientFor({}))).toEqual({ mode: 'standard', attempts: 5, name: 'StandardRetryStrategy' });
  });

  it('is the SDK adaptive strategy with s3.retryMode: adaptive', async () => {
    expect(await strategyOf(clientFor({ retryMode: 'adaptive', maxAttempts: 7 }))).toEqual({ mode: 'adaptive', attempts: 7, name: 'AdaptiveRetryStrategy' });
  });

  it('is set from the environment, and inherited by per-account clients', async () => {
    const config = loadConfig({
      env: {
        FTP_S3_BRIDGE__S3__ENDPOINT: 'http://127.0.0.1:9000',
        FTP_S3_BRIDGE__S3__RETRY_MODE: 'adaptive',
        FTP_S3_BRIDGE__ACCOUNTS__0__USERNAME: account.username,
        FTP_S3_BRIDGE__ACCOUNTS__0__PASSWORD_HASH: account.passwordHash,
        FTP_S3_BRIDGE__ACCOUNTS__0__BUCKET: account.bucket,
      },
    });
    expect(config.s3.retryMode).toBe('adaptive');
    const cache = new S3ClientCache(config.s3);
    try {
      const partner = cache.get({ endpoint: 'http://127.0.0.2:9000', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
      expect((await strategyOf(partner)).mode).toBe('adaptive');
    } finally {
      cache.destroy();
    }
  });

  it('rejects an unknown mode', () => {
    expect(() => parseConfig({ s3: { retryMode: 'legacy' }, accounts: [account] })).toThrow(/retryMode/);
  });
});

describe('withPayloadSha256', () => {
  /** PutObject against a local server that records the request headers and answers 200. */
  async function put(preset: string | undefined): Promise<IncomingHttpHeaders> {
    let seen: IncomingHttpHeaders = {};
    const server = createServer((req, res) => {
      seen = req.headers;
      req.resume();
      req.on('end', () => res.writeHead(200, { ETag: '"e"' }).end());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const client = clientFor({ endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, forcePathStyle: true, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
      const command = new PutObjectCommand({ Bucket: 'b', Key: 'k', Body: Buffer.from('hello') });
      await client.send(preset ? withPayloadSha256(command, preset) : command);
      return seen;
    } finally {
      server.close();
    }
  }

  it('signs with the given body hash instead of hashing the body again', async () => {
    const sha = createHash('sha256').update('hello').digest('hex');
    expect((await put(undefined))['x-amz-content-sha256']).toBe(sha);
    // A different (wrong) preset shows that it is taken as given: the store would refuse it.
    const preset = createHash('sha256').update('other').digest('hex');
    const headers = await put(preset);
    expect(headers['x-amz-content-sha256']).toBe(preset);
    expect(headers.authorization).toMatch(/x-amz-content-sha256/);
  });
});
