import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMAND_FAMILIES, COMMANDS } from '../../../src/ftp/commands/index.js';

const DOC = readFileSync(resolve('docs/architecture.md'), 'utf8');

/** The lines of the doc between `<!-- name -->` and `<!-- /name -->`. */
function section(name: string): string[] {
  const start = DOC.indexOf(`<!-- ${name} -->`);
  const end = DOC.indexOf(`<!-- /${name} -->`);
  if (start < 0 || end < start) throw new Error(`docs/architecture.md has no ${name} section`);
  return DOC.slice(start, end).split('\n').slice(1).filter((l) => l.trim() !== '');
}

/** The cells of a markdown table's body rows (header and separator skipped). */
const rows = (lines: string[]) =>
  lines
    .filter((l) => l.startsWith('|'))
    .slice(2)
    .map((l) => l.split('|').slice(1, -1).map((c) => c.trim().replace(/`/g, '')));

const list = (cell: string) => (cell === '—' ? [] : cell.split(', '));

describe('the command table', () => {
  it('every command has its syntax and help, and says whether it needs a login', () => {
    for (const [directive, spec] of Object.entries(COMMANDS)) {
      expect(spec.syntax, directive).toMatch(/\S/);
      expect(spec.help, directive).toMatch(/\S/);
      expect(typeof spec.loginRequired, directive).toBe('boolean');
      if (spec.permission) expect(spec.loginRequired, directive).toBe(true);
    }
  });

  it('before login only the login, TLS and informational commands are answered', () => {
    const open = Object.entries(COMMANDS).filter(([, s]) => !s.loginRequired).map(([d]) => d);
    expect(open.sort()).toEqual(['AUTH', 'FEAT', 'HELP', 'NOOP', 'OPTS', 'PASS', 'PBSZ', 'PROT', 'QUIT', 'SYST', 'USER']);
  });

  it('ABOR, STAT and QUIT act during a transfer; the transfers are the commands that move data', () => {
    const during = Object.entries(COMMANDS).filter(([, s]) => s.duringTransfer).map(([d]) => d);
    expect(during.sort()).toEqual(['ABOR', 'QUIT', 'STAT']);
    const transfers = Object.entries(COMMANDS).filter(([, s]) => s.transfer).map(([d]) => d);
    expect(transfers.sort()).toEqual(['APPE', 'LIST', 'MLSD', 'NLST', 'RETR', 'STOR', 'STOU']);
  });
});

describe('docs/architecture.md', () => {
  it('its command → handler file → FileStore method → S3 requests table is the command table', () => {
    const s3Of = new Map(rows(section('filestore-s3')).map(([method = '', requests = '']) => [method, list(requests)]));
    const expected = Object.entries(COMMAND_FAMILIES).flatMap(([file, family]) =>
      Object.entries(family).map(([directive, spec]) => {
        const methods = [...(spec.store ?? [])].sort();
        const requests = [...new Set(methods.flatMap((m) => s3Of.get(m) ?? [`(${m} missing from the FileStore table)`]))];
        return [directive, file, methods.join(', ') || '—', requests.join(', ') || '—'];
      }),
    );
    const documented = rows(section('command-table'));
    const render = (r: string[][]) => r.map((cells) => `| ${cells.map((c, i) => (i < 3 && c !== '—' ? '`' + c + '`' : c)).join(' | ')} |`).join('\n');
    expect(render(documented), 'paste the expected rows into docs/architecture.md').toBe(render(expected));
  });

  it('its layer map names every module of src/', () => {
    const map = section('layer-map').join('\n');
    const files = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
    const missing = files(resolve('src'))
      .map((f) => relative(resolve('src'), f))
      .filter((f) => !map.includes(f));
    expect(missing).toEqual([]);
  });
});
