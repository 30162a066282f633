import { Readable } from 'node:stream';
import { GetObjectCommand, type GetObjectCommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { StorageError } from './errors.js';
import { classifyS3Error } from './s3-errors.js';

export interface ResumableReadOptions {
  client: S3Client;
  bucket: string;
  key: string;
  /** The byte offset `first` starts at. */
  start: number;
  /** The GetObject response already received (its headers tell the length and the ETag). */
  first: GetObjectCommandOutput;
  /** Consecutive failures without a byte of progress before the read gives up. */
  maxAttempts: number;
}

/**
 * A GetObject body that survives S3 breaking it: when the body errors (reset, stall time-out) or
 * ends short of its Content-Length, the rest is fetched with a ranged GET from the byte reached,
 * pinned to the first response's ETag (If-Match, and checked on the answer, for stores that ignore
 * If-Match). The stream ends only after exactly Content-Length bytes; otherwise it errors with
 * UNAVAILABLE, so a short file is never mistaken for a complete one.
 *
 * It pulls from S3 only as fast as it is read: a consumer that stops reading holds no more than
 * the stream buffers (an S3 socket left idle times out, and reading later resumes from there).
 */
export function resumableRead(options: ResumableReadOptions): Readable {
  const { client, bucket, key, first, maxAttempts } = options;
  const etag = first.ETag;
  const end = options.start + (first.ContentLength ?? 0);

  async function* chunks(): AsyncGenerator<Buffer> {
    let position = options.start;
    let body = first.Body as Readable | undefined;
    let failures = 0;
    for (;;) {
      let progressed = false;
      let cause: unknown;
      try {
        if (body) {
          for await (const chunk of body as AsyncIterable<Buffer>) {
            position += chunk.length;
            progressed = true;
            yield chunk;
          }
        }
        if (position === end) return;
        if (position > end) throw new StorageError('INTERNAL', 'Object longer than announced');
        cause = new Error(`body ended at byte ${position} of ${end}`);
      } catch (err) {
        if (err instanceof StorageError) throw err;
        cause = err;
      } finally {
        body?.destroy();
      }
      failures = progressed ? 1 : failures + 1;
      if (failures >= maxAttempts || etag === undefined) {
        throw new StorageError('UNAVAILABLE', 'Download interrupted', { cause });
      }
      let next: GetObjectCommandOutput;
      try {
        next = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${position}-`, IfMatch: etag }));
      } catch (err) {
        throw classifyS3Error(err);
      }
      body = next.Body as Readable | undefined;
      if (next.ETag !== etag) {
        body?.destroy();
        throw new StorageError('UNAVAILABLE', 'Object changed during download');
      }
    }
  }

  return Readable.from(chunks(), { objectMode: false, highWaterMark: 64 * 1024 });
}
