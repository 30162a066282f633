import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER } from '../support/bridge.js';
import { RawFtp, listText } from '../support/clients.js';

/**
 * MLSD and MLST (RFC 3659 §7) next to LIST and NLST: the three listings of a directory name the
 * same entries; facts follow the RFC (type, size, modify, perm, unique; OPTS MLST selects them).
 */
let bridge: TestBridge;
let ftp: RawFtp;
beforeAll(async () => {
  bridge = await TestBridge.start();
  for (const key of ['dir/a.jpg', 'dir/b c.txt', 'dir/ü.bin', 'dir/sub/x', 'dir/empty/']) await bridge.put(key, key.endsWith('/') ? '' : 'data of ' + key);
  ftp = await RawFtp.connect(bridge.port);
  await ftp.login(USER, PASSWORD);
});
afterAll(async () => {
  ftp?.close();
  await bridge?.close();
});

async function list(command: string): Promise<string[]> {
  const text = await listText(ftp, command);
  expect(text === '' || text.endsWith('\r\n')).toBe(true);
  return text.split('\r\n').filter(Boolean);
}

describe('LIST, NLST and MLSD agree', () => {
  it('name the same entries, with the same kinds and sizes', async () => {
    const names = await list('NLST dir');
    const ls = await list('LIST dir');
    const mlsd = await list('MLSD dir');
    const expected = ['a.jpg', 'b c.txt', 'empty', 'sub', 'ü.bin'];
    expect([...names].sort()).toEqual(expected);
    const fromLs = ls.map((l) => /^([d-])\S+ +\d+ +\S+ +\S+ +(\d+) +\w{3} +\d+ +[\d:]+ (.+)$/.exec(l));
    expect(fromLs.every(Boolean)).toBe(true);
    const facts = mlsd.map((l) => {
      const [factText = '', name = ''] = l.split(/ (.*)/s);
      return { name, facts: Object.fromEntries(factText.split(';').filter(Boolean).map((f) => f.split('=') as [string, string])) };
    });
    const entries = facts.filter((f) => f.facts.type !== 'cdir');
    expect(facts.filter((f) => f.facts.type === 'cdir')).toHaveLength(1);
    expect(entries.map((e) => e.name).sort()).toEqual(expected);
    expect(fromLs.map((m) => m?.[3]).sort()).toEqual(expected);
    for (const m of fromLs) {
      const e = entries.find((x) => x.name === m?.[3]);
      expect(e?.facts.type).toBe(m?.[1] === 'd' ? 'dir' : 'file');
      if (e?.facts.type === 'file') expect(e.facts.size).toBe(m?.[2]);
    }
  });

  it('MLSD facts follow RFC 3659: modify is a UTC time-val, perm letters, unique per path, sizes exact', async () => {
    const entries = await list('MLSD dir');
    const a = entries.find((l) => l.endsWith(' a.jpg')) as string;
    expect(a).toMatch(/^type=file;size=17;modify=\d{14};perm=[adfrw]+;unique=[0-9a-f]+; a\.jpg$/);
    const sub = entries.find((l) => l.endsWith(' sub')) as string;
    expect(sub).toMatch(/^type=dir;modify=\d{14};perm=[cdeflmp]+;unique=[0-9a-f]+; sub$/);
    const uniques = entries.map((l) => /unique=([0-9a-f]+)/.exec(l)?.[1]);
    expect(new Set(uniques).size).toBe(uniques.length);
  });

  it('MLST answers one entry on the control connection; OPTS MLST picks the facts; MLSD of a file is 501', async () => {
    const mlst = await ftp.command('MLST dir/a.jpg');
    expect(mlst.code).toBe(250);
    expect(mlst.text.split('\n')[1]).toMatch(/^ type=file;size=17;modify=\d{14};perm=\w+;unique=[0-9a-f]+; \/dir\/a\.jpg$/);
    expect((await ftp.command('MLST nowhere')).code).toBe(550);
    expect((await ftp.command('OPTS MLST type;size;')).text).toBe('200 MLST OPTS type;size;');
    expect((await list('MLSD dir')).find((l) => l.endsWith(' a.jpg'))).toBe('type=file;size=17; a.jpg');
    expect((await ftp.command('MLST dir/sub')).text.split('\n')[1]).toBe(' type=dir; /dir/sub');
    expect((await ftp.command('OPTS MLST type;size;modify;perm;unique;')).code).toBe(200);
    const data = await ftp.pasv();
    ftp.send('MLSD dir/a.jpg');
    expect((await ftp.reply()).code).toBe(501);
    data.destroy();
  });

  it('FEAT announces MLST with every fact marked as default', async () => {
    const feat = await ftp.command('FEAT');
    expect(feat.text).toMatch(/^ MLST type\*;size\*;modify\*;perm\*;unique\*;$/m);
  });
});
