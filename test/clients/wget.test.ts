import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBridge } from '../support/bridge.js';
import { runProgram } from '../support/clients.js';
import { expectSameTree, makeTree, readTree, scratch } from './helpers.js';

/** wget -m: mirrors a directory tree over FTP by parsing LIST. wget only retrieves. */
let bridge: TestBridge;
beforeAll(async () => {
  bridge = await TestBridge.start();
});
afterAll(async () => {
  await bridge?.close();
});

describe('wget -m', () => {
  it('mirrors a tree stored in S3 byte for byte', async () => {
    const src = scratch('wget-src');
    // Every directory holds a file of its own: s3rver omits a common prefix that holds only deeper ones.
    const tree = makeTree(src, { 'day 1/a.jpg': 1000, 'day 1/b.jpg': 250_000, 'day 2/d.txt': 9, 'day 2/deeper/c.mp4': 1_200_000, 'top.txt': 3 });
    for (const [rel, data] of tree) await bridge.put(`site/${rel}`, data);
    const dst = scratch('wget-dst');
    const res = await runProgram('wget', ['-m', '-nH', '--no-verbose', '-P', dst, bridge.url('/site/')], { timeoutMs: 60_000 });
    expect(res.code, res.stderr).toBe(0);
    const got = readTree(join(dst, 'site'));
    got.delete('.listing');
    for (const rel of [...got.keys()]) if (rel.endsWith('/.listing')) got.delete(rel);
    expectSameTree(got, tree);
  });
});
