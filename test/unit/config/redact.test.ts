import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { redactSecrets, redactUrl } from '../../../src/config/redact.js';

const hash = '$2b$10$QGKNUvNtj0kh/bBFTpFseej43XcsTFgONzsVNfuiLJt.aqEjCh5by';

describe('redactUrl', () => {
  it('hides user info, query values and the fragment, and keeps scheme, host, port, path and query names', () => {
    expect(redactUrl('https://hook-user:s3cr3t@auth.example.test:8443/v1/login?token=abc123&tenant=acme#frag')).toBe(
      'https://[redacted]@auth.example.test:8443/v1/login?token=[redacted]&tenant=[redacted]#[redacted]',
    );
    expect(redactUrl('https://user@auth.example.test/')).toBe('https://[redacted]@auth.example.test/');
    expect(redactUrl('https://:pw@auth.example.test/x')).toBe('https://[redacted]@auth.example.test/x');
    expect(redactUrl('https://auth.example.test/x?key')).toBe('https://auth.example.test/x?key=[redacted]');
  });

  it('leaves a URL without credentials exactly as written', () => {
    for (const url of ['http://127.0.0.1:9000', 'https://auth.example.test/v1/login', 'https://s3.eu-west-1.amazonaws.com']) {
      expect(redactUrl(url)).toBe(url);
    }
  });

  it('keeps only the scheme of an unparseable URL that may hold a secret', () => {
    expect(redactUrl('https://us er:pw@[bad/')).toBe('https://[redacted]');
  });
});

describe('redactSecrets on URLs', () => {
  it('the effective configuration shows no credentials of auth.hook.url, events.webhook.url or an account endpoint', () => {
    const config = parseConfig({
      accounts: [{ username: 'p', passwordHash: hash, bucket: 'partner-bucket', endpoint: 'https://key:keysecret@s3.partner.test/' }],
      auth: { hook: { url: 'https://hook:hookpass@idp.example.test/ftp/auth?token=tok-123&x=1' } },
      events: { webhook: { url: 'https://events.example.test/in?sig=sig-456' } },
    });
    const redacted = redactSecrets(config);
    expect(redacted.auth.hook?.url).toBe('https://[redacted]@idp.example.test/ftp/auth?token=[redacted]&x=[redacted]');
    expect(redacted.auth.hook?.timeoutSeconds).toBe(5);
    expect(redacted.events.webhook?.url).toBe('https://events.example.test/in?sig=[redacted]');
    expect(redacted.accounts[0]?.endpoint).toBe('https://[redacted]@s3.partner.test/');
    const text = JSON.stringify(redacted);
    for (const secret of ['hookpass', 'tok-123', 'sig-456', 'keysecret', hash]) expect(text).not.toContain(secret);
    // The original is untouched.
    expect(config.auth.hook?.url).toBe('https://hook:hookpass@idp.example.test/ftp/auth?token=tok-123&x=1');
  });

  it('leaves other strings alone', () => {
    expect(redactSecrets({ greeting: 'ready? yes@home', bucket: 'b' })).toEqual({ greeting: 'ready? yes@home', bucket: 'b' });
  });
});
