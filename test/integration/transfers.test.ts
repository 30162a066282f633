import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { Client } from 'basic-ftp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER, sha256 } from '../support/bridge.js';
import { curl, python } from '../support/clients.js';

let bridge: TestBridge;
const tmp = mkdtempSync(join(tmpdir(), 'ftp-s3-bridge-it-'));

beforeAll(async () => {
  bridge = await TestBridge.start();
});
afterAll(async () => {
  await bridge?.close();
});

async function basicFtp(): Promise<Client> {
  const client = new Client(30_000);
  await client.access({ host: '127.0.0.1', port: bridge.port, user: USER, password: PASSWORD });
  return client;
}

async function download(client: Client, path: string, startAt = 0): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  await client.downloadTo(sink, path, startAt);
  return Buffer.concat(chunks);
}

describe('STOR and RETR with basic-ftp', () => {
  it('stores a small file with a single PutObject and reads it back byte for byte', async () => {
    const data = randomBytes(300 * 1024);
    const client = await basicFtp();
    try {
      const res = await client.uploadFrom(Readable.from([data]), 'cam/small.jpg');
      expect(res.code).toBe(226);
      expect(await bridge.objectHash('cam/small.jpg')).toBe(sha256(data));
      expect(sha256(await download(client, 'cam/small.jpg'))).toBe(sha256(data));
    } finally {
      client.close();
    }
  });

  it('stores a file larger than one part as a multipart upload, intact', async () => {
    const data = randomBytes(12 * 1024 * 1024 + 12345); // parts of 5 MiB: three parts
    const client = await basicFtp();
    try {
      const res = await client.uploadFrom(Readable.from([data]), 'big.bin');
      expect(res.code).toBe(226);
      expect(await bridge.objectHash('big.bin')).toBe(sha256(data));
      const head = await bridge.s3.send(new (await import('@aws-sdk/client-s3')).HeadObjectCommand({ Bucket: bridge.bucket, Key: 'big.bin' }));
      // A multipart ETag names its part count (s3rver computes plain MD5s instead).
      if (bridge.backend.backend !== 's3rver') expect(head.ETag).toMatch(/-3"$/);
      expect(head.ContentLength).toBe(data.length);
    } finally {
      client.close();
    }
  });

  it('stores an empty file', async () => {
    const client = await basicFtp();
    try {
      await client.uploadFrom(Readable.from([Buffer.alloc(0)]), 'empty.txt');
      expect(await bridge.getObject('empty.txt')).toEqual(Buffer.alloc(0));
    } finally {
      client.close();
    }
  });

  it('REST n + RETR returns the bytes from offset n (ranged GET)', async () => {
    const data = randomBytes(100_000);
    await bridge.put('rest/file.bin', data);
    const client = await basicFtp();
    try {
      expect(await download(client, 'rest/file.bin', 40_000)).toEqual(data.subarray(40_000));
      // resuming a complete download yields nothing, not an error
      expect((await download(client, 'rest/file.bin', data.length)).length).toBe(0);
    } finally {
      client.close();
    }
  });

  it('overwrites an existing object', async () => {
    await bridge.put('over.txt', 'old');
    const client = await basicFtp();
    try {
      await client.uploadFrom(Readable.from([Buffer.from('new content')]), 'over.txt');
      expect((await bridge.getObject('over.txt'))?.toString()).toBe('new content');
    } finally {
      client.close();
    }
  });
});

describe('curl', () => {
  it('uploads with --ftp-create-dirs in passive (EPSV) and active (PORT/EPRT) mode, and downloads', async () => {
    const data = randomBytes(2 * 1024 * 1024);
    const file = join(tmp, 'curl.bin');
    writeFileSync(file, data);
    const up = await curl(['--ftp-create-dirs', '-T', file, bridge.url('/curl/deep/dir/a.bin')]);
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(await bridge.objectHash('curl/deep/dir/a.bin')).toBe(sha256(data));

    const active = await curl(['--ftp-port', '-', '-T', file, bridge.url('/curl/active.bin')]);
    expect(active.code).toBe(0);
    expect(await bridge.objectHash('curl/active.bin')).toBe(sha256(data));

    const pasv = await curl(['--disable-epsv', bridge.url('/curl/deep/dir/a.bin')]);
    expect(pasv.code).toBe(0);
    expect(sha256(pasv.stdout)).toBe(sha256(data));

    const eprt = await curl(['--ftp-port', '127.0.0.1', bridge.url('/curl/active.bin')]);
    expect(eprt.code).toBe(0);
    expect(sha256(eprt.stdout)).toBe(sha256(data));
  });

  it('lists a directory in the ls -l form, with directories from prefixes and markers, no duplicates', async () => {
    await bridge.put('list/x.txt', '12345');
    await bridge.put('list/sub/y.txt', 'y');
    await bridge.put('list/sub/', ''); // a marker next to real content: still one "sub"
    await bridge.put('list/empty/', '');
    const res = await curl([bridge.url('/list/')]);
    expect(res.code).toBe(0);
    const lines = res.stdout.toString().trim().split(/\r?\n/).sort();
    expect(lines).toHaveLength(3);
    expect(lines.filter((l) => / sub$/.test(l))).toHaveLength(1);
    expect(lines.find((l) => l.endsWith(' x.txt'))).toMatch(/^-rw-r--r-- 1 ftp ftp +5 \w{3} [ \d]\d [ \d]\d:\d\d x\.txt$/);
    expect(lines.find((l) => l.endsWith(' empty'))).toMatch(/^drwxr-xr-x /);

    const nlst = await curl(['--list-only', bridge.url('/list/')]);
    expect(nlst.stdout.toString().trim().split(/\r?\n/).sort()).toEqual(['empty', 'sub', 'x.txt']);
  });

  it('CWD to a missing directory fails with 550', async () => {
    const res = await curl([bridge.url('/no/such/dir/')]);
    expect(res.code).toBe(9); // CURLE_REMOTE_ACCESS_DENIED: the CWD was refused
  });
});

const PY_SESSION = String.raw`
import ftplib, sys, io, hashlib, json
port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
out = {}
f = ftplib.FTP()
f.connect('127.0.0.1', port, timeout=30)
f.login(user, pw)
f.sendcmd('OPTS UTF8 ON')
f.encoding = 'utf-8'
data = bytes(range(256)) * 4000
out['mkd'] = f.mkd('py dir')
out['cwd'] = f.cwd('py dir')
out['pwd'] = f.pwd()
out['stor'] = f.storbinary('STOR Überwachung 日本.bin', io.BytesIO(data))
out['size'] = f.size('Überwachung 日本.bin')
out['mdtm'] = f.sendcmd('MDTM Überwachung 日本.bin')
lines = []
f.retrlines('LIST', lines.append)
out['list'] = lines
out['nlst'] = f.nlst()
buf = io.BytesIO()
f.retrbinary('RETR Überwachung 日本.bin', buf.write)
out['retr_sha'] = hashlib.sha256(buf.getvalue()).hexdigest()
out['sha'] = hashlib.sha256(data).hexdigest()
out['rnfr'] = f.sendcmd('RNFR Überwachung 日本.bin')
out['rnto'] = f.sendcmd('RNTO renamed.bin')
out['dele'] = f.delete('renamed.bin')
f.cwd('/')
out['cdup_root'] = f.pwd()
out['rmd'] = f.rmd('py dir')
for cmd in ['TYPE A', 'TYPE I', 'MODE S', 'STRU F', 'NOOP', 'SYST', 'MODE B', 'TYPE E']:
    try:
        out[cmd] = f.sendcmd(cmd)
    except ftplib.Error as e:
        out[cmd] = str(e)
out['feat'] = f.sendcmd('FEAT')
f.quit()
print(json.dumps(out))
`;

describe('python ftplib', () => {
  it('runs a full session: MKD, CWD, STOR of a UTF-8 name, SIZE, MDTM, LIST, NLST, RETR, RNFR/RNTO, DELE, RMD', async () => {
    const res = await python(PY_SESSION, [String(bridge.port), USER, PASSWORD]);
    expect(res.stderr).toBe('');
    const out = JSON.parse(res.stdout.toString()) as Record<string, string & string[]>;
    expect(out.mkd).toBe('/py dir');
    expect(out.pwd).toBe('/py dir');
    expect(out.stor).toMatch(/^226/);
    expect(out.size).toBe(1024000);
    expect(out.mdtm).toMatch(/^213 \d{14}$/);
    expect(out.list).toHaveLength(1);
    expect(out.list?.[0]).toMatch(/^-rw-r--r-- 1 ftp ftp +1024000 .* Überwachung 日本\.bin$/);
    expect(out.nlst).toEqual(['Überwachung 日本.bin']);
    expect(out.retr_sha).toBe(out.sha);
    expect(out.rnfr).toMatch(/^350/);
    expect(out.rnto).toMatch(/^250/);
    expect(out.dele).toMatch(/^250/);
    expect(out.rmd).toMatch(/^250/);
    expect(out['TYPE A']).toMatch(/^200/);
    expect(out['MODE S']).toMatch(/^200/);
    expect(out['STRU F']).toMatch(/^200/);
    expect(out['MODE B']).toMatch(/^504/);
    expect(out['TYPE E']).toMatch(/^504/);
    expect(out.SYST).toMatch(/^215 UNIX/);
    expect(out.feat).toMatch(/EPSV/);
    // the UTF-8 name reached S3 as the identical UTF-8 key, then was renamed and deleted
    expect(await bridge.keys('py dir/')).toEqual([]);
  });

  it('stores the UTF-8 name as the identical UTF-8 key', async () => {
    const script = String.raw`
import ftplib, sys, io
f = ftplib.FTP(); f.connect('127.0.0.1', int(sys.argv[1]), timeout=30); f.login(sys.argv[2], sys.argv[3]); f.encoding='utf-8'
print(f.storbinary('STOR Ñandú ü 写真.jpg', io.BytesIO(b'jpeg')))
`;
    const res = await python(script, [String(bridge.port), USER, PASSWORD]);
    expect(res.stdout.toString()).toMatch(/^226/);
    expect((await bridge.getObject('Ñandú ü 写真.jpg'))?.toString()).toBe('jpeg');
  });
});

describe('directories and renames on S3', () => {
  it('MKD writes a marker, RMD refuses a non-empty directory and removes an empty one', async () => {
    const client = await basicFtp();
    try {
      await client.send('MKD made');
      expect(await bridge.exists('made/')).toBe(true);
      // An existing directory: 257, harmless for devices that MKD every component (see quirks.test.ts).
      expect((await client.send('MKD made')).message).toMatch(/^257 "\/made" directory already exists/);
      await client.uploadFrom(Readable.from([Buffer.from('x')]), 'made/f.txt');
      await expect(client.send('RMD made')).rejects.toThrow(/550/);
      await client.remove('made/f.txt');
      expect((await client.send('RMD made')).code).toBe(250);
      expect(await bridge.keys('made')).toEqual([]);
      await expect(client.send('RMD made')).rejects.toThrow(/550/);
    } finally {
      client.close();
    }
  });

  it('DELE of a missing file is 550, of a directory is 550', async () => {
    await bridge.put('d/inner.txt', 'x');
    const client = await basicFtp();
    try {
      await expect(client.remove('nope.txt')).rejects.toThrow(/550/);
      await expect(client.remove('d')).rejects.toThrow(/550/);
      expect(await bridge.exists('d/inner.txt')).toBe(true);
    } finally {
      client.close();
    }
  });

  it('renames a file, replacing an existing target', async () => {
    await bridge.put('rn/a.txt', 'AAA');
    await bridge.put('rn/b.txt', 'BBB');
    const client = await basicFtp();
    try {
      await client.rename('rn/a.txt', 'rn/b.txt');
      expect((await bridge.getObject('rn/b.txt'))?.toString()).toBe('AAA');
      expect(await bridge.exists('rn/a.txt')).toBe(false);
      await expect(client.rename('rn/missing.txt', 'rn/c.txt')).rejects.toThrow(/550/);
    } finally {
      client.close();
    }
  });

  it('renames a directory with every object under it', async () => {
    const files = ['tree/a.txt', 'tree/sub/b.txt', 'tree/sub/deeper/c.txt', 'tree/empty/'];
    for (const f of files) await bridge.put(f, f);
    const client = await basicFtp();
    try {
      await client.rename('tree', 'moved/tree2');
      expect(await bridge.keys('tree/')).toEqual([]);
      expect(await bridge.keys('moved/')).toEqual(files.map((f) => f.replace('tree/', 'moved/tree2/')).sort());
      expect((await bridge.getObject('moved/tree2/sub/deeper/c.txt'))?.toString()).toBe('tree/sub/deeper/c.txt');
    } finally {
      client.close();
    }
  });

  it('refuses to rename a directory above the object limit, touching nothing', async () => {
    const limited = await TestBridge.start({ s3: { renameDirectoryMaxObjects: 3 } });
    try {
      for (let i = 0; i < 4; i++) await limited.put(`many/f${i}.txt`, 'x');
      const client = new Client(30_000);
      await client.access({ host: '127.0.0.1', port: limited.port, user: USER, password: PASSWORD });
      try {
        await expect(client.rename('many', 'other')).rejects.toThrow(/550/);
      } finally {
        client.close();
      }
      expect(await limited.keys()).toEqual(['many/f0.txt', 'many/f1.txt', 'many/f2.txt', 'many/f3.txt']);
    } finally {
      await limited.close();
    }
  });

  it('lists a directory of more than 1000 entries across ListObjectsV2 pages', async () => {
    const names = Array.from({ length: 1005 }, (_, i) => `page/f${String(i).padStart(4, '0')}.txt`);
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(names.slice(i, i + 50).map((n) => bridge.put(n, 'p')));
    }
    const res = await curl(['--list-only', bridge.url('/page/')]);
    const listed = res.stdout.toString().trim().split(/\r?\n/);
    expect(listed).toHaveLength(1005);
    expect(new Set(listed).size).toBe(1005);
  });
});

describe('paths are confined and validated', () => {
  it('".." never leaves the account prefix', async () => {
    const b = await TestBridge.start({ accounts: [{ username: 'cam', password: 'pw', prefix: 'site-a/cam01/' }] });
    try {
      await b.put('site-a/secret.txt', 'outside');
      const client = new Client(30_000);
      await client.access({ host: '127.0.0.1', port: b.port, user: 'cam', password: 'pw' });
      try {
        await client.uploadFrom(Readable.from([Buffer.from('in')]), '../../../escape.txt');
        await client.uploadFrom(Readable.from([Buffer.from('bs')]), '..\\..\\win\\path.txt');
        await expect(download(client, '../secret.txt')).rejects.toThrow(/550/);
        await client.cd('../../..');
        expect(await client.pwd()).toBe('/');
      } finally {
        client.close();
      }
      expect(await b.keys()).toEqual(['site-a/cam01/escape.txt', 'site-a/cam01/win/path.txt', 'site-a/secret.txt']);
    } finally {
      await b.close();
    }
  });

  it('refuses control characters (501, before any handler) and over-long keys (553), writing nothing', async () => {
    const script = String.raw`
import ftplib, sys, io
f = ftplib.FTP(); f.connect('127.0.0.1', int(sys.argv[1]), timeout=30); f.login(sys.argv[2], sys.argv[3])
for name in ['bad\x01name.txt', 'tab\tname.txt', 'x' * 1025]:
    try:
        print(f.storbinary('STOR ' + name, io.BytesIO(b'data')))
    except ftplib.Error as e:
        print(str(e)[:3])
try:
    print(f.mkd('y' * 1100))
except ftplib.Error as e:
    print(str(e)[:3])
`;
    const before = await bridge.keys();
    const res = await python(script, [String(bridge.port), USER, PASSWORD]);
    expect(res.stdout.toString().trim().split('\n')).toEqual(['501', '501', '553', '553']);
    expect(await bridge.keys()).toEqual(before);
  });
});

describe('uploads from files on disk', () => {
  it('a file uploaded by curl, python and basic-ftp lands with the same hash each time', async () => {
    const data = randomBytes(6 * 1024 * 1024 + 7);
    const file = join(tmp, 'same.bin');
    writeFileSync(file, data);
    await curl(['--ftp-create-dirs', '-T', file, bridge.url('/same/curl.bin')]);
    await python(
      `import ftplib,sys\nf=ftplib.FTP();f.connect('127.0.0.1',int(sys.argv[1]));f.login(sys.argv[2],sys.argv[3])\nf.storbinary('STOR same/py.bin', open(sys.argv[4],'rb'))`,
      [String(bridge.port), USER, PASSWORD, file],
    );
    const client = await basicFtp();
    try {
      await client.uploadFrom(file, 'same/basic.bin');
    } finally {
      client.close();
    }
    for (const k of ['same/curl.bin', 'same/py.bin', 'same/basic.bin']) {
      expect(await bridge.objectHash(k)).toBe(sha256(readFileSync(file)));
    }
  });
});
