import { createRequire } from 'node:module';
import type ssh2Module from 'ssh2';

let loaded: typeof ssh2Module | undefined;

/**
 * ssh2, loaded at its first use rather than at start: a bridge that serves no SFTP and checks no
 * public key never pays for it (~10 MiB of RSS: its WebAssembly Poly1305, key parsers and client).
 */
export function ssh2(): typeof ssh2Module {
  loaded ??= createRequire(import.meta.url)('ssh2') as typeof ssh2Module;
  return loaded;
}
