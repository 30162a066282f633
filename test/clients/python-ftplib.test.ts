import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER } from '../support/bridge.js';
import { python } from '../support/clients.js';
import { makeCertificate, type TestCertificate } from '../support/tls.js';
import { scratch } from './helpers.js';

/** python3 ftplib, plain FTP and FTP_TLS (explicit, PROT P): store, list (NLST, MLSD, LIST), retrieve, rename, delete. */
let bridge: TestBridge;
let cert: TestCertificate;

beforeAll(async () => {
  cert = await makeCertificate(scratch('python'), 'server');
  bridge = await TestBridge.start({ ftp: { tls: { cert: cert.cert, key: cert.key } } });
});
afterAll(async () => {
  await bridge?.close();
});

const SCRIPT = `
import ftplib, hashlib, io, json, ssl, sys
port, user, password, mode, cafile, base = sys.argv[1:7]
body = bytes((i * 7) % 251 for i in range(1_500_000))
if mode == 'tls':
    ctx = ssl.create_default_context(cafile=cafile)
    ftp = ftplib.FTP_TLS(context=ctx)
    ftp.connect('127.0.0.1', int(port))
    ftp.login(user, password)
    ftp.prot_p()
else:
    ftp = ftplib.FTP()
    ftp.connect('127.0.0.1', int(port))
    ftp.login(user, password)
ftp.mkd(base)
ftp.cwd(base)
ftp.storbinary('STOR photo ü.jpg', io.BytesIO(body))
nlst = ftp.nlst()
mlsd = {name: facts for name, facts in ftp.mlsd(facts=['type', 'size'])}
lines = []
ftp.retrlines('LIST', lines.append)
out = io.BytesIO()
ftp.retrbinary('RETR photo ü.jpg', out.write)
ftp.rename('photo ü.jpg', 'kept.jpg')
after_rename = ftp.nlst()
ftp.storbinary('STOR gone.txt', io.BytesIO(b'x'))
ftp.delete('gone.txt')
print(json.dumps({
  'sha256': hashlib.sha256(body).hexdigest(),
  'nlst': nlst, 'mlsd': mlsd, 'list': lines,
  'retr': hashlib.sha256(out.getvalue()).hexdigest(),
  'after_rename': after_rename, 'final': ftp.nlst(),
}))
ftp.quit()
`;

describe.each([['FTP', 'plain'], ['FTP_TLS', 'tls']])('python3 ftplib %s', (_name, mode) => {
  it('stores, lists, retrieves, renames and deletes; S3 holds the bytes', async () => {
    const base = `py-${mode}`;
    const res = await python(SCRIPT, [String(bridge.port), USER, PASSWORD, mode, cert.cert, base]);
    expect(res.stderr).toBe('');
    const out = JSON.parse(res.stdout.toString()) as Record<string, unknown>;
    expect(out.nlst).toEqual(['photo ü.jpg']);
    expect(out.mlsd).toEqual({ '.': { type: 'cdir' }, 'photo ü.jpg': { type: 'file', size: '1500000' } });
    expect((out.list as string[])[0]).toMatch(/ 1500000 .* photo ü\.jpg$/);
    expect(out.retr).toBe(out.sha256);
    expect(out.after_rename).toEqual(['kept.jpg']);
    expect(out.final).toEqual(['kept.jpg']);
    expect(await bridge.objectHash(`${base}/kept.jpg`)).toBe(out.sha256);
    expect(await bridge.exists(`${base}/photo ü.jpg`)).toBe(false);
    expect(await bridge.exists(`${base}/gone.txt`)).toBe(false);
  });
});
