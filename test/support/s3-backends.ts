import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startMoto } from './moto-s3.js';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export type BackendName = 's3rver' | 'swift' | 'minio' | 'moto';

/** A real S3 server for the tests, picked by S3_TEST_BACKEND. */
export interface TestS3 {
  backend: BackendName;
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** What the backend implements beyond the basics; tests needing more run on backends that have it. */
  capabilities: {
    abortMultipartUpload: boolean;
    listMultipartUploads: boolean;
    uploadPartCopy: boolean;
    /** CopyObject honours x-amz-copy-source-if-match (s3rver ignores it and copies anyway). */
    copySourceIfMatch: boolean;
  };
}

export interface StartedBackend {
  s3: TestS3;
  stop(): Promise<void>;
}

export async function startBackend(name: string): Promise<StartedBackend> {
  switch (name) {
    case 's3rver':
      return startS3rver();
    case 'swift':
      return startSwift();
    case 'minio':
      return startMinio();
    case 'moto':
      return startMoto();
    default:
      throw new Error(`S3_TEST_BACKEND must be s3rver, swift, minio or moto (got "${name}")`);
  }
}

async function startS3rver(): Promise<StartedBackend> {
  const dir = mkdtempSync(join(tmpdir(), 'ftp-s3-bridge-s3rver-'));
  const child: ChildProcess = spawn(
    process.execPath,
    ['--openssl-legacy-provider', join(ROOT, 'test/support/s3rver-main.mjs'), dir],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolvePort, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => resolvePort((JSON.parse(line) as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}`)));
  });
  return {
    s3: {
      backend: 's3rver',
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
      capabilities: { abortMultipartUpload: false, listMultipartUploads: false, uploadPartCopy: false, copySourceIfMatch: false },
    },
    async stop() {
      // Already gone: its 'exit' has been emitted and would never come again.
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        // A graceful close waits for keep-alive connections; it never holds a test's teardown.
        const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(killer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** OpenStack Swift + s3api from Debian packages, via the project's copy of the start script (needs root). */
async function startSwift(): Promise<StartedBackend> {
  const base = process.env.SWIFT_S3_BASE ?? '/tmp/ftp-s3-bridge-swift';
  const script = join(ROOT, 'infra/swift-s3/start-swift-s3.sh');
  const { stdout } = await run('bash', [script, base], { maxBuffer: 1 << 20, timeout: 15 * 60_000 });
  const env = Object.fromEntries(
    stdout
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  return {
    s3: {
      backend: 'swift',
      endpoint: env.S3_ENDPOINT as string,
      region: env.S3_REGION ?? 'us-east-1',
      accessKeyId: env.S3_ACCESS_KEY_ID as string,
      secretAccessKey: env.S3_SECRET_ACCESS_KEY as string,
      capabilities: { abortMultipartUpload: true, listMultipartUploads: true, uploadPartCopy: true, copySourceIfMatch: true },
    },
    async stop() {
      if (process.env.SWIFT_S3_KEEP) return;
      await run('bash', [join(ROOT, 'infra/swift-s3/stop-swift-s3.sh'), base], { timeout: 120_000 });
    },
  };
}

/** MinIO in a container, where a Docker engine runs (testcontainers). */
async function startMinio(): Promise<StartedBackend> {
  // Loaded only for this backend: testcontainers is heavy and the default backend needs none of it.
  const { MinioContainer } = await import('@testcontainers/minio');
  const container = await new MinioContainer('minio/minio:RELEASE.2025-04-22T22-12-26Z').start().catch((err: unknown) => {
    throw new Error('S3_TEST_BACKEND=minio needs a Docker engine that testcontainers can reach', { cause: err });
  });
  return {
    s3: {
      backend: 'minio',
      endpoint: container.getConnectionUrl(),
      region: 'us-east-1',
      accessKeyId: container.getUsername(),
      secretAccessKey: container.getPassword(),
      capabilities: { abortMultipartUpload: true, listMultipartUploads: true, uploadPartCopy: true, copySourceIfMatch: true },
    },
    async stop() {
      await container.stop();
    },
  };
}
