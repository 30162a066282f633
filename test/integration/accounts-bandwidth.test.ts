import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, sha256, TestBridge, USER } from '../support/bridge.js';
import { python } from '../support/clients.js';

const MiB = 1024 * 1024;

/**
 * python ftplib: logs in `sessions` connections first, then runs the transfer on all of them at
 * once. Prints the seconds the data took, first byte to last byte (the store's time to first byte
 * and the commit after the last byte do not count; a small send buffer keeps the kernel from
 * absorbing much of an upload), and
 * each transfer's result (226 reply or SHA-256 of the download).
 */
const PY_TIMED = String.raw`
import ftplib, sys, io, os, time, hashlib, threading, socket
port, user, password, op, name, sessions = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
conns = []
for _ in range(sessions):
    f = ftplib.FTP(); f.connect('127.0.0.1', port, timeout=30); f.login(user, password); conns.append(f)
data = open(sys.argv[7], 'rb').read() if op == 'STOR' else b''
results = [None] * sessions
firsts = []
lasts = []
def run(i):
    if op == 'STOR':
        conn = conns[i].transfercmd('STOR ' + name)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
        firsts.append(time.monotonic())
        for off in range(0, len(data), 65536): conn.sendall(data[off:off + 65536])
        lasts.append(time.monotonic())
        conn.close()
        results[i] = conns[i].voidresp()
    else:
        buf = io.BytesIO()
        def chunk(b):
            now = time.monotonic()
            if buf.tell() == 0: firsts.append(now)
            buf.write(b)
            lasts.append(now)
        conns[i].retrbinary('RETR ' + name, chunk)
        results[i] = hashlib.sha256(buf.getvalue()).hexdigest()
threads = [threading.Thread(target=run, args=(i,)) for i in range(sessions)]
for t in threads: t.start()
for t in threads: t.join()
print(max(lasts) - min(firsts))
for r in results: print(r)
`;

async function pyTimed(port: number, user: string, password: string, op: 'STOR' | 'RETR', name: string, options: { sessions?: number; file?: string } = {}) {
  const res = await python(PY_TIMED, [String(port), user, password, op, name, String(options.sessions ?? 1), options.file ?? '']);
  const [seconds, ...results] = res.stdout.toString().trim().split('\n');
  if (res.code !== 0) throw new Error(res.stderr.toString());
  return { seconds: Number(seconds), results };
}

describe('bandwidth limits', () => {
  let bridge: TestBridge;
  let dir: string;
  // 8 MiB: what the kernel's socket buffers absorb of an upload (up to ~1 MiB on loopback) stays
  // well inside the 15%.
  const data = randomBytes(8 * MiB);
  beforeAll(async () => {
    bridge = await TestBridge.start({
      accounts: [
        { username: 'slow', password: 'slow-pw', policy: { bandwidth: { uploadKiBps: 2048, downloadKiBps: 2048 } } },
        { username: 'fast', password: 'fast-pw' },
      ],
    });
    dir = mkdtempSync(join(tmpdir(), 'bw-'));
    writeFileSync(join(dir, 'up.bin'), data);
  });
  afterAll(async () => {
    await bridge?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('limits an upload of an account to 2 MiB/s: 8 MiB take 4 s (-15%, +50% for a loaded machine)', async () => {
    const up = await pyTimed(bridge.port, 'slow', 'slow-pw', 'STOR', 'up.bin', { file: join(dir, 'up.bin') });
    expect(up.results[0]).toMatch(/^226/);
    expect(await bridge.objectHash('up.bin')).toBe(sha256(data));
    expect(up.seconds).toBeGreaterThan(4 * 0.85);
    expect(up.seconds).toBeLessThan(4 * 1.5);
  });

  it('limits a download of an account to 2 MiB/s: 8 MiB take 4 s (-15%, +50% for a loaded machine); other accounts are not limited', async () => {
    await bridge.put('down.bin', data);
    const down = await pyTimed(bridge.port, 'slow', 'slow-pw', 'RETR', 'down.bin');
    expect(down.results).toEqual([sha256(data)]);
    expect(down.seconds).toBeGreaterThan(4 * 0.85);
    expect(down.seconds).toBeLessThan(4 * 1.5);
    const fast = await pyTimed(bridge.port, 'fast', 'fast-pw', 'RETR', 'down.bin');
    expect(fast.results).toEqual([sha256(data)]);
    // unlimited: well under the 4 s the limit would take, with room for a loaded machine
    expect(fast.seconds).toBeLessThan(2);
  });
});

describe('global bandwidth cap', () => {
  it('shares the global ftp.bandwidth cap between sessions: two 2 MiB downloads at once take 2 s at 2 MiB/s', async () => {
    const bridge = await TestBridge.start({ ftp: { bandwidth: { downloadKiBps: 2048 } } });
    try {
      const data = randomBytes(2 * MiB);
      await bridge.put('shared.bin', data);
      const both = await pyTimed(bridge.port, USER, PASSWORD, 'RETR', 'shared.bin', { sessions: 2 });
      expect(both.results).toEqual([sha256(data), sha256(data)]);
      expect(both.seconds).toBeGreaterThan(2 * 0.85);
      expect(both.seconds).toBeLessThan(2 * 1.5);
    } finally {
      await bridge.close();
    }
  });
});
