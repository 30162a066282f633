import { DIGEST_ALGORITHMS, parseDigestAlgorithm, type DigestAlgorithm } from '../../storage/digests.js';
import { FtpError } from '../errors.js';
import type { FtpConnection } from '../ftp-srv-internals.js';
import type { Session } from '../../sessions/session.js';
import { sessionCommand, type CommandSpec, type ContextOf } from './context.js';

/** The algorithm HASH uses on a connection, as picked by OPTS HASH. */
const selected = new WeakMap<FtpConnection, DigestAlgorithm>();
const DEFAULT_ALGORITHM: DigestAlgorithm = DIGEST_ALGORITHMS[0];

/**
 * FEAT line (draft-bryan-ftp-hash §3): the algorithms, the one HASH currently uses on the connection
 * (the default until OPTS HASH picks another) marked with '*'.
 */
export function hashFeature(conn: FtpConnection | undefined): string {
  const current = (conn && selected.get(conn)) ?? DEFAULT_ALGORITHM;
  return 'HASH ' + DIGEST_ALGORITHMS.map((a) => (a === current ? a + '*' : a)).join(';');
}

/** OPTS HASH [<algorithm>]: shows or picks the algorithm; the reply for OPTS to send. */
export function optsHash(conn: FtpConnection, setting: string): { code: number; message: string } {
  if (!setting.trim()) return { code: 200, message: selected.get(conn) ?? DEFAULT_ALGORITHM };
  const algorithm = parseDigestAlgorithm(setting);
  if (!algorithm) return { code: 501, message: `Unknown algorithm; choose one of ${DIGEST_ALGORITHMS.join(', ')}` };
  selected.set(conn, algorithm);
  return { code: 200, message: algorithm };
}

/**
 * HASH (draft-bryan-ftp-hash) and the older XSHA256/XSHA1/XSHA512/XMD5: digests of a whole file.
 * They come from what the upload computed as the bytes streamed in; only a file written by someone
 * else is read to compute one, and only up to s3.hashMaxStreamMiB.
 */
export function hashCommands(contextOf: ContextOf): Record<string, CommandSpec> {
  const digestOf = async (session: Session, arg: string, algorithm: DigestAlgorithm) => {
    session.require('read');
    if (!arg.trim()) throw new FtpError('BAD_ARGUMENT', 'File name required');
    const path = session.resolve(arg);
    const digest = await session.store.digest(path, algorithm);
    if (!digest) throw new FtpError('NOT_AVAILABLE', 'No stored digest, and the file is too large to compute one');
    return { path, digest };
  };

  const xCommand = (algorithm: DigestAlgorithm, directive: string): CommandSpec => ({
    handler: sessionCommand(contextOf, async (conn, session, arg) => {
      const { digest } = await digestOf(session, arg, algorithm);
      await conn.reply(250, digest.hex);
    }),
    syntax: `${directive} <path>`,
  });

  return {
    HASH: {
      handler: sessionCommand(contextOf, async (conn, session, arg) => {
        const algorithm = selected.get(conn) ?? DEFAULT_ALGORITHM;
        const { path, digest } = await digestOf(session, arg, algorithm);
        await conn.reply(213, `${algorithm} 0-${digest.size} ${digest.hex} ${path}`);
      }),
      syntax: 'HASH <path>',
      feat: (conn) => [hashFeature(conn)],
    },
    XSHA256: xCommand('SHA-256', 'XSHA256'),
    XSHA1: xCommand('SHA-1', 'XSHA1'),
    XSHA512: xCommand('SHA-512', 'XSHA512'),
    XMD5: xCommand('MD5', 'XMD5'),
  };
}
