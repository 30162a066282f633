import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, sha256, TestBridge, USER } from '../support/bridge.js';
import type { ProcessResult } from '../support/clients.js';
import { makeCertificate, type TestCertificate } from '../support/tls.js';

/** A fresh local directory for one client's files. */
export const scratch = (name: string): string => mkdtempSync(join(tmpdir(), `ftp-s3-bridge-${name}-`));

/** Writes random files (relative path → size) under `root`; returns relative path → content. */
export function makeTree(root: string, files: Record<string, number>): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [rel, size] of Object.entries(files)) {
    const path = join(root, rel);
    mkdirSync(join(path, '..'), { recursive: true });
    const data = randomBytes(size);
    writeFileSync(path, data);
    out.set(rel, data);
  }
  return out;
}

/** Every file under `root`, as relative path → content. */
export function readTree(root: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.set(relative(root, path), readFileSync(path));
    }
  };
  walk(root);
  return out;
}

/** Each file of `tree` is in S3 under `prefix` with the same SHA-256, and nothing else is. */
export async function expectTreeInS3(bridge: TestBridge, prefix: string, tree: Map<string, Buffer>): Promise<void> {
  const keys = (await bridge.keys(prefix)).filter((k) => !k.endsWith('/'));
  expect(keys).toEqual([...tree.keys()].map((rel) => prefix + rel).sort());
  const entries = [...tree];
  for (let i = 0; i < entries.length; i += 8) {
    const batch = entries.slice(i, i + 8);
    const hashes = await Promise.all(batch.map(([rel]) => bridge.objectHash(prefix + rel)));
    batch.forEach(([rel, data], j) => expect(hashes[j], rel).toBe(sha256(data)));
  }
}

/** Byte-for-byte equality of two trees. */
export function expectSameTree(actual: Map<string, Buffer>, expected: Map<string, Buffer>): void {
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [rel, data] of expected) expect(sha256(actual.get(rel) ?? Buffer.alloc(0)), rel).toBe(sha256(data));
}

/** How a scripted client connects: in the clear, AUTH TLS, or implicit FTPS; and which TLS version it insists on. */
export type Connection = ['plain', '-'] | ['explicit' | 'implicit', '1.2' | '1.3'];

/**
 * Uploads of clients that write an upload's data connection and close it without ever reading it
 * (Perl Net::FTP, Go jlaffaye/ftp, Ruby net/ftp): a few MiB put and got back over each connection,
 * checked in S3 and locally by hash. Over TLS 1.3 such an upload is lost (426) if the bridge sends
 * anything after the handshake (session tickets) that the client never reads: closing with unread
 * bytes makes the client's kernel reset the connection before the file's tail is delivered.
 * `run` gets MODE TLS PORT USER PASSWORD CAFILE LOCAL REMOTE BACK.
 */
export function describeUnreadDataClient(client: string, connections: Connection[], run: (args: string[]) => Promise<ProcessResult>): void {
  describe(`${client}: uploads whose data connection the client never reads`, () => {
    let bridge: TestBridge;
    let cert: TestCertificate;
    const dir = scratch(client.replace(/\W+/g, '-'));
    beforeAll(async () => {
      cert = await makeCertificate(dir, 'server');
      bridge = await TestBridge.start({ ftp: { tls: { cert: cert.cert, key: cert.key, implicitPort: 0 } } });
    });
    afterAll(async () => {
      await bridge?.close();
    });

    it.each(connections)('%s (TLS %s): puts 4 MiB and gets it back; S3 holds the bytes', async (mode, tls) => {
      const name = `${mode}-${tls.replace('.', '')}.bin`;
      const data = randomBytes(4 * 1024 * 1024);
      const local = join(dir, name);
      const back = join(dir, `${name}.back`);
      writeFileSync(local, data);
      const port = mode === 'implicit' ? (bridge.ftpsImplicitPort as number) : bridge.port;
      const r = await run([mode, tls, String(port), USER, PASSWORD, cert.cert, local, name, back]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(await bridge.objectHash(name)).toBe(sha256(data));
      expect(sha256(readFileSync(back))).toBe(sha256(data));
    }, 120_000);
  });
}
