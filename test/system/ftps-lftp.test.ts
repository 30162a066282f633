import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER, sha256 } from '../support/bridge.js';
import { FtpReplyQueue, runProgram } from '../support/clients.js';
import { certDir, startFtpsBridge, type FtpsBridge, type TestCertificate } from '../support/tls.js';

// FTPS with lftp (GnuTLS), Debian's `lftp`; the Node-only FTPS tests are in test/integration/ftps.test.ts.

const dir = certDir();
let ftps: FtpsBridge;
let bridge: TestBridge;
let certA: TestCertificate;
let certB: TestCertificate;
/** The files the bridge is configured with; tests swap their content. */
let live: FtpsBridge['live'];
const implicitPort = () => ftps.implicitPort();
const localFile = (name: string, size: number) => ftps.localFile(name, size);

beforeAll(async () => {
  ftps = await startFtpsBridge(dir, [{ username: USER, password: PASSWORD }]);
  ({ bridge, certA, certB, live } = ftps);
});
afterAll(async () => {
  await bridge?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The fingerprint of the certificate the explicit port presents after AUTH TLS. */
async function explicitFingerprint(): Promise<string> {
  const socket = netConnect({ host: '127.0.0.1', port: bridge.port });
  const replies = new FtpReplyQueue();
  socket.on('data', (c: Buffer) => replies.push(c));
  try {
    expect((await replies.next(10_000)).code).toBe(220);
    socket.write('AUTH TLS\r\n');
    expect((await replies.next(10_000)).code).toBe(234);
    const secure: TLSSocket = tlsConnect({ socket, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
    const fingerprint = secure.getPeerX509Certificate()?.fingerprint256 ?? '';
    secure.destroy();
    return fingerprint;
  } finally {
    socket.destroy();
  }
}

async function waitForFingerprint(expected: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if ((await explicitFingerprint()) === expected) return;
    if (Date.now() > deadline) throw new Error(`still presenting another certificate than ${expected}`);
    await sleep(200);
  }
}

/** lftp puts a file and gets it back; checked in S3 and locally by hash. */
async function lftpRoundTrip(url: string, name: string, mode: 'passive' | 'active'): Promise<void> {
  const { path, data } = localFile(`${name}.src`, 400_000);
  const back = join(dir, `${name}.back`);
  const r = await runProgram(
    'lftp',
    [
      '-c',
      [
        'set ftp:ssl-force true',
        'set ftp:ssl-protect-data true',
        'set ssl:verify-certificate no',
        `set ftp:passive-mode ${mode === 'passive' ? 'on' : 'off'}`,
        'set net:max-retries 1',
        'set net:timeout 20',
        `open -u ${USER},'${PASSWORD}' ${url}`,
        `put ${path} -o ${name}.bin`,
        `get ${name}.bin -o ${back}`,
      ].join('; '),
    ],
    { timeoutMs: 60_000 },
  );
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(await bridge.objectHash(`${name}.bin`)).toBe(sha256(data));
  expect(sha256(readFileSync(back))).toBe(sha256(data));
}

describe('lftp over FTPS', () => {
  it.each(['passive', 'active'] as const)('explicit (ftp:ssl-force) stores and retrieves in %s mode', async (mode) => {
    await lftpRoundTrip(`ftp://127.0.0.1:${bridge.port}`, `lftp-explicit-${mode}`, mode);
  });

  // curl 7.88 cannot do active mode on an implicit FTPS connection: lftp covers it.
  it.each(['passive', 'active'] as const)('implicit (ftps://) stores and retrieves in %s mode', async (mode) => {
    await lftpRoundTrip(`ftps://127.0.0.1:${implicitPort()}`, `lftp-implicit-${mode}`, mode);
  });

  it('keeps transferring on a session opened before a certificate swap (its data connections resume the TLS session)', async () => {
    await waitForFingerprint(certA.fingerprint256);
    const { path, data } = localFile('lftp-reload.src', 200_000);
    const swap = join(dir, 'swap.sh');
    const log = join(dir, 'lftp-reload.log');
    writeFileSync(
      swap,
      [
        `cp ${certB.key} ${live.key}.tmp && cp ${certB.cert} ${live.cert}.tmp`,
        `mv ${live.key}.tmp ${live.key} && mv ${live.cert}.tmp ${live.cert}`,
        'sleep 2.5',
      ].join('\n'),
    );
    try {
      const r = await runProgram(
        'lftp',
        [
          '-c',
          [
            `debug -o ${log}`,
            'set ftp:ssl-force true',
            'set ftp:ssl-protect-data true',
            'set ssl:verify-certificate no',
            'set net:max-retries 1',
            'set net:timeout 20',
            `open -u ${USER},'${PASSWORD}' ftp://127.0.0.1:${bridge.port}`,
            `put ${path} -o lftp-reload-1.bin`,
            `!sh ${swap}`,
            `put ${path} -o lftp-reload-2.bin`,
          ].join('\n'),
        ],
        { timeoutMs: 60_000 },
      );
      expect(r.stderr).toBe('');
      // lftp retries a failed transfer on a new control connection; that must not have been needed.
      const transcript = readFileSync(log, 'utf8');
      expect(transcript.match(/Connecting to /g)).toHaveLength(1);
      expect(transcript).not.toMatch(/<--- 4\d\d/);
      expect(await explicitFingerprint()).toBe(certB.fingerprint256);
      expect(await bridge.objectHash('lftp-reload-1.bin')).toBe(sha256(data));
      expect(await bridge.objectHash('lftp-reload-2.bin')).toBe(sha256(data));
    } finally {
      writeFileSync(live.cert, readFileSync(certA.cert));
      writeFileSync(live.key, readFileSync(certA.key));
      await waitForFingerprint(certA.fingerprint256);
    }
  });
});
