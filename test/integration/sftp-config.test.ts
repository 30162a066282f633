import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hashPassword } from '../../src/accounts/passwords.js';
import { writeCliConfig } from '../support/cli-config.js';
import { BIN } from '../support/cli-process.js';
import { runProgram } from '../support/clients.js';
import { SshKeys } from '../support/sftp.js';

let keys: SshKeys;
let dir: string;
let passwordHash: string;

beforeAll(async () => {
  keys = await SshKeys.create();
  dir = mkdtempSync(join(tmpdir(), 'sftp-config-'));
  passwordHash = await hashPassword('pw');
});
afterAll(() => {
  keys?.remove();
  rmSync(dir, { recursive: true, force: true });
});

/** `serve` with SFTP on and the given host key files: exit code and stderr. */
async function serveWith(hostKeys: string[]) {
  const file = writeCliConfig(inject('s3'), {
    accounts: [{ username: 'u', passwordHash, bucket: 'sftp-config-test' }],
    sftp: { enabled: true, host: '127.0.0.1', port: 0, hostKeys },
  });
  const res = await runProgram(process.execPath, [BIN, '--config', file]);
  return { code: res.code, stderr: res.stderr.toString() };
}

describe('SFTP host keys at start-up', () => {
  it('a missing, unreadable, malformed or public-only key file is one config error line naming it (exit 2)', async () => {
    const garbage = join(dir, 'garbage');
    writeFileSync(garbage, 'not a key\n');
    const unreadable = join(dir, 'unreadable');
    writeFileSync(unreadable, 'x');
    chmodSync(unreadable, 0o000);
    const cases: [string, RegExp][] = [
      [join(dir, 'missing'), /^config error: sftp\.hostKeys: cannot read host key .*missing: ENOENT$/],
      [garbage, /^config error: sftp\.hostKeys: .*garbage is not a usable private key \(.*\)$/],
      [`${keys.clientKey}.pub`, /^config error: sftp\.hostKeys: .*\.pub holds a public key; a private host key is needed$/],
    ];
    // root reads files whatever their mode: the unreadable case only where that is not so.
    if (process.getuid?.() !== 0) cases.push([unreadable, /^config error: sftp\.hostKeys: cannot read host key .*unreadable: EACCES$/]);
    for (const [file, line] of cases) {
      const res = await serveWith([keys.hostKey, file]);
      expect(res.code, file).toBe(2);
      expect(res.stderr.trim().split('\n'), file).toHaveLength(1);
      expect(res.stderr.trim(), file).toMatch(line);
    }
  }, 60_000);

  it('enabled without host keys is a config error', async () => {
    const res = await serveWith([]);
    expect(res.code).toBe(2);
    expect(res.stderr.trim()).toBe('config error: sftp.hostKeys: at least one host key file is needed when sftp.enabled');
  });
});
