import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { describe, expect, it } from 'vitest';

/** The layers of src/, lowest first: a module may import its own layer and lower ones only. */
const LAYERS = ['config', 'storage', 'cluster', 'accounts', 'sessions', 'ftp', 'sftp', 'server', 'cli'];
/** Front ends: peers on one level, neither imports the other (both build on sessions/). */
const FRONT_ENDS = ['ftp', 'sftp'];
const SRC = resolve('src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

const layerOf = (file: string) => relative(SRC, file).split('/')[0] as string;

describe('architecture', () => {
  it('every source file lives in a known layer', () => {
    for (const file of sourceFiles(SRC)) expect(LAYERS).toContain(layerOf(file));
  });

  it('lower layers never import higher ones', () => {
    const violations: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const from = LAYERS.indexOf(layerOf(file));
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g)) {
        const spec = (m[1] ?? m[2]) as string;
        const target = resolve(dirname(file), spec);
        const to = LAYERS.indexOf(layerOf(target));
        if (to > from) violations.push(`${relative(SRC, file)} imports ${spec}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('front ends never import each other', () => {
    const violations: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const from = layerOf(file);
      if (!FRONT_ENDS.includes(from)) continue;
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g)) {
        const spec = (m[1] ?? m[2]) as string;
        const to = layerOf(resolve(dirname(file), spec));
        if (FRONT_ENDS.includes(to) && to !== from) violations.push(`${relative(SRC, file)} imports ${spec}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('sessions know nothing of FTP or SFTP', () => {
    for (const file of sourceFiles(join(SRC, 'sessions'))) {
      expect(readFileSync(file, 'utf8'), file).not.toMatch(/from '\.\.\/(ftp|sftp)\//);
    }
  });

  it('storage knows nothing of FTP reply codes, and ftp nothing of the AWS SDK', () => {
    for (const file of sourceFiles(join(SRC, 'storage'))) {
      expect(readFileSync(file, 'utf8'), file).not.toMatch(/from '\.\.\/ftp\//);
    }
    for (const file of [...sourceFiles(join(SRC, 'ftp')), ...sourceFiles(join(SRC, 'sftp'))]) {
      expect(readFileSync(file, 'utf8'), file).not.toMatch(/@aws-sdk\//);
    }
  });

  it('only the ftp-srv adapter imports ftp-srv', () => {
    const importers = sourceFiles(SRC)
      .filter((file) => /from\s+'ftp-srv(?:\/[^']*)?'|(?:require|import)\(\s*'ftp-srv(?:\/[^']*)?'\s*\)/.test(readFileSync(file, 'utf8')))
      .map((file) => relative(SRC, file));
    expect(importers).toEqual(['ftp/ftp-srv-adapter.ts']);
  });

  it('ssh2 is loaded only with SFTP: outside src/sftp through config/ssh2-module.ts, and sftp-server only by a dynamic import', () => {
    const ssh2Importers = sourceFiles(SRC)
      .filter((file) => /^import (?!type )[^;]*from 'ssh2(?:\/[^']*)?';/m.test(readFileSync(file, 'utf8')))
      .map((file) => relative(SRC, file));
    expect(ssh2Importers.filter((file) => !file.startsWith('sftp/'))).toEqual([]);
    const sftpServerImporters = sourceFiles(SRC)
      .filter((file) => /^import (?!type )[^;]*from '[./]*sftp\/sftp-server\.js';/m.test(readFileSync(file, 'utf8')))
      .map((file) => relative(SRC, file));
    expect(sftpServerImporters).toEqual([]);
  });

  it("zod's locales are not used (patches/zod+*.patch leaves them unloaded)", () => {
    const users = sourceFiles(SRC)
      .filter((file) => /\blocales\b/.test(readFileSync(file, 'utf8')))
      .map((file) => relative(SRC, file));
    expect(users).toEqual([]);
  });

  it('node:http is never imported as an ES module (its namespace loads undici): config/node-http.ts requires it', () => {
    const importers = sourceFiles(SRC)
      .filter((file) => /^import (?!type )[^;]*from 'node:http';/m.test(readFileSync(file, 'utf8')))
      .map((file) => relative(SRC, file));
    expect(importers).toEqual([]);
  });

  it('npm test needs no program from a package a fresh machine lacks: tests that start one live in test/system or test/clients', () => {
    const TEST = resolve('test');
    // Programs .ci/run installs from Debian's packages for `npm run test:system`; the test/support
    // modules that start them.
    const program = /\b(?:runProgram|run|spawn|spawnSync|execFile|execFileSync)\(\s*'(lftp|rclone|busybox|sshpass|haproxy|redis-server|clamd|ruby|go|python3-paramiko)'/;
    const support = /from\s+'\.\.\/support\/(redis|clamd|haproxy)\.js'/;
    const violations: string[] = [];
    for (const dir of ['unit', 'integration']) {
      for (const file of sourceFiles(join(TEST, dir))) {
        const text = readFileSync(file, 'utf8');
        const m = program.exec(text) ?? support.exec(text);
        if (m) violations.push(`${relative(TEST, file)}: ${m[0]}`);
      }
    }
    expect(violations).toEqual([]);
  });
});
