import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { DigestPersistence, MAX_PERSIST_BYTES, type PersistOutcome } from '../../../src/storage/digest-persistence.js';
import type { CommittedObject } from '../../../src/storage/object-store.js';

/** The background CopyObject that stores a multipart upload's digests, against a scripted S3. */
const ETAG = '"abc-2"';
const object = (over: Partial<CommittedObject> = {}): CommittedObject => ({
  bucket: 'b',
  key: 'cam/clip.mp4',
  size: 12 * 1024 * 1024,
  etag: ETAG,
  digests: { 'SHA-256': 'aa'.repeat(32), MD5: 'bb'.repeat(16) },
  digestsInMetadata: false,
  ...over,
});

interface Sent {
  name: string;
  input: Record<string, unknown>;
}

/** An S3 client whose answers a test scripts; `copy` may return a promise the test settles. */
function s3(script: { head?: (input: Record<string, unknown>) => unknown; copy?: (input: Record<string, unknown>, signal?: AbortSignal) => Promise<unknown> }) {
  const sent: Sent[] = [];
  const client = {
    send: async (command: { constructor: { name: string }; input: Record<string, unknown> }, options?: { abortSignal?: AbortSignal }) => {
      const name = command.constructor.name.replace(/Command$/, '');
      sent.push({ name, input: command.input });
      if (name === 'HeadObject') return script.head ? script.head(command.input) : { ETag: ETAG, ContentType: 'video/mp4', Metadata: { 'ftp-user': 'cam' } };
      if (name === 'CopyObject') return script.copy ? script.copy(command.input, options?.abortSignal) : { CopyObjectResult: { ETag: '"new"' } };
      throw new Error(`unexpected ${name}`);
    },
  } as unknown as S3Client;
  return { client, sent };
}

const sdkError = (name: string, status: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });

function recorder() {
  const outcomes: PersistOutcome[] = [];
  const persistence = new DigestPersistence({ onOutcome: (o) => outcomes.push(o) });
  return { outcomes, persistence };
}

describe('DigestPersistence', () => {
  it('copies the object onto itself with the same metadata plus the digests, guarded by the committed ETag', async () => {
    const { client, sent } = s3({});
    const { outcomes, persistence } = recorder();
    persistence.persist(client, object(), { Metadata: { 'ftp-user': 'cam' }, StorageClass: 'STANDARD_IA', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'k1' });
    expect(persistence.size).toBe(1);
    await persistence.drain(5000);
    expect(sent.map((s) => s.name)).toEqual(['HeadObject', 'CopyObject']);
    expect(sent[1]?.input).toMatchObject({
      Bucket: 'b',
      Key: 'cam/clip.mp4',
      CopySource: 'b/cam/clip.mp4',
      CopySourceIfMatch: ETAG,
      MetadataDirective: 'REPLACE',
      Metadata: { 'ftp-user': 'cam', sha256: 'aa'.repeat(32), md5: 'bb'.repeat(16) },
      ContentType: 'video/mp4',
      StorageClass: 'STANDARD_IA',
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: 'k1',
    });
    expect(outcomes).toMatchObject([{ result: 'persisted', guard: 'copy-source-if-match', key: 'cam/clip.mp4' }]);
    expect(persistence.size).toBe(0);
  });

  it('keys with spaces and non-ASCII names are URL-encoded in the copy source, slashes kept', async () => {
    const { client, sent } = s3({});
    const { persistence } = recorder();
    persistence.persist(client, object({ key: 'Überwachung/cam 1.mp4' }));
    await persistence.drain(5000);
    expect(sent[1]?.input.CopySource).toBe('b/%C3%9Cberwachung/cam%201.mp4');
  });

  it('does nothing for single-request uploads, above CopyObject\'s 5 GiB, or without an ETag', async () => {
    const { client, sent } = s3({});
    const { outcomes, persistence } = recorder();
    persistence.persist(client, object({ digestsInMetadata: true }));
    persistence.persist(client, object({ etag: undefined }));
    persistence.persist(client, object({ size: MAX_PERSIST_BYTES + 1 }));
    persistence.persist(client, object({ size: MAX_PERSIST_BYTES }));
    await persistence.drain(5000);
    expect(outcomes.map((o) => [o.size, o.result, o.reason])).toEqual([
      [MAX_PERSIST_BYTES + 1, 'skipped', 'too-large'],
      [MAX_PERSIST_BYTES, 'persisted', undefined],
    ]);
    expect(sent.filter((s) => s.name === 'CopyObject')).toHaveLength(1);
  });

  it('an object replaced since the commit (another ETag, or gone) is skipped, never copied', async () => {
    const replaced = s3({ head: () => ({ ETag: '"other"' }) });
    const gone = s3({
      head: () => {
        throw sdkError('NotFound', 404);
      },
    });
    const { outcomes, persistence } = recorder();
    persistence.persist(replaced.client, object());
    persistence.persist(gone.client, object({ key: 'x' }));
    await persistence.drain(5000);
    expect(outcomes.map((o) => [o.result, o.reason])).toEqual([
      ['skipped', 'changed'],
      ['skipped', 'changed'],
    ]);
    expect([...replaced.sent, ...gone.sent].map((s) => s.name)).toEqual(['HeadObject', 'HeadObject']);
  });

  it('a store that answers 412 to the right ETag (Swift, multipart objects) gets a copy checked by a HEAD instead', async () => {
    let copies = 0;
    const { client, sent } = s3({
      copy: async (input) => {
        copies++;
        if (input.CopySourceIfMatch) throw sdkError('PreconditionFailed', 412);
        return { CopyObjectResult: {} };
      },
    });
    const { outcomes, persistence } = recorder();
    persistence.persist(client, object());
    await persistence.drain(5000);
    expect(sent.map((s) => s.name)).toEqual(['HeadObject', 'CopyObject', 'HeadObject', 'CopyObject']);
    expect(copies).toBe(2);
    expect(outcomes).toMatchObject([{ result: 'persisted', guard: 'head' }]);
  });

  it('a 412 for an object that really changed is not retried', async () => {
    let heads = 0;
    const { client, sent } = s3({
      head: () => ({ ETag: ++heads === 1 ? ETAG : '"replaced"' }),
      copy: async () => {
        throw sdkError('PreconditionFailed', 412);
      },
    });
    const { outcomes, persistence } = recorder();
    persistence.persist(client, object());
    await persistence.drain(5000);
    expect(sent.map((s) => s.name)).toEqual(['HeadObject', 'CopyObject', 'HeadObject']);
    expect(outcomes).toMatchObject([{ result: 'skipped', reason: 'changed' }]);
  });

  it('a failure is reported as an outcome, never thrown', async () => {
    const { client } = s3({
      copy: async () => {
        throw sdkError('InternalError', 500);
      },
    });
    const { outcomes, persistence } = recorder();
    persistence.persist(client, object());
    await persistence.drain(5000);
    expect(outcomes).toMatchObject([{ result: 'failed', error: { code: 'UNAVAILABLE' } }]);
  });

  it('an object already carrying these digests is not copied again', async () => {
    const { client, sent } = s3({ head: () => ({ ETag: ETAG, Metadata: { sha256: 'aa'.repeat(32), md5: 'bb'.repeat(16) } }) });
    const { outcomes, persistence } = recorder();
    persistence.persist(client, object());
    await persistence.drain(5000);
    expect(sent.map((s) => s.name)).toEqual(['HeadObject']);
    expect(outcomes).toMatchObject([{ result: 'skipped', reason: 'already-stored' }]);
  });

  it('idle(key) waits for the copy of that key (and keys under it), not for others', async () => {
    let finish!: () => void;
    const { client } = s3({ copy: () => new Promise((resolve) => (finish = () => resolve({})))});
    const { persistence } = recorder();
    persistence.persist(client, object({ key: 'dir/a.bin' }));
    let idle = false;
    const waiting = persistence.idle('b', 'dir/a.bin').then(() => (idle = true));
    await persistence.idle('b', 'other');
    await persistence.idle('other-bucket', 'dir/a.bin');
    const dirIdle = persistence.idle('b', 'dir');
    await new Promise((r) => setTimeout(r, 20));
    expect(idle).toBe(false);
    finish();
    await waiting;
    await dirIdle;
    expect(idle).toBe(true);
  });

  it('drain waits for copies in flight up to its timeout, then aborts them; nothing starts afterwards', async () => {
    const { client } = s3({
      copy: (_input, signal) =>
        new Promise((_resolve, reject) => {
          signal?.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })));
        }),
    });
    const { outcomes, persistence } = recorder();
    persistence.persist(client, object());
    const started = Date.now();
    await persistence.drain(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(persistence.size).toBe(0);
    expect(outcomes).toMatchObject([{ result: 'skipped', reason: 'shutdown' }]);
    persistence.persist(client, object({ key: 'late' }));
    expect(persistence.size).toBe(0);
    expect(outcomes[1]).toMatchObject({ key: 'late', result: 'skipped', reason: 'shutdown' });
  });
});

describe('DigestPersistence concurrency', () => {
  it('runs at most maxConcurrent copies at once; the others wait their turn, and idle() waits for them too', async () => {
    let running = 0;
    let most = 0;
    const { client } = s3({
      copy: async () => {
        running++;
        most = Math.max(most, running);
        await new Promise((r) => setTimeout(r, 10));
        running--;
        return {};
      },
    });
    const outcomes: PersistOutcome[] = [];
    const persistence = new DigestPersistence({ onOutcome: (o) => outcomes.push(o), maxConcurrent: 2 });
    for (let i = 0; i < 7; i++) persistence.persist(client, object({ key: `k${i}` }));
    expect(persistence.size).toBe(7);
    await persistence.idle('b', 'k6');
    expect(outcomes.find((o) => o.key === 'k6')).toMatchObject({ result: 'persisted' });
    await persistence.drain(5000);
    expect(most).toBe(2);
    expect(outcomes.filter((o) => o.result === 'persisted')).toHaveLength(7);
  });
});
