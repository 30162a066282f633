import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../../src/config/load.js';

const account = { username: 'partner', passwordHash: '$2b$10$' + 'a'.repeat(53), bucket: 'uploads' };

function problems(raw: unknown): string[] {
  try {
    parseConfig(raw);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('ftp.proxyProtocol / sftp.proxyProtocol', () => {
  it('is off by default, with a 5 s header time-out', () => {
    const config = parseConfig({ accounts: [account] });
    expect(config.ftp.proxyProtocol).toEqual({ enabled: false, trustedProxies: [], headerTimeoutSeconds: 5 });
    expect(config.sftp.proxyProtocol).toEqual({ enabled: false, trustedProxies: [], headerTimeoutSeconds: 5 });
  });

  it('enabled needs at least one trusted proxy; each must be an address or a CIDR', () => {
    expect(problems({ accounts: [account], ftp: { proxyProtocol: { enabled: true } } })).toEqual([expect.stringMatching(/^ftp\.proxyProtocol\.trustedProxies: needs at least one/)]);
    expect(problems({ accounts: [account], sftp: { proxyProtocol: { enabled: true, trustedProxies: [] } } })).toEqual([expect.stringMatching(/^sftp\.proxyProtocol\.trustedProxies/)]);
    expect(problems({ accounts: [account], ftp: { proxyProtocol: { enabled: true, trustedProxies: ['10.0.0.0/33'] } } })).toEqual([expect.stringMatching(/^ftp\.proxyProtocol\.trustedProxies\.0: must be an IP address or a CIDR/)]);
    expect(problems({ accounts: [account], ftp: { proxyProtocol: { enabled: true, trustedProxies: ['lb.example.com'] } } })).toHaveLength(1);
    expect(parseConfig({ accounts: [account], ftp: { proxyProtocol: { enabled: true, trustedProxies: ['10.0.0.0/24', '2001:db8::1'] } } }).ftp.proxyProtocol.enabled).toBe(true);
  });
});
