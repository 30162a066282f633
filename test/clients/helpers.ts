import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { expect } from 'vitest';
import { sha256, type TestBridge } from '../support/bridge.js';

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
