import { execFile, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { StartedBackend } from './s3-backends.js';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** A free port on loopback (moto's server cannot be told to pick one). */
function freePort(): Promise<number> {
  return new Promise((done, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

/**
 * moto's S3 server (in memory, on loopback), found by infra/fetch-moto.sh. It keeps object tags,
 * SSE headers and storage classes, which s3rver and Swift's s3api do not. Its limits: every
 * multipart upload reports the same fixed `Initiated` date (2010), so an age-based sweep sees all of
 * them as old; CopyObject ignores x-amz-copy-source-if-match.
 */
export async function startMoto(): Promise<StartedBackend> {
  const { stdout } = await run('bash', [join(ROOT, 'infra/fetch-moto.sh')], { timeout: 120_000 });
  const python = stdout.trim().split('\n').pop() as string;
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child = spawn(python, ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
    });
    let output = '';
    child.stderr.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const endpoint = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    let up = false;
    while (!up && child.exitCode === null && Date.now() < deadline) {
      up = await fetch(`${endpoint}/`).then(
        (res) => res.ok,
        () => false,
      );
      if (!up) await sleep(200);
    }
    if (up) {
      return {
        s3: {
          backend: 'moto',
          endpoint,
          region: 'us-east-1',
          accessKeyId: 'moto',
          secretAccessKey: 'moto',
          capabilities: { abortMultipartUpload: true, listMultipartUploads: true, uploadPartCopy: true, copySourceIfMatch: false },
        },
        async stop() {
          child.kill('SIGTERM');
          await exited;
        },
      };
    }
    child.kill('SIGKILL');
    await exited;
    // Another process may have taken the port between freePort() and moto's bind.
    if (attempt >= 3 || Date.now() >= deadline) throw new Error(`moto's S3 server did not start on ${endpoint}: ${output}`);
  }
}
