import { hash as argon2Hash, verify as argon2Verify, Algorithm } from '@node-rs/argon2';
// bcrypt (native, prebuilt) hashes on libuv's thread pool: a login never stalls other sessions' transfers.
import bcrypt from 'bcrypt';

export type HashAlgorithm = 'bcrypt' | 'argon2id';

/** Hashes a password for the config file. bcrypt cost 10, or argon2id with the library's defaults. */
export async function hashPassword(password: string, algorithm: HashAlgorithm = 'bcrypt'): Promise<string> {
  if (algorithm === 'argon2id') return argon2Hash(password, { algorithm: Algorithm.Argon2id });
  return bcrypt.hash(password, 10);
}

/** Checks a password against a bcrypt ($2a$/$2b$/$2y$) or argon2id hash; false for anything else. */
export async function verifyPassword(password: string, passwordHash: string): Promise<boolean> {
  try {
    if (passwordHash.startsWith('$argon2id$')) return await argon2Verify(passwordHash, password);
    if (/^\$2[aby]\$/.test(passwordHash)) {
      // $2y$ (PHP, htpasswd) is the same algorithm as $2b$; the native library only knows the latter.
      return await bcrypt.compare(password, passwordHash.replace(/^\$2y\$/, '$2b$'));
    }
  } catch {
    return false;
  }
  return false;
}
