import { beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../../src/accounts/passwords.js';
import { ConfigError, parseConfig } from '../../../src/config/load.js';

let passwordHash: string;
beforeAll(async () => {
  passwordHash = await hashPassword('pw');
});

const account = (more: Record<string, unknown> = {}) => ({ username: 'a', passwordHash, bucket: 'uploads', ...more });

function problemsOf(input: unknown): string[] {
  try {
    parseConfig(input);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('config: scan section and accounts[].scan', () => {
  it('defaults: 30 s (+60 s per GiB for the verdict), 1024 MiB, fail closed; accounts do not scan unless asked', () => {
    const config = parseConfig({ scan: { clamd: { socket: '/run/clamd.sock' } }, accounts: [account()] });
    expect(config.scan).toEqual({ clamd: { socket: '/run/clamd.sock' }, timeoutSeconds: 30, verdictSecondsPerGiB: 60, maxMiB: 1024, oversize: 'reject', onError: 'reject' });
    expect(config.accounts[0]?.scan).toBeUndefined();
    expect(parseConfig({ accounts: [account()] }).scan).toBeUndefined();
  });

  it('takes a TCP clamd and per-account reject / quarantine with a prefix and bucket', () => {
    const config = parseConfig({
      scan: { clamd: { host: '127.0.0.1', port: 3310 }, oversize: 'accept-unscanned', onError: 'accept-unscanned' },
      accounts: [account({ scan: 'quarantine', quarantine: { prefix: 'quarantine/', bucket: 'infected' } })],
    });
    expect(config.scan?.clamd).toEqual({ host: '127.0.0.1', port: 3310 });
    expect(config.accounts[0]).toMatchObject({ scan: 'quarantine', quarantine: { prefix: 'quarantine/', bucket: 'infected' } });
  });

  it('refuses a scanning account without the scan section, quarantine without a prefix, and maxMiB above 5 GiB', () => {
    expect(problemsOf({ accounts: [account({ scan: 'reject' })] })).toEqual(['accounts.0.scan: needs the scan section (scan.clamd)']);
    expect(problemsOf({ scan: { clamd: { socket: '/s' } }, accounts: [account({ scan: 'quarantine' })] })).toEqual([
      'accounts.0.quarantine: scan: quarantine needs quarantine.prefix',
    ]);
    expect(problemsOf({ scan: { clamd: { socket: '/s' }, maxMiB: 6000 }, accounts: [account()] })).toEqual([expect.stringMatching(/^scan\.maxMiB: /)]);
    expect(problemsOf({ scan: { clamd: { socket: '/s' } }, accounts: [account({ scan: 'quarantine', quarantine: { prefix: '/q' } })] })).toEqual([
      expect.stringMatching(/^accounts\.0\.quarantine\.prefix: /),
    ]);
  });
});
