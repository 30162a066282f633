import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import type { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { pino } from 'pino';
import { inject } from 'vitest';
import { hashPassword } from '../../src/accounts/passwords.js';
import { parseConfig } from '../../src/config/load.js';
import type { BridgeConfigInput } from '../../src/config/schema.js';
import { startBridge } from '../../src/server/bridge.js';
import type { TestS3 } from './s3-backends.js';
import { S3Proxy } from './s3-proxy.js';

export const USER = 'alice';
export const PASSWORD = 'correct horse';

const hashCache = new Map<string, Promise<string>>();
const cachedHash = (password: string) => {
  if (!hashCache.has(password)) hashCache.set(password, hashPassword(password));
  return hashCache.get(password) as Promise<string>;
};

export interface TestAccount {
  username: string;
  password: string;
  prefix?: string;
  bucket?: string;
  permissions?: string[];
  allowFrom?: string[];
  /** More account keys (quota, bandwidth, S3 policy...), as in the config. */
  policy?: Record<string, unknown>;
}

export interface TestBridgeOptions {
  accounts?: TestAccount[];
  /** More top-level config sections (auth, events...). */
  config?: Partial<BridgeConfigInput>;
  /** Route the bridge's S3 traffic through a recording, fault-injecting proxy (TestBridge.proxy, see S3Proxy.addRule). */
  proxy?: boolean;
  /** Where the bridge's JSON log goes (default: nowhere, or stderr at TEST_LOG_LEVEL). */
  logStream?: NodeJS.WritableStream;
  logLevel?: 'trace' | 'debug' | 'info';
  ftp?: Partial<NonNullable<BridgeConfigInput['ftp']>>;
  s3?: Partial<NonNullable<BridgeConfigInput['s3']>>;
  /** Another S3 than the test run's (e.g. a moto started by the test file, see startMoto). */
  backend?: TestS3;
}

export function s3Client(s3: TestS3): S3Client {
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** Whether nothing listens on 127.0.0.1:`port` now (bind and release it). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * The first port of a random block of 10 below Linux's ephemeral range (32768-60999) whose ports
 * are all free now: another process (a bench's HAProxy, another test run) may hold ports there,
 * and a range it holds leaves PASV nothing but `425`.
 */
async function freePassiveBlock(): Promise<number> {
  let portMin = 10000;
  for (let attempt = 0; attempt < 20; attempt++) {
    portMin = 10000 + Math.floor(Math.random() * 2000) * 10;
    const free = await Promise.all(Array.from({ length: 10 }, (_, i) => portFree(portMin + i)));
    if (free.every(Boolean)) return portMin;
  }
  return portMin;
}

/** A running bridge on loopback against the test run's real S3, with a fresh bucket of its own. */
export class TestBridge {
  /** The implicit FTPS listener's port (ftp.tls.implicitPort set, e.g. to 0). */
  ftpsImplicitPort: number | undefined;
  /** The operations HTTP listener's port (`/metrics`, `/healthz`, `/readyz`). */
  httpPort: number | undefined;
  /** The SFTP listener's port (config `sftp.enabled`, e.g. with test/support/sftp.ts sftpConfig()). */
  sftpPort: number | undefined;
  /** Graceful stop, as on SIGTERM (RunningBridge.drain); `close()` afterwards still cleans up. */
  drain!: () => Promise<void>;

  private constructor(
    readonly port: number,
    readonly bucket: string,
    readonly s3: S3Client,
    readonly backend: TestS3,
    private readonly stop: () => Promise<void>,
    readonly proxy: S3Proxy | undefined,
  ) {}

  static async start(options: TestBridgeOptions = {}): Promise<TestBridge> {
    const backend = options.backend ?? inject('s3');
    const s3 = s3Client(backend);
    const bucket = `t-${randomBytes(6).toString('hex')}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const accounts = options.accounts ?? [{ username: USER, password: PASSWORD }];
    // Each bridge gets its own passive range; random free blocks keep parallel workers (and parallel
    // test runs) apart, and the bridge skips ports that are busy anyway. Every port may go to one
    // client address: a test's clients stand for many devices but share 127.0.0.1.
    const portMin = await freePassiveBlock();
    const proxy = options.proxy ? await S3Proxy.start(backend.endpoint) : undefined;
    const config = parseConfig({
      ftp: { host: '127.0.0.1', port: 0, passive: { portMin, portMax: portMin + 9, maxPerClient: 10 }, loginFailureDelayMs: 200, ...options.ftp },
      http: { host: '127.0.0.1', port: 0 },
      s3: {
        endpoint: proxy?.endpoint ?? backend.endpoint,
        region: backend.region,
        forcePathStyle: true,
        credentials: { accessKeyId: backend.accessKeyId, secretAccessKey: backend.secretAccessKey },
        partSizeMiB: 5,
        queueSize: 2,
        ...options.s3,
      },
      accounts: await Promise.all(
        accounts.map(async (a) => ({
          username: a.username,
          passwordHash: await cachedHash(a.password),
          bucket: a.bucket ?? bucket,
          prefix: a.prefix ?? '',
          ...(a.permissions ? { permissions: a.permissions } : {}),
          ...(a.allowFrom ? { allowFrom: a.allowFrom } : {}),
          ...a.policy,
        })),
      ),
      ...options.config,
      log: { level: options.logLevel ?? (process.env.TEST_LOG_LEVEL as 'info' | undefined) ?? 'silent' },
    });
    const logger = options.logStream ? pino({ level: config.log.level }, options.logStream) : pino({ level: config.log.level });
    const running = await startBridge(config, logger);
    const stop = async () => {
      await running.close();
      await proxy?.close();
    };
    const bridge = new TestBridge(running.ftpAddress.port, bucket, s3, backend, stop, proxy);
    bridge.ftpsImplicitPort = running.ftpsImplicitAddress?.port;
    bridge.httpPort = running.httpAddress?.port;
    bridge.sftpPort = running.sftpAddress?.port;
    bridge.drain = () => running.drain();
    return bridge;
  }

  url(path = '/', user = USER, password = PASSWORD): string {
    return `ftp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${this.port}${path}`;
  }

  async getObject(key: string): Promise<Buffer | undefined> {
    try {
      const res = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      const chunks: Buffer[] = [];
      for await (const c of res.Body as Readable) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey') return undefined;
      throw err;
    }
  }

  async objectHash(key: string): Promise<string | undefined> {
    const body = await this.getObject(key);
    return body && sha256(body);
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return true;
    } catch (err) {
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
      throw err;
    }
  }

  async put(key: string, body: Buffer | string): Promise<void> {
    await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: Buffer.byteLength(body) }));
  }

  async keys(prefix = ''): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      out.push(...(page.Contents ?? []).map((o) => o.Key as string));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out.sort();
  }

  /** Incomplete multipart uploads in the bucket (backends with ListMultipartUploads only). */
  async pendingUploads(): Promise<string[]> {
    const res = await this.s3.send(new ListMultipartUploadsCommand({ Bucket: this.bucket }));
    return (res.Uploads ?? []).map((u) => u.Key as string);
  }

  async close(): Promise<void> {
    await this.stop();
    this.s3.destroy();
  }
}
