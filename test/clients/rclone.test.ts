import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER } from '../support/bridge.js';
import { runProgram } from '../support/clients.js';
import { expectTreeInS3, makeTree, scratch } from './helpers.js';

/** rclone's ftp backend (MLSD, MFMT-less): copy, check, lsf, moveto, deletefile. */
let bridge: TestBridge;
let remote: string;
beforeAll(async () => {
  bridge = await TestBridge.start();
  const obscured = await runProgram('rclone', ['obscure', PASSWORD]);
  remote = `:ftp,host=127.0.0.1,port=${bridge.port},user=${USER},pass=${obscured.stdout.toString().trim()}:`;
});
afterAll(async () => {
  await bridge?.close();
});

const rclone = (...args: string[]) => runProgram('rclone', ['--config', '/dev/null', '--low-level-retries', '1', '--retries', '1', ...args], { timeoutMs: 120_000 });

describe('rclone ftp backend', () => {
  it('copies a tree, checks it by content, lists, renames and deletes; S3 holds the bytes', async () => {
    const src = scratch('rclone');
    const tree = makeTree(src, { 'a.txt': 5, 'photos/b.jpg': 400_000, 'photos/été/c.jpg': 2_000_000 });
    const copy = await rclone('copy', src, `${remote}rc`);
    expect(copy.code, copy.stderr).toBe(0);
    await expectTreeInS3(bridge, 'rc/', tree);

    const check = await rclone('check', '--download', src, `${remote}rc`);
    expect(check.code, check.stderr).toBe(0);

    const lsf = await rclone('lsf', '-R', '--format', 'ps', '--dump', 'headers', `${remote}rc`);
    expect(lsf.code, lsf.stderr).toBe(0);
    // rclone (jlaffaye/ftp) lists with MLSD once FEAT announces MLST.
    expect(lsf.stderr).toMatch(/MLSD/);
    expect(lsf.stdout.toString().trim().split('\n').sort()).toEqual(
      ['a.txt;5', 'photos/;-1', 'photos/b.jpg;400000', 'photos/été/;-1', 'photos/été/c.jpg;2000000'].sort(),
    );

    const mv = await rclone('moveto', `${remote}rc/a.txt`, `${remote}rc/moved.txt`);
    expect(mv.code, mv.stderr).toBe(0);
    const del = await rclone('deletefile', `${remote}rc/photos/b.jpg`);
    expect(del.code, del.stderr).toBe(0);
    const rest = new Map([
      ['moved.txt', tree.get('a.txt') as Buffer],
      ['photos/été/c.jpg', tree.get('photos/été/c.jpg') as Buffer],
    ]);
    await expectTreeInS3(bridge, 'rc/', rest);
  }, 180_000);
});
