import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { TestBridge } from './bridge.js';
import { RawFtp, type FtpReply } from './clients.js';

/** An FTP session logged in, its passive data connection open, and the bytes it will STOR as `name`. */
export interface PendingUpload {
  ftp: RawFtp;
  data: Socket;
  name: string;
  body: Buffer;
}

/** A session of `user` (password `<user>-pw`) with its data connection open, ready to STOR `size` random bytes. */
export async function openUpload(bridge: TestBridge, user: string, name: string, size: number): Promise<PendingUpload> {
  const ftp = await RawFtp.connect(bridge.port);
  await ftp.login(user, `${user}-pw`);
  const data = await ftp.pasv();
  // The bridge resets the data connection of an upload it refuses.
  data.on('error', () => undefined);
  return { ftp, data, name, body: randomBytes(size) };
}

/** Writes `body` and resolves once it is handed to the kernel (the data connection stays open). */
export const writeData = (socket: Socket, body: Buffer) => new Promise<void>((resolve) => socket.write(body, () => resolve()));

/** Resolves once `n` of `replies` have arrived, with those that have. */
export function firstReplies(replies: Promise<FtpReply>[], n: number): Promise<FtpReply[]> {
  return new Promise((resolve, reject) => {
    const arrived: FtpReply[] = [];
    if (n === 0) resolve([]);
    for (const r of replies) {
      r.then((reply) => {
        arrived.push(reply);
        if (arrived.length === n) resolve([...arrived]);
      }, reject);
    }
  });
}

/** What S3 holds under a prefix of the bridge's bucket: bytes, and the sha256 of each object by key. */
export async function storedUnder(bridge: TestBridge, prefix: string): Promise<{ bytes: number; hashes: Map<string, string> }> {
  const page = await bridge.s3.send(new ListObjectsV2Command({ Bucket: bridge.bucket, Prefix: prefix }));
  const hashes = new Map<string, string>();
  for (const o of page.Contents ?? []) hashes.set(o.Key as string, (await bridge.objectHash(o.Key as string)) as string);
  return { bytes: (page.Contents ?? []).reduce((n, o) => n + (o.Size ?? 0), 0), hashes };
}
