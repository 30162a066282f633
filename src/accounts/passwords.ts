// bcrypt (native, prebuilt) hashes on libuv's thread pool: a login never stalls other sessions' transfers.
import bcrypt from 'bcrypt';

export type HashAlgorithm = 'bcrypt' | 'argon2id';

/**
 * @node-rs/argon2, loaded on first use: its native module costs ~2.5 MiB of RSS once loaded,
 * which a bridge whose accounts all use bcrypt never needs.
 */
let argon2Module: Promise<typeof import('@node-rs/argon2')> | undefined;
const loadArgon2 = (): Promise<typeof import('@node-rs/argon2')> => (argon2Module ??= import('@node-rs/argon2'));

/** Hashes a password for the config file. bcrypt cost 10, or argon2id with the library's defaults. */
export async function hashPassword(password: string, algorithm: HashAlgorithm = 'bcrypt'): Promise<string> {
  if (algorithm === 'argon2id') {
    const { hash, Algorithm } = await loadArgon2();
    return hash(password, { algorithm: Algorithm.Argon2id });
  }
  return bcrypt.hash(password, 10);
}

/** Checks a password against a bcrypt ($2a$/$2b$/$2y$) or argon2id hash; false for anything else. */
export async function verifyPassword(password: string, passwordHash: string): Promise<boolean> {
  // Loaded before the try: a library that cannot load is an error, not a wrong password.
  const argon2 = passwordHash.startsWith('$argon2id$') ? await loadArgon2() : undefined;
  try {
    if (argon2) return await argon2.verify(passwordHash, password);
    if (/^\$2[aby]\$/.test(passwordHash)) {
      // $2y$ (PHP, htpasswd) is the same algorithm as $2b$; the native library only knows the latter.
      return await bcrypt.compare(password, passwordHash.replace(/^\$2y\$/, '$2b$'));
    }
  } catch {
    return false;
  }
  return false;
}
