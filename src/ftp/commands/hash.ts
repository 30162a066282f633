import { DIGEST_ALGORITHMS, parseDigestAlgorithm, type DigestAlgorithm } from '../../storage/digests.js';
import type { Connection } from '../connection.js';
import { FtpError } from '../errors.js';
import type { Session } from '../../sessions/session.js';
import { sessionCommand, type CommandSpec } from './context.js';

const DEFAULT_ALGORITHM: DigestAlgorithm = DIGEST_ALGORITHMS[0];

/**
 * FEAT line (draft-bryan-ftp-hash §3): the algorithms, the one HASH currently uses on the connection
 * (the default until OPTS HASH picks another) marked with '*'.
 */
function hashFeature(conn: Connection | undefined): string {
  const current = conn?.hashAlgorithm ?? DEFAULT_ALGORITHM;
  return 'HASH ' + DIGEST_ALGORITHMS.map((a) => (a === current ? a + '*' : a)).join(';');
}

/** OPTS HASH [<algorithm>]: shows or picks the algorithm; the reply for OPTS to send. */
export function optsHash(conn: Connection, setting: string): { code: number; message: string } {
  if (!setting.trim()) return { code: 200, message: conn.hashAlgorithm };
  const algorithm = parseDigestAlgorithm(setting);
  if (!algorithm) return { code: 501, message: `Unknown algorithm; choose one of ${DIGEST_ALGORITHMS.join(', ')}` };
  conn.hashAlgorithm = algorithm;
  return { code: 200, message: algorithm };
}

async function digestOf(session: Session, arg: string, algorithm: DigestAlgorithm) {
  if (!arg.trim()) throw new FtpError('BAD_ARGUMENT', 'File name required');
  const path = session.resolve(arg);
  const digest = await session.store.digest(path, algorithm);
  if (!digest) throw new FtpError('NOT_AVAILABLE', 'No stored digest, and the file is too large to compute one');
  return { path, digest };
}

const xCommand = (algorithm: DigestAlgorithm, directive: string): CommandSpec =>
  sessionCommand(
    { permission: ['read'], store: ['digest'], syntax: `${directive} <path>`, help: `${algorithm} digest of a file (hex)` },
    async (conn, session, arg) => {
      const { digest } = await digestOf(session, arg, algorithm);
      await conn.reply(250, digest.hex);
    },
  );

/**
 * HASH (draft-bryan-ftp-hash) and the older XSHA256/XSHA1/XSHA512/XMD5/XCRC: digests of a whole file.
 * They come from what the upload computed as the bytes streamed in; only a file written by someone
 * else is read to compute one, and only up to s3.hashMaxStreamMiB.
 */
export const hashCommands: Record<string, CommandSpec> = {
  HASH: sessionCommand(
    {
      permission: ['read'],
      store: ['digest'],
      syntax: 'HASH <path>',
      help: 'Digest of a file, in the algorithm OPTS HASH picked',
      feat: (conn) => [hashFeature(conn)],
    },
    async (conn, session, arg) => {
      const algorithm = conn.hashAlgorithm;
      const { path, digest } = await digestOf(session, arg, algorithm);
      await conn.reply(213, `${algorithm} 0-${digest.size} ${digest.hex} ${path}`);
    },
  ),
  XSHA256: xCommand('SHA-256', 'XSHA256'),
  XSHA1: xCommand('SHA-1', 'XSHA1'),
  XSHA512: xCommand('SHA-512', 'XSHA512'),
  XMD5: xCommand('MD5', 'XMD5'),
  // CRC-32 (the zlib/IEEE one) in hex: from the CRC32 checksum S3 keeps for a single-request upload, else computed.
  XCRC: xCommand('CRC32', 'XCRC'),
};
