import { describe, expect, it, vi } from 'vitest';
import { hashPassword, verifyPassword } from '../../../src/accounts/passwords.js';

describe('hashPassword / verifyPassword', () => {
  it('bcrypt by default: a $2b$ hash of cost 10 that verifies', async () => {
    const hash = await hashPassword('s3cret pass');
    expect(hash).toMatch(/^\$2b\$10\$[./A-Za-z0-9]{53}$/);
    expect(await verifyPassword('s3cret pass', hash)).toBe(true);
  });

  it('argon2id: a $argon2id$ hash that verifies', async () => {
    const hash = await hashPassword('s3cret pass', 'argon2id');
    expect(hash).toMatch(/^\$argon2id\$v=\d+\$m=\d+,t=\d+,p=\d+\$/);
    expect(await verifyPassword('s3cret pass', hash)).toBe(true);
  });

  it('salts: two hashes of the same password differ and both verify', async () => {
    const a = await hashPassword('same');
    const b = await hashPassword('same');
    expect(a).not.toBe(b);
    expect(await verifyPassword('same', a)).toBe(true);
    expect(await verifyPassword('same', b)).toBe(true);
  });

  it('a wrong password is false for both algorithms', async () => {
    const bcrypt = await hashPassword('right');
    const argon = await hashPassword('right', 'argon2id');
    for (const hash of [bcrypt, argon]) {
      expect(await verifyPassword('wrong', hash)).toBe(false);
      expect(await verifyPassword('Right', hash)).toBe(false);
      expect(await verifyPassword('', hash)).toBe(false);
      expect(await verifyPassword('right ', hash)).toBe(false);
    }
  });

  it('UTF-8 passwords verify byte for byte', async () => {
    const hash = await hashPassword('pässwört日本');
    expect(await verifyPassword('pässwört日本', hash)).toBe(true);
    expect(await verifyPassword('passwort日本', hash)).toBe(false);
  });

  it('accepts the $2a$ and $2y$ bcrypt variants (htpasswd, PHP)', async () => {
    const bcrypt = await hashPassword('pw');
    for (const variant of ['2a', '2y']) {
      const hash = bcrypt.replace(/^\$2b\$/, `$${variant}$`);
      expect(hash.startsWith(`$${variant}$`)).toBe(true);
      expect(await verifyPassword('pw', hash)).toBe(true);
      expect(await verifyPassword('nope', hash)).toBe(false);
    }
  });

  it.each([
    ['empty', ''],
    ['plain text equal to the password', 'pw'],
    ['a truncated bcrypt hash', '$2b$10$abc'],
    ['a bcrypt prefix with garbage', '$2b$10$' + '!'.repeat(53)],
    ['a bcrypt hash with a bad cost', '$2b$99$' + 'a'.repeat(53)],
    ['an argon2id prefix with garbage', '$argon2id$garbage'],
    ['argon2i (not argon2id)', '$argon2i$v=19$m=4096,t=3,p=1$c29tZXNhbHQ$aGFzaA'],
    ['md5-crypt', '$1$saltsalt$qjXMvbEw8oaL.CzflDugX/'],
    ['sha512-crypt', '$6$salt$' + 'x'.repeat(86)],
  ])('%s hash → false, never a throw', async (_label, hash) => {
    await expect(verifyPassword('pw', hash)).resolves.toBe(false);
  });

  it('argon2 is loaded only for an argon2id hash, and a failure to load it is thrown, not a wrong password', async () => {
    const argon2idHash = await hashPassword('pw', 'argon2id');
    const bcryptHash = await hashPassword('pw');
    vi.resetModules();
    vi.doMock('@node-rs/argon2', () => {
      throw new Error('native binding missing');
    });
    try {
      const fresh = await import('../../../src/accounts/passwords.js');
      expect(await fresh.verifyPassword('pw', bcryptHash)).toBe(true);
      await expect(fresh.verifyPassword('pw', argon2idHash)).rejects.toThrow();
      await expect(fresh.hashPassword('pw', 'argon2id')).rejects.toThrow();
    } finally {
      vi.doUnmock('@node-rs/argon2');
      vi.resetModules();
    }
  });
});
