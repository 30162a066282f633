import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { connect } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER } from '../support/bridge.js';
import { RawFtp, listText } from '../support/clients.js';

/**
 * Keys written to the bucket by other tools may hold CR, LF and other control characters. Sent raw,
 * "a\r\n-rw-r--r-- ... forged" would end one listing line and make up another. The bridge leaves such
 * names out of LIST, NLST and MLSD (one warning log line per listing), and nothing it writes to the
 * control connection carries them.
 */
const FORGED_LS = '-rw-r--r-- 1 owner group 0 Jan 1 00:00 forged';
const HOSTILE = [
  `dir/a\r\n${FORGED_LS}`,
  'dir/lf\nforged-lf',
  'dir/cr\rforged-cr',
  'dir/tab\tforged-tab',
  'dir/nel\u0085forged-nel',
  'dir/b\r\ntype=file;size=1;modify=20240101000000;perm=r;unique=0; forged-mlsd',
  'dir/c\r\n226 forged-reply\r\n',
  'dir/sub\r\nforged-dir/inside.txt',
  'dir/del\x7fforged-del',
  'dir/nul\x00forged-nul',
  `top\r\n${FORGED_LS}-at-root`,
];
const NORMAL = ['dir/ok.txt', 'dir/with space.txt', 'dir/ü.bin', 'dir/sub/x.txt', 'dir/zz-last.txt'];
const NORMAL_NAMES = ['ok.txt', 'sub', 'with space.txt', 'zz-last.txt', 'ü.bin'];

let bridge: TestBridge;
let ftp: RawFtp;
/** Every byte the server sent on the control connection. */
let control = '';
const logLines: Record<string, unknown>[] = [];
/** The hostile keys the S3 store took (s3rver keeps keys as file names, and may refuse some). */
let stored: string[] = [];

beforeAll(async () => {
  const logStream = new PassThrough();
  let pending = '';
  logStream.on('data', (chunk: Buffer) => {
    pending += chunk.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
  });
  bridge = await TestBridge.start({ logStream, logLevel: 'info' });
  for (const key of NORMAL) await bridge.put(key, 'data of ' + key);
  for (const key of HOSTILE) {
    await bridge.s3.send(new PutObjectCommand({ Bucket: bridge.bucket, Key: key, Body: 'x' })).catch(() => undefined);
  }
  // What the store lists back is what the bridge will see (an XML parser may fold a CR into LF).
  const listed = await bridge.s3.send(new ListObjectsV2Command({ Bucket: bridge.bucket }));
  stored = (listed.Contents ?? []).map((o) => o.Key as string).filter((k) => !NORMAL.includes(k));
  ftp = await RawFtp.connect(bridge.port);
  ftp.socket.on('data', (chunk: string) => (control += chunk));
  await ftp.login(USER, PASSWORD);
}, 60_000);

afterAll(async () => {
  ftp?.close();
  await bridge?.close();
});

const list = (command: string): Promise<string> => listText(ftp, command);

/** The lines of a listing, after checking that only CRLF ends them and no other control character occurs. */
function lines(text: string): string[] {
  expect(text === '' || text.endsWith('\r\n')).toBe(true);
  const out = text.split('\r\n').slice(0, -1);
  // eslint-disable-next-line no-control-regex
  for (const line of out) expect(line).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
  return out;
}

describe('keys with control characters never forge listing entries', () => {
  it('the store holds the hostile keys (at least the CR/LF ones)', () => {
    expect(stored.length).toBeGreaterThanOrEqual(6);
    expect(stored.some((k) => k.includes('\n'))).toBe(true);
    expect(stored.some((k) => k.includes(FORGED_LS))).toBe(true);
  });

  it('LIST shows exactly the normal entries, complete, and nothing forged', async () => {
    const ls = lines(await list('LIST dir'));
    const names = ls.map((l) => /^[d-]\S+ +\d+ +\S+ +\S+ +\d+ +\w{3} +\d+ +[\d:]+ (.+)$/.exec(l)?.[1]);
    expect(names.sort()).toEqual(NORMAL_NAMES);
    expect(ls.find((l) => l.endsWith(' ok.txt'))).toMatch(new RegExp(`^-rw-r--r-- 1 ftp ftp +${'data of dir/ok.txt'.length} `));
    expect(ls.find((l) => l.endsWith(' sub'))).toMatch(/^drwxr-xr-x /);
    expect(ls.join('\n')).not.toContain('forged');
  });

  it('NLST names exactly the normal entries', async () => {
    expect(lines(await list('NLST dir')).sort()).toEqual(NORMAL_NAMES);
  });

  it('MLSD lists cdir and exactly the normal entries', async () => {
    const mlsd = lines(await list('MLSD dir'));
    expect(mlsd.filter((l) => l.includes('type=cdir;'))).toHaveLength(1);
    const names = mlsd.filter((l) => !l.includes('type=cdir;')).map((l) => l.slice(l.indexOf('; ') + 2));
    expect(names.sort()).toEqual(NORMAL_NAMES);
    expect(mlsd.join('\n')).not.toContain('forged');
  });

  it('NLST of the root shows "dir" once and nothing else', async () => {
    expect(lines(await list('NLST /'))).toEqual(['dir']);
  });

  it('one warning line per listing names the count and the key, escaped', async () => {
    const before = logLines.length;
    await list('NLST dir');
    const warnings = logLines.slice(before).filter((l) => l.msg === 'listing left out names with control characters');
    expect(warnings).toHaveLength(1);
    const warning = warnings[0] as { leftOut: number; example: string; path: string; level: number };
    expect(warning.level).toBe(40);
    expect(warning.path).toBe('/dir');
    // Every stored hostile key lies directly in dir/ (a file) or makes a directory there ("sub\r\n...").
    const hostileNames = new Set(stored.filter((k) => k.startsWith('dir/')).map((k) => k.slice('dir/'.length).split('/')[0]));
    expect(warning.leftOut).toBe(hostileNames.size);
    // The key, JSON-escaped: no raw control character, and it parses back to a stored key or prefix.
    // eslint-disable-next-line no-control-regex
    expect(warning.example).not.toMatch(/[\x00-\x1f]/);
    const example = JSON.parse(warning.example) as string;
    expect(stored.some((k) => k === example || k.startsWith(example + '/'))).toBe(true);
  });

  it('MLST, STAT and path replies on the control connection carry no forged line', async () => {
    // A client cannot address a name with control characters: the command is refused (501), not echoed.
    expect((await ftp.command('MLST dir/tab\tforged-tab')).code).toBe(501);
    expect((await ftp.command('CWD dir/del\x7fforged-del')).code).toBe(501);
    const mlst = await ftp.command('MLST dir');
    expect(mlst.code).toBe(250);
    expect(mlst.text.split('\n')).toEqual(['250-Listing /dir', expect.stringMatching(/^ type=dir;.*; \/dir$/), '250 End']);
    // STAT with a path answers the status only: no key reaches the control connection.
    const stat = await ftp.command('STAT dir');
    expect(stat.code).toBe(211);
    expect(stat.text).not.toContain('forged');
    expect((await ftp.command('CWD dir')).text).toBe('250 Directory changed to "/dir"');
    expect((await ftp.command('PWD')).text).toBe('257 "/dir" is the current directory');
    expect((await ftp.command('NOOP')).code).toBe(200);
    // Every line the server wrote is a well-formed reply line; none is forged.
    const replyLines = control.split('\r\n').slice(0, -1);
    for (const line of replyLines) expect(line).toMatch(/^(\d{3}[ -]| )/);
    expect(control).not.toContain('forged-');
    expect(control.endsWith('\r\n')).toBe(true);
  });

  it('commands with control characters: the echoing replies show them escaped, never raw', async () => {
    const socket = connect(bridge.port, '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    const replyCount = () => received.split('\r\n').filter((l) => /^\d{3} /.test(l)).length;
    const waitForReplies = async (n: number) => {
      for (const deadline = Date.now() + 20_000; replyCount() < n; ) {
        if (Date.now() > deadline) throw new Error(`waiting for ${n} replies, got: ${JSON.stringify(received)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await waitForReplies(1); // the greeting
    // Unknown directives that ftp-srv echoes ("502 Command not allowed: <directive>"), before login.
    socket.write('X\rFORGED-CR\r\nY\x00Z\r\nNO\x1b[2JOP\r\nNOOP\r\n');
    // However the reader splits these lines, NOOP's 200 comes last.
    for (const deadline = Date.now() + 20_000; !/\r\n200 [^\r\n]*\r\n$/.test(received); ) {
      if (Date.now() > deadline) throw new Error(`no 200 for NOOP: ${JSON.stringify(received)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    socket.destroy();
    const replyLines = received.split('\r\n').slice(0, -1);
    // eslint-disable-next-line no-control-regex
    for (const line of replyLines) expect(line).toMatch(/^\d{3}[ -][^\x00-\x1f\x7f-\x9f]*$/);
    expect(replyLines.some((l) => l.startsWith('FORGED'))).toBe(false);
    // A line with a control character is refused whole (501), and never echoed, not even escaped.
    expect(replyLines.filter((l) => l.startsWith('501')).length).toBeGreaterThanOrEqual(2);
    expect(received).not.toContain('2JOP');
  });
});

