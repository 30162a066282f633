import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER, sha256 } from '../support/bridge.js';
import { runProgram } from '../support/clients.js';
import { expectSameTree, expectTreeInS3, readTree, scratch, makeTree } from './helpers.js';

/**
 * lftp (prefers MLSD, sends OPTS UTF8 ON, FEAT-driven): mirror -R of 200 files in nested directories
 * whose names have spaces and non-ASCII characters, mirror back, byte-for-byte diff; then mv and rm.
 */
let bridge: TestBridge;
beforeAll(async () => {
  bridge = await TestBridge.start();
});
afterAll(async () => {
  await bridge?.close();
});

const lftp = (script: string) =>
  runProgram(
    'lftp',
    ['-u', `${USER},${PASSWORD}`, '-p', String(bridge.port), '-e', `set ftp:ssl-allow no; set net:max-retries 1; set cmd:fail-exit yes; ${script}; quit`, '127.0.0.1'],
    { timeoutMs: 240_000 },
  );

/** 200 files over 3 levels; every directory also holds files of its own (see wget.test.ts on s3rver). */
function tree200(): Record<string, number> {
  const dirs = ['', 'Kamera 1', 'Kamera 1/Tag 01', 'Kamera 1/Tag 02 ä', 'Büro/Scans (Farbe)', 'Büro', '日本/写真', '日本', 'x y z/deep dir/deeper ñ', 'x y z/deep dir', 'x y z'];
  const files: Record<string, number> = {};
  for (let i = 0; i < 200; i++) {
    const dir = dirs[i % dirs.length] as string;
    const name = `${i % 3 === 0 ? 'bild ' : 'file-'}${i}${i % 5 === 0 ? ' é' : ''}.${i % 2 ? 'jpg' : 'txt'}`;
    files[(dir ? dir + '/' : '') + name] = i % 50 === 0 ? 600_000 + i : 100 + i * 37;
  }
  return files;
}

describe('lftp', () => {
  it('reads a file in active mode (PORT)', async () => {
    const body = randomBytes(50_000);
    await bridge.put('lftp-active.bin', body);
    const r = await lftp('set ftp:passive-mode off; cat lftp-active.bin');
    expect(r.code).toBe(0);
    expect(sha256(r.stdout)).toBe(sha256(body));
  });

  it('mirror -R then mirror back: 200 files with spaces and non-ASCII names, identical byte for byte and in S3', async () => {
    const src = scratch('lftp-src');
    const tree = makeTree(src, tree200());
    const up = await lftp(`mirror -R --parallel=4 "${src}" "/mirror"`);
    expect(up.code, up.stderr).toBe(0);
    await expectTreeInS3(bridge, 'mirror/', tree);

    const dst = scratch('lftp-dst');
    const down = await lftp(`mirror --parallel=4 "/mirror" "${dst}/mirror"`);
    expect(down.code, down.stderr).toBe(0);
    expectSameTree(readTree(`${dst}/mirror`), tree);
    const diff = await runProgram('diff', ['-r', src, `${dst}/mirror`]);
    expect(diff.code, diff.stdout.toString()).toBe(0);

    const ls = await lftp('debug 5; cd "/mirror/日本/写真"; cls -1');
    expect(ls.code, ls.stderr).toBe(0);
    // lftp lists with MLSD once FEAT announces MLST.
    expect(ls.stderr).toMatch(/---> MLSD/);
    const expected = [...tree.keys()].filter((k) => k.startsWith('日本/写真/')).map((k) => k.slice('日本/写真/'.length));
    expect(ls.stdout.toString().trim().split('\n').sort()).toEqual(expected.sort());

    const [first, second] = expected;
    const edit = await lftp(`cd "/mirror/日本/写真"; mv "${first}" "umbenannt ü.jpg"; rm "${second}"`);
    expect(edit.code, edit.stderr).toBe(0);
    const after = new Map([...tree].filter(([k]) => k !== `日本/写真/${first}` && k !== `日本/写真/${second}`));
    after.set('日本/写真/umbenannt ü.jpg', tree.get(`日本/写真/${first}`) as Buffer);
    await expectTreeInS3(bridge, 'mirror/', after);
  }, 240_000);
});
