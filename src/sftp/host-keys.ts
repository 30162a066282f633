import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ssh2 } from '../config/ssh2-module.js';

/** A host key file that cannot be used; its message is one line naming the file and why. */
export class HostKeyError extends Error {
  override name = 'HostKeyError';
}

/** A loaded host key: the private key for ssh2, and what an operator compares clients' warnings against. */
export interface HostKey {
  file: string;
  privateKey: Buffer;
  type: string;
  /** OpenSSH's form: `SHA256:` and the unpadded base64 of the SHA-256 of the public key blob. */
  fingerprint: string;
}

/** `SHA256:...` of a public key blob, as `ssh-keygen -l` prints it. */
export function fingerprintOf(publicKeyBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(publicKeyBlob).digest('base64').replace(/=+$/, '');
}

/**
 * Reads and parses the host key files (`sftp.hostKeys`). A missing, unreadable, encrypted or
 * malformed file, or a public key where a private one belongs, throws a HostKeyError whose
 * message is one line naming the file.
 */
export async function loadHostKeys(files: readonly string[]): Promise<HostKey[]> {
  const keys: HostKey[] = [];
  for (const file of files) {
    let text: Buffer;
    try {
      text = await readFile(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new HostKeyError(`sftp.hostKeys: cannot read host key ${file}: ${code}`);
    }
    const parsed = ssh2().utils.parseKey(text);
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    if (key instanceof Error || key === undefined) {
      const why = key instanceof Error ? key.message.split('\n')[0] : 'no key found';
      throw new HostKeyError(`sftp.hostKeys: ${file} is not a usable private key (${why})`);
    }
    if (!key.isPrivateKey()) throw new HostKeyError(`sftp.hostKeys: ${file} holds a public key; a private host key is needed`);
    keys.push({ file, privateKey: text, type: key.type, fingerprint: fingerprintOf(key.getPublicSSH()) });
  }
  return keys;
}
