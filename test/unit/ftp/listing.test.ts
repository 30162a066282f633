import { describe, expect, it } from 'vitest';
import { formatFacts, formatListLine, formatNameLine, formatTimeVal, listableEntries } from '../../../src/ftp/listing.js';
import type { Entry } from '../../../src/storage/object-store.js';

const NOW = new Date(Date.UTC(2024, 5, 15, 12, 0, 0)); // 2024-06-15 12:00:00Z
const DAY = 24 * 3600 * 1000;

const file = (name: string, size: number, mtime: Date): Entry => ({ name, isDirectory: false, size, mtime });
const dir = (name: string, mtime: Date): Entry => ({ name, isDirectory: true, size: 0, mtime });

/**
 * The unix `ls -l` shape that curl's ftplistparser, lftp, FileZilla and python's ftputil
 * (on top of ftplib's LIST) accept: mode, links, owner, group, size, month, day, time or year, name.
 */
const UNIX_LIST_LINE =
  /^([-d])([-r][-w][-x][-r][-w][-x][-r][-w][-x]) +(\d+) +(\S+) +(\S+) +(\d+) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([ \d]\d) (\d\d:\d\d| \d{4}) (.+)$/;

describe('formatListLine', () => {
  it('a recent file: exact columns with HH:MM', () => {
    const line = formatListLine(file('report.pdf', 1234, new Date(Date.UTC(2024, 2, 5, 9, 7, 33))), NOW);
    expect(line).toBe('-rw-r--r-- 1 ftp ftp         1234 Mar  5 09:07 report.pdf');
  });

  it('a recent directory: drwxr-xr-x and the same columns', () => {
    const line = formatListLine(dir('2024', new Date(Date.UTC(2024, 5, 14, 23, 59, 0))), NOW);
    expect(line).toBe('drwxr-xr-x 1 ftp ftp            0 Jun 14 23:59 2024');
  });

  it('pads the size to 12 columns', () => {
    for (const size of [0, 7, 123456789012]) {
      const line = formatListLine(file('f', size, NOW), NOW);
      expect(line.slice('-rw-r--r-- 1 ftp ftp '.length, '-rw-r--r-- 1 ftp ftp '.length + 12)).toBe(String(size).padStart(12, ' '));
    }
  });

  it('a size wider than 12 digits still leaves one space on each side', () => {
    const line = formatListLine(file('big.bin', 5 * 1024 ** 4 * 1000, NOW), NOW); // 13+ digits
    expect(line).toBe(`-rw-r--r-- 1 ftp ftp ${5 * 1024 ** 4 * 1000} Jun 15 12:00 big.bin`);
    expect(UNIX_LIST_LINE.exec(line)?.[6]).toBe(String(5 * 1024 ** 4 * 1000));
  });

  it('an entry older than six months shows the year instead of the time', () => {
    const line = formatListLine(file('old.txt', 42, new Date(Date.UTC(2023, 0, 9, 8, 30, 0))), NOW);
    expect(line).toBe('-rw-r--r-- 1 ftp ftp           42 Jan  9  2023 old.txt');
  });

  it('switches from time to year around six months of age', () => {
    const recent = formatListLine(file('f', 1, new Date(NOW.getTime() - 170 * DAY)), NOW);
    const old = formatListLine(file('f', 1, new Date(NOW.getTime() - 200 * DAY)), NOW);
    expect(UNIX_LIST_LINE.exec(recent)?.[9]).toMatch(/^\d\d:\d\d$/);
    expect(UNIX_LIST_LINE.exec(old)?.[9]).toBe(' 2023');
  });

  it('an entry a few seconds in the future (S3 clock ahead of ours) still shows the time', () => {
    const line = formatListLine(file('f', 1, new Date(NOW.getTime() + 5000)), NOW);
    expect(UNIX_LIST_LINE.exec(line)?.[9]).toMatch(/^\d\d:\d\d$/);
  });

  it('an entry dated days in the future shows the year', () => {
    const line = formatListLine(file('f', 1, new Date(NOW.getTime() + 2 * DAY)), NOW);
    expect(line).toBe('-rw-r--r-- 1 ftp ftp            1 Jun 17  2024 f');
  });

  it('formats in UTC whatever the local time zone', () => {
    const saved = process.env.TZ;
    try {
      // 23:30 UTC on Dec 31st is already Jan 1st in Tokyo; the line must still say Dec 31 23:30.
      process.env.TZ = 'Asia/Tokyo';
      const mtime = new Date(Date.UTC(2024, 11, 31, 23, 30, 0));
      expect(mtime.getHours()).not.toBe(mtime.getUTCHours()); // the zone change took effect
      const line = formatListLine(file('f', 1, mtime), new Date(Date.UTC(2025, 0, 2)));
      expect(line).toBe('-rw-r--r-- 1 ftp ftp            1 Dec 31 23:30 f');
      expect(formatTimeVal(mtime)).toBe('20241231233000');
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });

  it.each([
    ['spaces', 'my holiday  photo.jpg'],
    ['quotes', 'say "cheese".jpg'],
    ['UTF-8', 'Überwachung 日本語 ü.jpg'],
    ['leading digits', '2024 01 02.mp4'],
  ])('names with %s come out whole and parse', (_label, name) => {
    const line = formatListLine(file(name, 99, new Date(Date.UTC(2024, 4, 1, 6, 5, 0))), NOW);
    expect(line.endsWith(` May  1 06:05 ${name}`)).toBe(true);
    const m = UNIX_LIST_LINE.exec(line);
    expect(m).not.toBeNull();
    expect(m?.[10]).toBe(name);
    expect(m?.[6]).toBe('99');
  });

  it('every form of line parses with the unix LIST regex', () => {
    const entries = [
      file('a', 0, NOW),
      dir('b c', new Date(Date.UTC(2020, 10, 30, 0, 0, 0))),
      file('ü', 1, new Date(NOW.getTime() + DAY)),
      dir('d', new Date(NOW.getTime() - 1000)),
    ];
    for (const e of entries) {
      const m = UNIX_LIST_LINE.exec(formatListLine(e, NOW));
      expect(m, e.name).not.toBeNull();
      expect(m?.[1]).toBe(e.isDirectory ? 'd' : '-');
      expect(m?.[10]).toBe(e.name);
    }
  });
});

describe('formatTimeVal', () => {
  it('is YYYYMMDDHHMMSS in UTC, zero-padded', () => {
    expect(formatTimeVal(new Date(Date.UTC(2024, 0, 2, 3, 4, 5)))).toBe('20240102030405');
    expect(formatTimeVal(new Date(Date.UTC(1999, 11, 31, 23, 59, 59, 999)))).toBe('19991231235959');
    expect(formatTimeVal(new Date(Date.UTC(2024, 1, 29, 0, 0, 0)))).toBe('20240229000000');
  });

  it('pads the year to four digits', () => {
    const d = new Date(Date.UTC(2000, 0, 1));
    d.setUTCFullYear(999);
    expect(formatTimeVal(d)).toBe('09990101000000');
  });

  it('always has 14 digits', () => {
    for (const t of [0, 1e12, 1.7e12, Date.UTC(2099, 11, 31, 23, 59, 59)]) expect(formatTimeVal(new Date(t))).toMatch(/^\d{14}$/);
  });
});

describe('formatFacts', () => {
  const all = { uniqueId: 'abc123', canWrite: true, canDelete: true, canRename: true, canRead: true, canList: true, canMkdir: true };
  const none = { uniqueId: 'u', canWrite: false, canDelete: false, canRename: false, canRead: false, canList: false, canMkdir: false };
  const mtime = new Date(Date.UTC(2024, 2, 5, 9, 7, 33));

  it('a file: type, size, modify, perm, unique, then "; name"', () => {
    expect(formatFacts(file('report.pdf', 1234, mtime), all)).toBe('type=file;size=1234;modify=20240305090733;perm=awdfr;unique=abc123; report.pdf');
  });

  it('OPTS MLST selection: only the picked facts, in the standard order; none leaves " name"', () => {
    expect(formatFacts(file('f', 9, mtime), { ...all, facts: new Set(['size', 'type']) })).toBe('type=file;size=9; f');
    expect(formatFacts(dir('d', mtime), { ...all, facts: new Set(['size']) })).toBe(' d');
  });

  it('a directory: type=dir and no size fact', () => {
    const line = formatFacts(dir('2024', mtime), all);
    expect(line).toBe('type=dir;modify=20240305090733;perm=cdelfmp;unique=abc123; 2024');
    expect(line).not.toMatch(/size=/);
  });

  it('the listed directory itself: type=cdir, no size', () => {
    const line = formatFacts(dir('.', mtime), { ...all, type: 'cdir' });
    expect(line).toBe('type=cdir;modify=20240305090733;perm=cdelfmp;unique=abc123; .');
  });

  it('perm holds only what the account may do', () => {
    expect(formatFacts(file('f', 1, mtime), none)).toBe('type=file;size=1;modify=20240305090733;perm=;unique=u; f');
    expect(formatFacts(file('f', 1, mtime), { ...none, canRead: true })).toMatch(/;perm=r;/);
    expect(formatFacts(file('f', 1, mtime), { ...none, canWrite: true })).toMatch(/;perm=aw;/);
    expect(formatFacts(dir('d', mtime), { ...none, canList: true })).toMatch(/;perm=el;/);
    expect(formatFacts(dir('d', mtime), { ...none, canMkdir: true })).toMatch(/;perm=m;/);
    expect(formatFacts(dir('d', mtime), { ...none, canDelete: true })).toMatch(/;perm=dp;/);
  });

  it('keeps names with spaces, semicolons and UTF-8 after the single separating space', () => {
    const name = ' lead; and 日本語 ü.jpg';
    const line = formatFacts(file(name, 5, mtime), all);
    const sep = line.indexOf('; ');
    expect(line.slice(sep + 2)).toBe(name);
    expect(line.slice(0, sep + 1)).toMatch(/^(?:[a-z]+=[^;]*;)+$/);
  });
});

describe('names with control characters', () => {
  const t = new Date(Date.UTC(2024, 2, 5, 9, 7, 33));
  const hostile = ['a\r\n-rw-r--r-- 1 owner group 0 Jan 1 00:00 forged', 'lf\nx', 'cr\rx', 'tab\tx', 'nul\0x', 'esc\x1b[2Jx', 'del\x7fx', 'nel\u0085x', 'csi\u009bx'];
  const fine = ['ok.txt', 'with space', 'ü.bin', '日本語', 'emoji 📷.jpg', 'line\u2028sep'];

  it('listableEntries leaves out exactly the names with C0/C1 controls or DEL, keeping order', () => {
    const entries = [...hostile, ...fine].map((name, i) => (i % 2 ? dir(name, t) : file(name, i, t)));
    const { shown, leftOut } = listableEntries(entries);
    expect(shown.map((e) => e.name)).toEqual(fine);
    expect(leftOut.map((e) => e.name)).toEqual(hostile);
    expect(listableEntries([])).toEqual({ shown: [], leftOut: [] });
  });

  it('no formatter renders one: LIST, NLST and MLSD lines throw rather than emit a raw control character', () => {
    const facts = { uniqueId: 'u', canWrite: true, canDelete: true, canRename: true, canRead: true, canList: true, canMkdir: true };
    for (const name of hostile) {
      expect(() => formatListLine(file(name, 1, t), NOW)).toThrow(TypeError);
      expect(() => formatNameLine(file(name, 1, t))).toThrow(TypeError);
      expect(() => formatFacts(dir(name, t), facts)).toThrow(TypeError);
    }
    for (const name of fine) {
      expect(formatListLine(file(name, 1, t), NOW).endsWith(' ' + name)).toBe(true);
      expect(formatNameLine(file(name, 1, t))).toBe(name);
      expect(formatFacts(dir(name, t), facts).endsWith('; ' + name)).toBe(true);
    }
  });
});
