import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { inject } from 'vitest';
import { hashPassword } from '../../src/accounts/passwords.js';
import { s3Client, sha256 } from './bridge.js';
import { writeCliConfig, type CliConfig } from './cli-config.js';

/** The built CLI (npm test builds first). */
export const BIN = resolve('dist/cli/main.js');

export const OPS_USER = 'cam01';
export const OPS_PASSWORD = 'drain pw';

let hash: Promise<string> | undefined;

/** The bridge CLI as a child process (`serve --config`), on loopback against the test run's S3. */
export class CliBridge {
  private output = '';
  readonly exited: Promise<number | null>;

  private constructor(
    readonly child: ChildProcess,
    readonly bucket: string,
    readonly s3: S3Client,
  ) {
    child.stdout?.on('data', (c: Buffer) => (this.output += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (this.output += c.toString()));
    this.exited = new Promise((r) => child.once('exit', (code) => r(code)));
  }

  ftpPort = 0;
  httpPort = 0;

  /** Everything the process wrote (JSON log lines). */
  get log(): string {
    return this.output;
  }

  /** The parsed JSON log lines. */
  logLines(): Record<string, unknown>[] {
    return this.output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
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
    const child = spawn(process.execPath, ['--openssl-legacy-provider', BIN, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const bridge = new CliBridge(child, bucket, client);
    await new Promise<void>((done, reject) => {
      const timer = setTimeout(() => reject(new Error('bridge did not start: ' + bridge.output)), 20_000);
      const check = () => {
        const lines = bridge.logLines();
        const ftpLine = lines.find((l) => l.msg === 'FTP listening');
        const httpLine = lines.find((l) => l.msg === 'HTTP (metrics, health) listening');
        if (ftpLine && httpLine) {
          clearTimeout(timer);
          bridge.ftpPort = ftpLine.port as number;
          bridge.httpPort = httpLine.port as number;
          done();
        }
      };
      child.stdout?.on('data', check);
      void bridge.exited.then(() => reject(new Error('bridge exited: ' + bridge.output)));
    });
    return bridge;
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
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    this.s3.destroy();
  }
}
