import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import ssh2, { type SFTPWrapper } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, sha256, TestBridge, USER } from '../support/bridge.js';
import { LogLines } from '../support/log-lines.js';
import { run, sftpBatch, sftpConfig, sftpSession, spawnSftp, SshKeys, SSH_OPTIONS } from '../support/sftp.js';

let keys: SshKeys;
let bridge: TestBridge;
let work: string;
let log: LogLines;

beforeAll(async () => {
  keys = await SshKeys.create();
  work = mkdtempSync(join(tmpdir(), 'sftp-transfers-'));
  log = new LogLines();
  bridge = await TestBridge.start({
    proxy: true,
    logStream: log.stream,
    logLevel: 'info',
    accounts: [
      { username: USER, password: PASSWORD, policy: { publicKeys: [keys.clientPublicKey] } },
      // Slow enough to be caught mid-upload: 16 MiB at 2 MiB/s.
      { username: 'slow', password: 'slow-pw', policy: { publicKeys: [keys.clientPublicKey], bandwidth: { uploadKiBps: 2048 } } },
    ],
    config: sftpConfig(keys.hostKey, { writeReorderWindowKiB: 256 }),
  });
}, 60_000);

afterAll(async () => {
  await bridge?.close();
  keys?.remove();
  rmSync(work, { recursive: true, force: true });
});

const login = (user = USER) => ({ port: bridge.sftpPort as number, user, key: keys.clientKey });

const completed = (key: string) =>
  bridge.proxy!.requestsOf('CompleteMultipartUpload').some((r) => r.key === key) || bridge.proxy!.requestsOf('PutObject').some((r) => r.key === key);
const aborted = (key: string) => bridge.proxy!.requestsOf('AbortMultipartUpload').some((r) => r.key === key);

/** An ssh2 SFTP client session as alice (password), for requests no CLI client sends on demand. */
const rawSftp = () => sftpSession(bridge.sftpPort as number, USER, PASSWORD);

const open = (sftp: SFTPWrapper, path: string, flags: 'w' | 'r') =>
  new Promise<Buffer>((resolve, reject) => sftp.open(path, flags, (err, handle) => (err ? reject(err) : resolve(handle))));
/** One WRITE; resolves with the status code (0: OK). */
const writeAt = (sftp: SFTPWrapper, handle: Buffer, data: Buffer, position: number) =>
  new Promise<number>((resolve) => sftp.write(handle, data, 0, data.length, position, (err) => resolve(err ? ((err as { code?: number }).code ?? -1) : 0)));
const closeHandle = (sftp: SFTPWrapper, handle: Buffer) =>
  new Promise<number>((resolve) => sftp.close(handle, (err) => resolve(err ? ((err as { code?: number }).code ?? -1) : 0)));

describe('SFTP transfers', () => {
  it('a multipart-sized file (12 MiB, 5 MiB parts) up and down byte-exact with OpenSSH sftp', async () => {
    const data = randomBytes(12 * 1024 * 1024);
    const local = join(work, 'big.bin');
    writeFileSync(local, data);
    const back = join(work, 'big-back.bin');
    const r = await sftpBatch(login(), [`put ${local} /big.bin`, `get /big.bin ${back}`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(bridge.proxy!.requestsOf('CompleteMultipartUpload').some((q) => q.key === 'big.bin')).toBe(true);
    expect(await bridge.objectHash('big.bin')).toBe(sha256(data));
    expect(sha256(readFileSync(back))).toBe(sha256(data));
  }, 120_000);

  // The ssh2 patch frees socket reads, decrypted packets and WRITE packets as soon as they are
  // spent, differently per cipher class (test/unit/sftp/ssh2-decipher-freeing.test.ts cuts packets
  // at every place): each one end to end.
  it.each(['chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'aes128-ctr', 'aes256-ctr'])('cipher %s: 24 MiB up and down byte-exact, keys renewed every 4 MiB', async (cipher) => {
    const data = randomBytes(24 * 1024 * 1024);
    const name = `cipher-${cipher.replace(/[^a-z0-9]/g, '-')}.bin`;
    const local = join(work, name);
    writeFileSync(local, data);
    const back = join(work, `${name}.back`);
    // Keys renewed every 4 MiB: a new decipher takes over in the middle of a socket read.
    const r = await sftpBatch(login(), [`put ${local} /${name}`, `get /${name} ${back}`], { args: ['-o', `Ciphers=${cipher}`, '-o', 'RekeyLimit=4M'] });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await bridge.objectHash(name)).toBe(sha256(data));
    expect(sha256(readFileSync(back))).toBe(sha256(data));
  }, 120_000);

  it('resume (reput) appends at the end of the file', async () => {
    const full = randomBytes(300_000);
    await bridge.put('resume.bin', full.subarray(0, 100_000));
    const local = join(work, 'resume.bin');
    writeFileSync(local, full);
    const r = await sftpBatch(login(), [`reput ${local} /resume.bin`]);
    expect(r.code).toBe(0);
    expect(await bridge.objectHash('resume.bin')).toBe(sha256(full));
  });

  it('a client killed mid-upload: nothing committed, the multipart upload aborted', async () => {
    const local = join(work, 'killed.bin');
    writeFileSync(local, randomBytes(16 * 1024 * 1024));
    const batch = join(work, 'killed.batch');
    writeFileSync(batch, `put ${local} /killed.bin\n`);
    const child = spawnSftp(login('slow'), batch);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      await expect.poll(() => bridge.proxy!.requestsOf('CreateMultipartUpload').some((q) => q.key === 'killed.bin'), { timeout: 30_000 }).toBe(true);
    } finally {
      child.kill('SIGKILL');
    }
    await exited;
    // The bridge reports the upload failed once it has aborted it.
    await expect.poll(() => log.operation('STOR', '/killed.bin')?.result, { timeout: 30_000 }).toBe('error');
    if (bridge.backend.capabilities.abortMultipartUpload) await expect.poll(() => aborted('killed.bin'), { timeout: 30_000 }).toBe(true);
    expect(completed('killed.bin')).toBe(false);
    expect(await bridge.exists('killed.bin')).toBe(false);
    // Swift's container listings are eventually consistent: the upload's marker may stay listed
    // for a moment after the abort that deleted it.
    if (bridge.backend.capabilities.listMultipartUploads) await expect.poll(() => bridge.pendingUploads(), { timeout: 10_000 }).not.toContain('killed.bin');
  }, 60_000);

  it('pipelined out-of-order writes within the window are put in order', async () => {
    const { sftp, close } = await rawSftp();
    try {
      const chunks = [0, 1, 2, 3].map(() => randomBytes(32 * 1024));
      const handle = await open(sftp, '/ooo.bin', 'w');
      // All sent before any answer: 2, 0, 3, 1.
      const statuses = await Promise.all([2, 0, 3, 1].map((i) => writeAt(sftp, handle, chunks[i] as Buffer, i * 32 * 1024)));
      expect(statuses).toEqual([0, 0, 0, 0]);
      expect(await closeHandle(sftp, handle)).toBe(0);
      expect(await bridge.objectHash('ooo.bin')).toBe(sha256(Buffer.concat(chunks)));
    } finally {
      close();
    }
  });

  it('a write that goes backwards, or beyond the reorder window, fails with OP_UNSUPPORTED and aborts the upload', async () => {
    const { sftp, close } = await rawSftp();
    try {
      const chunk = randomBytes(32 * 1024);
      const back = await open(sftp, '/backwards.bin', 'w');
      expect(await writeAt(sftp, back, chunk, 0)).toBe(0);
      expect(await writeAt(sftp, back, chunk, 0)).toBe(8);
      expect(await writeAt(sftp, back, chunk, 32 * 1024)).not.toBe(0);
      expect(await closeHandle(sftp, back)).not.toBe(0);
      const gap = await open(sftp, '/gap.bin', 'w');
      expect(await writeAt(sftp, gap, chunk, 1024 * 1024)).toBe(8);
      expect(await closeHandle(sftp, gap)).not.toBe(0);
      expect(await bridge.exists('backwards.bin')).toBe(false);
      expect(await bridge.exists('gap.bin')).toBe(false);
    } finally {
      close();
    }
  });

  it('a channel closed before CLOSE commits nothing', async () => {
    const { sftp, close } = await rawSftp();
    const handle = await open(sftp, '/unclosed.bin', 'w');
    expect(await writeAt(sftp, handle, Buffer.from('partial'), 0)).toBe(0);
    close();
    await expect.poll(() => log.operation('STOR', '/unclosed.bin'), { timeout: 30_000 }).toMatchObject({ result: 'error', error: 'ABORTED', protocol: 'sftp' });
    expect(completed('unclosed.bin')).toBe(false);
    expect(await bridge.exists('unclosed.bin')).toBe(false);
  });

  it('shell, exec and port forwarding are refused', async () => {
    const ssh = (extra: string[]) =>
      run('ssh', [...SSH_OPTIONS, '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-i', keys.clientKey, '-p', String(bridge.sftpPort), ...extra, `${USER}@127.0.0.1`, ...(extra.includes('-N') ? [] : ['echo', 'hello'])]);
    const exec = await ssh([]);
    expect(exec.code).not.toBe(0);
    expect(exec.stdout).not.toContain('hello');
    const forward = await ssh(['-N', '-o', 'ExitOnForwardFailure=yes', '-R', '127.0.0.1:0:127.0.0.1:9']);
    expect(forward.code).not.toBe(0);
  });
});

describe('SFTP and FTP share the brute-force guard', () => {
  it('failed SFTP passwords get the address banned from FTP too', async () => {
    const guarded = await TestBridge.start({
      config: sftpConfig(keys.hostKey),
      ftp: { bruteForce: { maxFailures: 2, windowSeconds: 300, banSeconds: 300 } },
    });
    try {
      for (let i = 0; i < 2; i++) {
        const r = await sftpBatch({ port: guarded.sftpPort as number, user: USER, password: 'wrong' }, ['ls /']);
        expect(r.code).not.toBe(0);
      }
      // FTP from the same address: 421 at connect, then closed.
      const socket = connect(guarded.port, '127.0.0.1');
      let text = '';
      socket.on('data', (c: Buffer) => (text += c.toString()));
      await new Promise((resolve) => socket.once('close', resolve));
      expect(text).toBe('421 Too many failed logins; try again later\r\n');
      const again = await sftpBatch({ port: guarded.sftpPort as number, user: USER, password: PASSWORD }, ['ls /']);
      expect(again.code).not.toBe(0);
    } finally {
      await guarded.close();
    }
  }, 60_000);
});

describe('failed authentication attempts on one connection', () => {
  it('are bounded at 6 (MaxAuthTries), then the connection is closed; they count toward the brute-force ban', async () => {
    const guarded = await TestBridge.start({
      config: sftpConfig(keys.hostKey),
      ftp: { loginFailureDelayMs: 50, bruteForce: { maxFailures: 7, windowSeconds: 300, banSeconds: 300 } },
    });
    try {
      const failedLogins = async () => {
        const text = await (await fetch(`http://127.0.0.1:${guarded.httpPort}/metrics`)).text();
        return Number(/^ftp_logins_total\{result="failed",protocol="sftp"\} (\d+)/m.exec(text)?.[1] ?? 0);
      };
      /** One connection that offers up to `tries` wrong passwords; resolves how many it sent once the connection is closed. */
      const wrongPasswords = async (tries: number) => {
        let asked = 0;
        const client = new ssh2.Client();
        client.on('error', () => undefined);
        const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
        client.connect({
          host: '127.0.0.1',
          port: guarded.sftpPort,
          username: USER,
          hostVerifier: () => true,
          readyTimeout: 60_000,
          authHandler: (_methodsLeft, _partial, next) => {
            asked++;
            next((asked > tries ? false : { type: 'password', username: USER, password: `wrong-${asked}` }) as never);
          },
        });
        await closed;
        return asked;
      };
      // A client that never stops trying (bounded here at 20).
      const asked = await wrongPasswords(20);
      expect(await failedLogins()).toBe(6);
      expect(asked).toBeLessThanOrEqual(7); // the 7th may be sent before the disconnect arrives; it is neither answered nor counted
      // The 6 counted toward the guard: one more failure (7 = maxFailures) bans the address, from FTP too.
      await wrongPasswords(1);
      expect(await failedLogins()).toBe(7);
      const socket = connect(guarded.port, '127.0.0.1');
      let text = '';
      socket.on('data', (c: Buffer) => (text += c.toString()));
      await new Promise((resolve) => socket.once('close', resolve));
      expect(text).toBe('421 Too many failed logins; try again later\r\n');
    } finally {
      await guarded.close();
    }
  }, 60_000);
});

describe('SFTP during a graceful drain', () => {
  it('an upload in flight runs to its commit; new connections are refused', async () => {
    const draining = await TestBridge.start({
      proxy: true,
      accounts: [{ username: 'slow', password: 'slow-pw', policy: { publicKeys: [keys.clientPublicKey], bandwidth: { uploadKiBps: 2048 } } }],
      config: { ...sftpConfig(keys.hostKey), shutdown: { drainTimeoutSeconds: 60 } },
    });
    try {
      const data = randomBytes(8 * 1024 * 1024);
      const local = join(work, 'drained.bin');
      writeFileSync(local, data);
      const batch = join(work, 'drained.batch');
      writeFileSync(batch, `put ${local} /drained.bin\n`);
      const login = { port: draining.sftpPort as number, user: 'slow', key: keys.clientKey };
      const child = spawnSftp(login, batch);
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      // The upload is under way: its first part went to S3.
      await expect.poll(() => draining.proxy!.requestsOf('CreateMultipartUpload').some((q) => q.key === 'drained.bin'), { timeout: 30_000 }).toBe(true);
      const drained = draining.drain();
      const refused = await sftpBatch(login, ['ls /']);
      expect(refused.code).not.toBe(0);
      expect(await exited).toBe(0);
      await drained;
      expect(await draining.objectHash('drained.bin')).toBe(sha256(data));
    } finally {
      await draining.close();
    }
  }, 90_000);
});
