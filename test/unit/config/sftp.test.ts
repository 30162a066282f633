import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../../src/config/load.js';
import { SAFE_SSH_ALGORITHMS } from '../../../src/config/schema.js';
import { parseAccountsFile } from '../../../src/accounts/accounts-file.js';

const HASH = '$2b$10$' + 'a'.repeat(53);
const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIpZ8uBHrpjD9DQ+Cz4vy/OSwVzgpGmQ/J4jbHZVLbQL partner@example';
const account = (extra: object = {}) => ({ username: 'partner', passwordHash: HASH, bucket: 'uploads', ...extra });

function problemsOf(raw: unknown): string[] {
  try {
    parseConfig(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError, but the configuration was accepted');
}

describe('sftp config', () => {
  it('is off by default, on port 2222, with safe algorithms only', () => {
    const config = parseConfig({ accounts: [account()] });
    expect(config.sftp).toMatchObject({ enabled: false, port: 2222, hostKeys: [], maxSessionsPerConnection: 4 });
    const all = Object.values(config.sftp.algorithms).flat();
    for (const name of all) expect(name).not.toMatch(/sha1|md5|cbc|group1-|ssh-rsa$|ssh-dss/);
    expect(config.sftp.algorithms.cipher).toEqual([...SAFE_SSH_ALGORITHMS.cipher]);
  });

  it('needs a host key when enabled', () => {
    expect(problemsOf({ accounts: [account()], sftp: { enabled: true } })).toEqual(['sftp.hostKeys: at least one host key file is needed when sftp.enabled']);
  });

  it('refuses an algorithm name ssh2 does not know, and accepts a listed unsafe one when asked for', () => {
    const problems = problemsOf({ accounts: [account()], sftp: { algorithms: { cipher: ['aes128-ctr', 'rot13'] } } });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^sftp\.algorithms\.cipher: unknown or unsupported cipher algorithm "rot13"/);
    expect(parseConfig({ accounts: [account()], sftp: { algorithms: { hmac: ['hmac-sha1'] } } }).sftp.algorithms.hmac).toEqual(['hmac-sha1']);
  });
});

describe('accounts[].publicKeys', () => {
  it('accepts OpenSSH public key lines', () => {
    const config = parseConfig({ accounts: [account({ publicKeys: [ED25519] })] });
    expect(config.accounts[0]?.publicKeys).toEqual([ED25519]);
  });

  it('names the account and the line of a bad key', () => {
    const broken = ED25519.replace('AAAAC3', 'AAAAX3');
    const problems = problemsOf({ accounts: [account(), account({ username: 'other', publicKeys: [ED25519, broken] })] });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^accounts\.1\.publicKeys\.1: account "other", line 2: not a valid public key/);
  });

  it('refuses authorized_keys options, private keys and garbage', () => {
    for (const line of [`from="10.0.0.0/8" ${ED25519}`, '-----BEGIN OPENSSH PRIVATE KEY-----', 'hello']) {
      const problems = problemsOf({ accounts: [account({ publicKeys: [line] })] });
      expect(problems[0], line).toMatch(/^accounts\.0\.publicKeys\.0: account "partner", line 1: not an OpenSSH public key line/);
    }
  });

  it('is validated in an accounts file too', () => {
    const result = parseAccountsFile(JSON.stringify([account({ publicKeys: ['ssh-ed25519 AAAA'] })]));
    expect(result.ok).toBe(false);
    expect(!result.ok && result.problems[0]).toMatch(/^accounts\.0\.publicKeys\.0: account "partner", line 1:/);
  });
});
