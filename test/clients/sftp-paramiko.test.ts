import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, sha256, TestBridge, USER } from '../support/bridge.js';
import { run, sftpConfig, SshKeys } from '../support/sftp.js';

/** python3 paramiko (Debian python3-paramiko): password and public-key login, put/get, listing, stat, renames, removal, symlink refused. */
let keys: SshKeys;
let bridge: TestBridge;

beforeAll(async () => {
  keys = await SshKeys.create();
  bridge = await TestBridge.start({
    accounts: [{ username: USER, password: PASSWORD, policy: { publicKeys: [keys.clientPublicKey] } }],
    config: sftpConfig(keys.hostKey),
  });
}, 60_000);
afterAll(async () => {
  await bridge?.close();
  keys?.remove();
});

// Debian's paramiko belongs to the system python3 (a pyenv python on PATH may lack it).
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

const SCRIPT = `
import hashlib, io, json, sys, paramiko
port, user, secret, mode, base = sys.argv[1:6]
transport = paramiko.Transport(('127.0.0.1', int(port)))
if mode == 'key':
    transport.connect(username=user, pkey=paramiko.Ed25519Key.from_private_key_file(secret))
else:
    transport.connect(username=user, password=secret)
sftp = paramiko.SFTPClient.from_transport(transport)
body = bytes((i * 7) % 251 for i in range(1_500_000))
sftp.mkdir(base)
sftp.putfo(io.BytesIO(body), base + '/photo ü.jpg')
names = sorted(sftp.listdir(base))
attrs = sftp.stat(base + '/photo ü.jpg')
out = io.BytesIO()
sftp.getfo(base + '/photo ü.jpg', out)
sftp.rename(base + '/photo ü.jpg', base + '/renamed.jpg')
sftp.posix_rename(base + '/renamed.jpg', base + '/final.jpg')
try:
    sftp.symlink(base + '/final.jpg', base + '/link')
    symlink = 'allowed'
except IOError as e:
    symlink = str(e)
sftp.chmod(base + '/final.jpg', 0o600)
cwd = sftp.normalize('.')
result = {
    'names': names, 'size': attrs.st_size, 'isdir': bool(sftp.stat(base).st_mode & 0o040000),
    'sha_up': hashlib.sha256(body).hexdigest(), 'sha_down': hashlib.sha256(out.getvalue()).hexdigest(),
    'after_rename': sorted(sftp.listdir(base)), 'symlink': symlink, 'cwd': cwd,
}
sftp.remove(base + '/final.jpg')
sftp.rmdir(base)
result['after_remove'] = sftp.listdir('/')
print(json.dumps(result))
sftp.close()
transport.close()
`;

describe('paramiko', () => {
  const logins: [string, () => string][] = [
    ['password', () => PASSWORD],
    ['key', () => keys.clientKey],
  ];
  it.each(logins)('%s login: put, list, stat, get, rename, posix-rename, chmod (no effect), symlink refused, remove, rmdir', async (mode, secret) => {
    const base = `/py-${mode}`;
    const r = await run(PYTHON, ['-c', SCRIPT, String(bridge.sftpPort), USER, secret(), mode, base]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(result).toMatchObject({ names: ['photo ü.jpg'], size: 1_500_000, isdir: true, after_rename: ['final.jpg'], cwd: '/', after_remove: [] });
    expect(result.sha_down).toBe(result.sha_up);
    expect(result.symlink).toMatch(/not supported/i);
    expect(await bridge.keys(base.slice(1))).toEqual([]);
  }, 60_000);

  it('the object paramiko stored is byte-exact in S3', async () => {
    const r = await run(PYTHON, [
      '-c',
      `import io, sys, paramiko
t = paramiko.Transport(('127.0.0.1', int(sys.argv[1]))); t.connect(username=sys.argv[2], password=sys.argv[3])
s = paramiko.SFTPClient.from_transport(t); s.putfo(io.BytesIO(bytes((i * 7) % 251 for i in range(1_500_000))), '/kept.bin'); t.close()`,
      String(bridge.sftpPort),
      USER,
      PASSWORD,
    ]);
    expect(r.code).toBe(0);
    const expected = Buffer.from(Array.from({ length: 1_500_000 }, (_, i) => (i * 7) % 251));
    expect(await bridge.objectHash('kept.bin')).toBe(sha256(expected));
  }, 60_000);
});
