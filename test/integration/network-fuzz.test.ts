import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER } from '../support/bridge.js';
import { RawFtp } from '../support/clients.js';

// A full collection for this test only: the garbage of millions of parsed commands is not what the
// bound is about. `global.gc` stays undefined, so the bridge in this process does not collect on its
// own (src/server/memory-relief.ts) as it would with --expose-gc.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

/**
 * A fuzzed control channel: nothing a client sends may crash the bridge (it runs in this process,
 * so a crash fails the file) or make it hold memory in proportion to what was sent.
 */
let bridge: TestBridge;
beforeAll(async () => {
  bridge = await TestBridge.start({ ftp: { loginTimeoutSeconds: 30 } });
});
afterAll(async () => {
  await bridge?.close();
});

function raw(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(bridge.port, '127.0.0.1');
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

async function stillServing(): Promise<void> {
  const ftp = await RawFtp.connect(bridge.port);
  await ftp.login(USER, PASSWORD);
  expect((await ftp.command('NOOP')).code).toBe(200);
  ftp.close();
}

describe('fuzzed control channel', () => {
  it('random bytes (with and without line ends) on 20 connections', async () => {
    for (let i = 0; i < 20; i++) {
      const s = await raw();
      s.on('error', () => {});
      s.resume();
      for (let j = 0; j < 10; j++) s.write(randomBytes(1 + Math.floor(Math.random() * 20_000)));
      s.write('\r\n');
      await sleep(20);
      s.destroy();
    }
    await stillServing();
  });

  it('a 100 KB line gets one 500 and is discarded to its end; the next command runs (stock ftp-srv runs the tail as a command)', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    ftp.socket.write('X'.repeat(100_000) + 'NOOP\r\nSYST\r\n');
    const first = await ftp.reply();
    expect(first.code).toBe(500);
    expect(first.text).toMatch(/too long/);
    expect((await ftp.reply()).code).toBe(215);
    // Also when the long line arrives in one piece with its line end (over 8192 bytes).
    ftp.socket.write('NOOP ' + 'y'.repeat(9000) + '\r\nNOOP\r\n');
    expect((await ftp.reply()).code).toBe(500);
    expect((await ftp.reply()).code).toBe(200);
    ftp.close();
  });

  it('NUL bytes and control characters in commands and arguments', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.login(USER, PASSWORD);
    for (const line of ['\0\0\0', 'NO\0OP', 'CWD \0/etc', 'MKD a\0b', 'STOR \0', 'RETR \x01\x02\x7f', 'USER \0', 'PORT \0', 'EPRT \0|1|\0|', 'EPSV \0']) {
      ftp.send(line);
      const r = await ftp.reply();
      expect(r.code, JSON.stringify(line)).toBeGreaterThanOrEqual(200);
    }
    expect((await ftp.command('NOOP')).code).toBe(200);
    ftp.close();
    await stillServing();
  });

  it('5,000 pipelined commands in one write are all answered, in order', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.login(USER, PASSWORD);
    const n = 5000;
    ftp.socket.write(Array.from({ length: n }, (_, i) => (i % 2 ? 'NOOP' : 'SYST')).join('\r\n') + '\r\n');
    for (let i = 0; i < n; i++) expect((await ftp.reply()).code).toBe(i % 2 ? 200 : 215);
    ftp.close();
  });

  it('a client that pipelines without reading replies is throttled: memory stays bounded', async () => {
    const s = await raw();
    s.on('error', () => {});
    s.pause(); // never read: replies pile up in the kernel buffers, then the bridge stops reading
    collect();
    const before = process.memoryUsage().rss;
    const chunk = Buffer.from('NOOP\r\n'.repeat(10_000)); // 60 KB
    let written = 0;
    const deadline = Date.now() + 5000;
    // 60 MB of NOOPs: their replies (13 bytes each) exceed any kernel socket buffers (tcp_rmem max
    // 32 MiB here), so the bridge must stop reading, whatever the machine's speed.
    while (Date.now() < deadline && written < 1000 * chunk.length) {
      if (!s.write(chunk)) {
        await Promise.race([new Promise((r) => s.once('drain', r)), sleep(200)]);
        s.removeAllListeners('drain');
      }
      written += chunk.length;
    }
    await sleep(500);
    collect();
    const grown = process.memoryUsage().rss - before;
    // The bridge must not read it all: either the client still holds what the kernel did not take,
    // or back-pressure kept it from even writing all 60 MB before the deadline.
    expect(s.writableLength > 0 || written < 1000 * chunk.length).toBe(true);
    expect(grown).toBeLessThan(150 * 1024 * 1024);
    s.destroy();
    await stillServing();
  });
});
