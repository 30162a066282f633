import { randomBytes } from 'node:crypto';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256, TestBridge } from '../support/bridge.js';
import { python, RawFtp } from '../support/clients.js';

const KiB = 1024;
const MiB = 1024 * KiB;

let bridge: TestBridge;
beforeAll(async () => {
  bridge = await TestBridge.start({
    accounts: [
      { username: 'bytes', password: 'bytes-pw', prefix: 'bytes/', policy: { quota: { maxBytes: MiB } } },
      { username: 'count', password: 'count-pw', prefix: 'count/', policy: { quota: { maxObjects: 3 } } },
      { username: 'big', password: 'big-pw', prefix: 'big/', policy: { quota: { maxBytes: 7 * MiB } } },
    ],
    config: { auth: { quotaRefreshSeconds: 1 } },
  });
  await bridge.put('bytes/existing.bin', randomBytes(400 * KiB));
  await bridge.put('count/existing.bin', 'x');
});
afterAll(async () => {
  await bridge?.close();
});

/** Bytes and objects under a prefix, straight from S3. */
async function usageOf(prefix: string): Promise<{ bytes: number; objects: number; keys: string[] }> {
  const page = await bridge.s3.send(new ListObjectsV2Command({ Bucket: bridge.bucket, Prefix: prefix }));
  const contents = page.Contents ?? [];
  return { bytes: contents.reduce((n, o) => n + (o.Size ?? 0), 0), objects: contents.length, keys: contents.map((o) => o.Key as string).sort() };
}

/** python ftplib's STORs, one session; the final reply of each even when the server cut the data connection. */
const PY_STOR = String.raw`
import ftplib, sys, io, os
f = ftplib.FTP(); f.connect('127.0.0.1', int(sys.argv[1]), timeout=30); f.login(sys.argv[2], sys.argv[3])
for spec in sys.argv[4:]:
    name, size = spec.rsplit(':', 1)
    data = os.urandom(int(size))
    try:
        print(f.storbinary('STOR ' + name, io.BytesIO(data)))
    except ftplib.Error as e:
        print(str(e))
    except OSError:
        try:
            print(f.getresp())
        except ftplib.Error as e:
            print(str(e))
`;
/** Uploads `name:size` pairs in one session; returns the reply line of each. */
const pyStors = async (user: string, password: string, ...uploads: string[]) =>
  (await python(PY_STOR, [String(bridge.port), user, password, ...uploads])).stdout.toString().trim().split('\n');
const pyStor = async (user: string, password: string, name: string, size: number) => (await pyStors(user, password, `${name}:${size}`))[0];

describe('quotas', () => {
  it('aborts an upload with 552 the moment it crosses maxBytes: nothing committed, usage unchanged', async () => {
    const before = await usageOf('bytes/');
    expect(await pyStor('bytes', 'bytes-pw', 'big.bin', 2 * MiB)).toMatch(/^552 /);
    const after = await usageOf('bytes/');
    expect(after).toEqual(before);
    expect(await bridge.exists('bytes/big.bin')).toBe(false);
    if (bridge.backend.capabilities.listMultipartUploads) expect(await bridge.pendingUploads()).toEqual([]);
    // Within the quota: accepted and counted.
    expect(await pyStor('bytes', 'bytes-pw', 'small.bin', 300 * KiB)).toMatch(/^226 /);
    expect((await usageOf('bytes/')).bytes).toBe(700 * KiB);
  });

  it('aborts a multipart upload that crosses maxBytes after its first part: nothing committed, no upload left', async () => {
    // 12 MiB in 5 MiB parts: the first part is uploaded before the 7 MiB limit is crossed.
    expect(await pyStor('big', 'big-pw', 'large.bin', 12 * MiB)).toMatch(/^552 /);
    expect(await bridge.keys('big/')).toEqual([]);
    if (bridge.backend.capabilities.listMultipartUploads) expect(await bridge.pendingUploads()).toEqual([]);
    expect(await pyStor('big', 'big-pw', 'fits.bin', 6 * MiB)).toMatch(/^226 /);
  });

  it('refuses with 552 before any byte when ALLO announces too much, or when usage is already over', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.login('bytes', 'bytes-pw');
    expect((await ftp.command(`ALLO ${400 * KiB}`)).code).toBe(200);
    const data = await ftp.pasv();
    const reply = await ftp.command('STOR announced.bin');
    expect(reply.code).toBe(552);
    data.destroy();
    // ALLO applies to one upload only: the next one, smaller than what is left, goes through.
    const data2 = await ftp.pasv();
    ftp.send('STOR fits.bin');
    expect((await ftp.reply()).code).toBe(150);
    const fits = randomBytes(100 * KiB);
    data2.end(fits);
    expect((await ftp.reply()).code).toBe(226);
    expect(await bridge.objectHash('bytes/fits.bin')).toBe(sha256(fits));

    // Someone else fills the prefix; after auth.quotaRefreshSeconds the bridge knows and refuses at once.
    await bridge.put('bytes/from-elsewhere.bin', randomBytes(300 * KiB));
    await new Promise((r) => setTimeout(r, 1100));
    const data3 = await ftp.pasv();
    ftp.send('STOR over.bin');
    const over = await ftp.reply();
    expect(over.code).toBe(552);
    data3.destroy();
    ftp.close();
    expect(await bridge.exists('bytes/over.bin')).toBe(false);
    expect(await bridge.exists('bytes/announced.bin')).toBe(false);
  });

  it('refuses a new object at maxObjects, yet lets an existing file be replaced', async () => {
    const replies = await pyStors('count', 'count-pw', 'a.bin:10', 'b.bin:10', 'c.bin:10', 'a.bin:20');
    expect(replies.map((r) => r.slice(0, 4))).toEqual(['226 ', '226 ', '552 ', '226 ']);
    expect((await usageOf('count/')).keys).toEqual(['count/a.bin', 'count/b.bin', 'count/existing.bin']);
    expect((await bridge.getObject('count/a.bin'))?.length).toBe(20);
  });
});
