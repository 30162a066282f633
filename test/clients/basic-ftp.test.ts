import { Client } from 'basic-ftp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER } from '../support/bridge.js';
import { expectSameTree, expectTreeInS3, makeTree, readTree, scratch } from './helpers.js';

/** basic-ftp (Node): uploadFromDir, list, downloadToDir, rename, remove. */
let bridge: TestBridge;
beforeAll(async () => {
  bridge = await TestBridge.start();
});
afterAll(async () => {
  await bridge?.close();
});

describe('basic-ftp', () => {
  it('uploads a tree, lists it (MLSD), downloads it, renames and deletes; S3 holds the bytes', async () => {
    const src = scratch('basic-src');
    const tree = makeTree(src, { 'a.txt': 10, 'sub dir/b.bin': 300_000, 'sub dir/ñ/c.bin': 6 * 1024 * 1024 });
    const client = new Client(30_000);
    try {
      await client.access({ host: '127.0.0.1', port: bridge.port, user: USER, password: PASSWORD });
      await client.ensureDir('/bf');
      await client.uploadFromDir(src);
      await expectTreeInS3(bridge, 'bf/', tree);

      const listing = await client.list('/bf/sub dir');
      expect(listing.map((e) => [e.name, e.isDirectory, e.isDirectory ? 0 : e.size]).sort()).toEqual([
        ['b.bin', false, 300_000],
        ['ñ', true, 0],
      ]);

      const dst = scratch('basic-dst');
      await client.downloadToDir(dst, '/bf');
      expectSameTree(readTree(dst), tree);

      await client.rename('/bf/a.txt', '/bf/renamed.txt');
      await client.remove('/bf/sub dir/b.bin');
      await client.removeDir('/bf/sub dir/ñ');
      const renamed = new Map([['renamed.txt', tree.get('a.txt') as Buffer]]);
      await expectTreeInS3(bridge, 'bf/', renamed);
    } finally {
      client.close();
    }
  });
});
