import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBridge, sha256 } from '../support/bridge.js';
import { curl } from '../support/clients.js';

/**
 * APPE's buffers (the small existing object read to be sent again, and the appended parts) count
 * against the one s3.memoryLimitMiB budget of all uploads. At the smallest cap (16 MiB, two 8 MiB
 * parts) several appends at once still all land whole: they wait for budget, they do not fail or
 * deadlock.
 */
let bridge: TestBridge;
const tmp = mkdtempSync(join(tmpdir(), 'ftp-s3-bridge-append-mem-'));
const MiB = 1024 * 1024;
const SESSIONS = 4;

beforeAll(async () => {
  bridge = await TestBridge.start({ s3: { memoryLimitMiB: 16, partSizeMiB: 8, queueSize: 2 } });
});
afterAll(async () => {
  await bridge?.close();
});

function localFile(name: string, data: Buffer): string {
  const path = join(tmp, name);
  writeFileSync(path, data);
  return path;
}

/** `curl -a` of `added` onto each `existing` object at once; the curl results. */
async function appendAll(prefix: string, existing: Buffer[], added: Buffer[]) {
  await Promise.all(existing.map((b, i) => bridge.put(`${prefix}/${i}.bin`, b)));
  return Promise.all(
    added.map((b, i) => curl(['--max-time', '120', '-a', '-T', localFile(`${prefix}-${i}.part`, b), bridge.url(`/${prefix}/${i}.bin`)])),
  );
}

describe('APPE under a 16 MiB memory cap', () => {
  it(`${SESSIONS} appends to small objects at once (read, resent, then parts) all land whole`, async () => {
    const existing = Array.from({ length: SESSIONS }, (_, i) => randomBytes(3 * MiB + i * 1000));
    const added = Array.from({ length: SESSIONS }, (_, i) => randomBytes(9 * MiB + i));
    const results = await appendAll('small', existing, added);
    for (const res of results) {
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
    }
    for (let i = 0; i < SESSIONS; i++) {
      expect(await bridge.objectHash(`small/${i}.bin`)).toBe(sha256(Buffer.concat([existing[i] as Buffer, added[i] as Buffer])));
    }
  }, 120_000);

  it(`${SESSIONS} appends to objects of 5 MiB or more at once (server-side copy, then parts) all land whole`, async () => {
    const existing = Array.from({ length: SESSIONS }, (_, i) => randomBytes(6 * MiB + i));
    const added = Array.from({ length: SESSIONS }, (_, i) => randomBytes(10 * MiB + i * 7));
    const results = await appendAll('large', existing, added);
    for (let i = 0; i < SESSIONS; i++) {
      const res = results[i];
      if (bridge.backend.capabilities.uploadPartCopy) {
        expect(res?.stderr).toBe('');
        expect(res?.code).toBe(0);
        expect(await bridge.objectHash(`large/${i}.bin`)).toBe(sha256(Buffer.concat([existing[i] as Buffer, added[i] as Buffer])));
      } else {
        // A store without UploadPartCopy: refused (504) before any data, the old object kept.
        expect(res?.code).not.toBe(0);
        expect(await bridge.objectHash(`large/${i}.bin`)).toBe(sha256(existing[i] as Buffer));
      }
    }
  }, 120_000);
});
