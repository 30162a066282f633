import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBridge, sha256 } from '../support/bridge.js';
import { curl } from '../support/clients.js';
import { makeCertificate, type TestCertificate } from '../support/tls.js';
import { scratch } from './helpers.js';

/** curl: every data-connection mode, --ftp-create-dirs, FTPS with --ssl-reqd; store, list, retrieve, rename, delete. */
let bridge: TestBridge;
let cert: TestCertificate;
const dir = scratch('curl');

beforeAll(async () => {
  cert = await makeCertificate(dir, 'server');
  bridge = await TestBridge.start({ ftp: { tls: { cert: cert.cert, key: cert.key } } });
});
afterAll(async () => {
  await bridge?.close();
});

const MODES: Array<[string, string[]]> = [
  ['PASV', ['--disable-epsv']],
  ['EPSV', []],
  ['PORT', ['-P', '127.0.0.1', '--disable-eprt']],
  ['EPRT', ['-P', '127.0.0.1']],
  ['FTPS (AUTH TLS, --ssl-reqd)', ['--ssl-reqd', '--cacert', '']],
];

describe.each(MODES)('curl over %s', (mode, modeArgs) => {
  const args = () => modeArgs.map((a) => (a === '' ? cert.cert : a));
  const tag = mode.replace(/\W+/g, '-').toLowerCase();

  it('stores into new directories, lists, retrieves, renames and deletes; S3 holds the bytes', async () => {
    const data = randomBytes(700_000);
    const local = join(dir, `${tag}.bin`);
    writeFileSync(local, data);
    const remote = `/${tag}/deep/er/file.bin`;

    const put = await curl([...args(), '--ftp-create-dirs', '-T', local, bridge.url(remote)]);
    expect(put.stderr).toBe('');
    expect(put.code).toBe(0);
    expect(await bridge.objectHash(remote.slice(1))).toBe(sha256(data));

    const list = await curl([...args(), bridge.url(`/${tag}/deep/er/`)]);
    expect(list.code).toBe(0);
    expect(list.stdout.toString()).toMatch(/^-\S+ .* 700000 .* file\.bin\r?$/m);
    const names = await curl([...args(), '-l', bridge.url(`/${tag}/deep/er/`)]);
    expect(names.stdout.toString().trim().split(/\r?\n/)).toEqual(['file.bin']);

    const get = await curl([...args(), bridge.url(remote)]);
    expect(get.code).toBe(0);
    expect(sha256(get.stdout)).toBe(sha256(data));

    const mv = await curl([...args(), '-Q', `RNFR ${remote}`, '-Q', `RNTO /${tag}/renamed.bin`, bridge.url('/')]);
    expect(mv.code).toBe(0);
    expect(await bridge.exists(remote.slice(1))).toBe(false);
    expect(await bridge.objectHash(`${tag}/renamed.bin`)).toBe(sha256(data));

    const rm = await curl([...args(), '-Q', `DELE /${tag}/renamed.bin`, bridge.url('/')]);
    expect(rm.code).toBe(0);
    expect(await bridge.exists(`${tag}/renamed.bin`)).toBe(false);
  });
});
