import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, GetObjectCommand, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { inject } from 'vitest';
import { hashPassword } from '../../src/accounts/passwords.js';
import { s3Client, sha256 } from './bridge.js';
import { writeCliConfig, type CliConfig } from './cli-config.js';
import { startCli, type CliProcess } from './cli-process.js';

export { BIN } from './cli-process.js';

export const OPS_USER = 'cam01';
export const OPS_PASSWORD = 'drain pw';

let hash: Promise<string> | undefined;

/** The bridge CLI as a child process (`serve --config`), on loopback against the test run's S3. */
export class CliBridge {
  private constructor(
    private readonly cli: CliProcess,
    readonly bucket: string,
    readonly s3: S3Client,
    readonly ftpPort: number,
    readonly httpPort: number,
  ) {}

  get child(): ChildProcess {
    return this.cli.process;
  }

  /** Resolves with the exit code (null when a signal ended it). */
  get exited(): Promise<number | null> {
    return this.cli.exited;
  }

  /** Everything the process wrote (JSON log lines). */
  get log(): string {
    return this.cli.output;
  }

  /** The parsed JSON log lines. */
  logLines(): Record<string, unknown>[] {
    return this.cli.logLines();
  }

  static async start(extra: Omit<CliConfig, 'ftp' | 's3'> = {}, ftp: CliConfig['ftp'] = {}): Promise<CliBridge> {
    const s3 = inject('s3');
    const client = s3Client(s3);
    const bucket = `ops-${randomBytes(5).toString('hex')}`;
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    hash ??= hashPassword(OPS_PASSWORD);
    const file = writeCliConfig(s3, {
      ftp,
      http: { host: '127.0.0.1', port: 0 },
      s3: { partSizeMiB: 5 },
      accounts: [{ username: OPS_USER, passwordHash: await hash, bucket, prefix: '' }],
      log: { level: 'info' },
      ...extra,
    });
    const { cli, port } = await startCli(file, { nodeArgs: ['--openssl-legacy-provider'] });
    const http = await cli.waitForLog('HTTP (metrics, health) listening').catch((err: unknown) => {
      cli.kill();
      throw err;
    });
    return new CliBridge(cli, bucket, client, port, http.port as number);
  }

  async http(path: string): Promise<{ status: number; body: string }> {
    const res = await fetch(`http://127.0.0.1:${this.httpPort}${path}`);
    return { status: res.status, body: await res.text() };
  }

  url(path: string): string {
    return `ftp://${OPS_USER}:${encodeURIComponent(OPS_PASSWORD)}@127.0.0.1:${this.ftpPort}${path}`;
  }

  /** sha256 of the object's bytes, or undefined when there is no such object. */
  async objectHash(key: string): Promise<string | undefined> {
    try {
      const res = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return sha256(Buffer.from(await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()));
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey') return undefined;
      throw err;
    }
  }

  async pendingUploads(): Promise<string[]> {
    const res = await this.s3.send(new ListMultipartUploadsCommand({ Bucket: this.bucket }));
    return (res.Uploads ?? []).map((u) => u.Key as string);
  }

  /** SIGKILLs the process if it is still running (test cleanup). */
  kill(): void {
    this.cli.kill();
    this.s3.destroy();
  }
}
