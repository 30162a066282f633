import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../support/bridge.js';
import { spawnCli } from '../support/cli-process.js';
import { curl } from '../support/clients.js';
import { run, sftpBatch } from '../support/sftp.js';

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
    const sftpPort = await freePort();
    const dev = spawnCli(['dev', '--data', data, '--port', String(port), '--http-port', String(httpPort), '--sftp-port', String(sftpPort)]);
    let exitCode: number | null;
    try {
      await dev.waitForOutput('SFTP listening', 30_000);
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
      // SFTP on the same account and storage, with the host key made under the data directory.
      const keyFile = join(data, 'ssh_host_ed25519_key');
      const fingerprint = (await run('ssh-keygen', ['-l', '-f', keyFile])).stdout.split(' ')[1] as string;
      expect(fingerprint).toMatch(/^SHA256:/);
      expect(dev.output).toContain(`sftp -P ${sftpPort} dev@127.0.0.1   (password "dev"; host key ${fingerprint}, new, ${keyFile})`);
      const back = join(data, 'back.bin');
      const got = await sftpBatch({ port: sftpPort, user: 'dev', password: 'dev' }, [`get /hello.bin ${back}`]);
      expect(got.code).toBe(0);
      expect(sha256(readFileSync(back))).toBe(sha256(body));
    } finally {
      dev.process.kill('SIGTERM');
      exitCode = await dev.exited;
      rmSync(data, { recursive: true, force: true });
    }
    // Checked after the finally block, so that a failure above is the one reported, not the exit
    // of a process stopped before it was up.
    expect(exitCode, `exit code after SIGTERM; output:\n${dev.output}`).toBe(0);
  });

  it('a port in use: one line naming it and the flag to change it, exit 1', async () => {
    const data = mkdtempSync(join(tmpdir(), 'ftp-s3-bridge-dev-'));
    const holder = createServer();
    await new Promise<void>((done) => holder.listen(0, '127.0.0.1', done));
    const taken = (holder.address() as AddressInfo).port;
    const free = await freePort();
    // The ops port is tried first, so its case shows nothing else; ftp-srv logs its own listen error
    // (component ftp-srv) before the FTP port's line.
    const cases = [
      { args: ['--port', String(free), '--http-port', String(taken), '--sftp-port', '0'], line: `ftp-s3-bridge dev: the ops port 127.0.0.1:${taken} (metrics, health) is in use; pick another with --http-port N (0: any free port)`, quiet: true },
      { args: ['--port', String(taken), '--http-port', '0', '--sftp-port', '0'], line: `ftp-s3-bridge dev: the FTP port 127.0.0.1:${taken} is in use; pick another with --port N`, quiet: false },
      { args: ['--port', String(free), '--http-port', '0', '--sftp-port', String(taken)], line: `ftp-s3-bridge dev: the SFTP port 127.0.0.1:${taken} is in use; pick another with --sftp-port N (0: any free port)`, quiet: true },
    ];
    try {
      for (const { args, line, quiet } of cases) {
        const dev = spawnCli(['dev', '--data', data, ...args]);
        try {
          // It exits by itself: nothing it started keeps it running.
          expect(await dev.exited).toBe(1);
          expect(dev.output.split('\n').filter((l) => l.startsWith('ftp-s3-bridge dev:'))).toEqual([line]);
          expect(dev.output).not.toContain('FATAL');
          if (quiet) expect(dev.output).not.toMatch(/EADDRINUSE|at .*\.js:\d+/);
        } finally {
          dev.kill();
        }
      }
    } finally {
      holder.close();
      rmSync(data, { recursive: true, force: true });
    }
  }, 90_000);
});
