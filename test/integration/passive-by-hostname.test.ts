import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER, sha256 } from '../support/bridge.js';
import { RawFtp, curl } from '../support/clients.js';

// ftp.passive.byHostname is how the Helm chart's perPod pods, which share one config, each announce
// their own address and range: the entry for this host's name must replace both, end to end.
describe('ftp.passive.byHostname', () => {
  it("this host's entry sets the announced address and the range; transfers go through it", async () => {
    const block = 10000 + Math.floor(Math.random() * 2000) * 10;
    const bridge = await TestBridge.start({
      ftp: {
        passive: {
          // Unreachable (TEST-NET-1): a client told this address could not connect.
          address: '192.0.2.10',
          portMin: block,
          portMax: block + 4,
          maxPerClient: 5,
          byHostname: {
            [hostname()]: { address: '127.0.0.1', portMin: block + 5, portMax: block + 9 },
            'other-pod-1': { address: '192.0.2.11', portMin: block, portMax: block + 4 },
          },
        },
      },
    });
    try {
      const ftp = await RawFtp.connect(bridge.port);
      await ftp.login(USER, PASSWORD);
      for (let i = 0; i < 10; i++) {
        const reply = await ftp.command('PASV');
        const m = /\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(reply.text);
        expect(m, reply.text).not.toBeNull();
        const n = (m as RegExpExecArray).slice(1).map(Number);
        expect(n.slice(0, 4).join('.')).toBe('127.0.0.1');
        const port = (n[4] ?? 0) * 256 + (n[5] ?? 0);
        expect(port).toBeGreaterThanOrEqual(block + 5);
        expect(port).toBeLessThanOrEqual(block + 9);
      }
      ftp.close();
      // curl over PASV (the announced address) and EPSV, bytes compared through S3.
      const body = randomBytes(256 * 1024);
      const up = await curl(['--disable-epsv', '-T', '-', bridge.url('/by-hostname.bin')], body);
      expect(up.stderr).toBe('');
      expect(await bridge.objectHash('by-hostname.bin')).toBe(sha256(body));
      const down = await curl([bridge.url('/by-hostname.bin')]);
      expect(sha256(down.stdout)).toBe(sha256(body));
    } finally {
      await bridge.close();
    }
  });
});
