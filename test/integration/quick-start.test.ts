import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../support/bridge.js';
import { spawnCli } from '../support/cli-process.js';
import { curl } from '../support/clients.js';

const freePort = () =>
  new Promise<number>((done) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => done(port));
    });
  });

/** The README's first command: `npm start` runs `ftp-s3-bridge dev` on an embedded s3rver. */
describe('quick start (npm start)', () => {
  it('serves the dev account on the embedded S3, storing under the data directory', async () => {
    const data = mkdtempSync(join(tmpdir(), 'ftp-s3-bridge-dev-'));
    const port = await freePort();
    const httpPort = await freePort();
    const dev = spawnCli(['dev', '--data', data, '--port', String(port), '--http-port', String(httpPort)]);
    try {
      await dev.waitForOutput('FTP listening', 30_000);
      expect(dev.output).toContain(`ftp://dev:dev@127.0.0.1:${port}/`);
      // The ops port listens on loopback only, like the FTP port.
      // eslint-disable-next-line no-control-regex
      expect(dev.output.replace(/\x1b\[[0-9;]*m/g, '')).toMatch(new RegExp(`HTTP \\(metrics, health\\) listening\\n(?: +\\w+: .*\\n)*? +address: "127\\.0\\.0\\.1"\\n +port: ${httpPort}\\n`));
      expect((await fetch(`http://127.0.0.1:${httpPort}/healthz`)).status).toBe(200);
      const body = randomBytes(64 * 1024);
      const up = await curl(['-T', '-', `ftp://dev:dev@127.0.0.1:${port}/hello.bin`], body);
      expect(up.code).toBe(0);
      const down = await curl([`ftp://dev:dev@127.0.0.1:${port}/hello.bin`]);
      expect(sha256(down.stdout)).toBe(sha256(body));
      expect(readdirSync(join(data, 'ftp-s3-bridge'))).toContain('hello.bin._S3rver_object');
    } finally {
      dev.process.kill('SIGTERM');
      const code = await dev.exited;
      rmSync(data, { recursive: true, force: true });
      expect(code).toBe(0);
    }
  });

  it('the ops port in use: one line naming it and --http-port, exit 1, nothing left running', async () => {
    const data = mkdtempSync(join(tmpdir(), 'ftp-s3-bridge-dev-'));
    const holder = createServer();
    await new Promise<void>((done) => holder.listen(0, '127.0.0.1', done));
    const taken = (holder.address() as AddressInfo).port;
    const port = await freePort();
    const dev = spawnCli(['dev', '--data', data, '--port', String(port), '--http-port', String(taken)]);
    try {
      expect(await dev.exited).toBe(1);
      const lines = dev.output.split('\n').filter((l) => l.includes('in use'));
      expect(lines).toEqual([`ftp-s3-bridge dev: the ops port 127.0.0.1:${taken} (metrics, health) is in use; pick another with --http-port N (0: any free port)`]);
      expect(dev.output).not.toMatch(/FATAL|EADDRINUSE|at .*\.js:\d+/);
    } finally {
      dev.process.kill('SIGKILL');
      holder.close();
      rmSync(data, { recursive: true, force: true });
    }
  }, 60_000);
});
