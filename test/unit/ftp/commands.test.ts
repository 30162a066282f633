import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../../src/ftp/command-line.js';
import { featuresOf } from '../../../src/ftp/commands/index.js';

const FEATURES = featuresOf();

/** The argument a handler gets for a command line (the command table passes '' for none). */
function rawArgument(raw: string): string {
  const parsed = parseCommandLine(raw);
  if ('invalid' in parsed) throw new Error('invalid line');
  return parsed.arg ?? '';
}

describe('the argument handlers get', () => {
  it('keeps quotes and multiple spaces exactly', () => {
    expect(rawArgument('STOR my "quoted"  name.txt')).toBe('my "quoted"  name.txt');
  });

  it.each([
    ['STOR a.txt', 'a.txt'],
    ['STOR  leading space.txt', ' leading space.txt'],
    ['STOR trailing space ', 'trailing space '],
    ['STOR -dash-first.txt', '-dash-first.txt'],
    ['RETR Überwachung/日本語 ü.jpg', 'Überwachung/日本語 ü.jpg'],
    ['LIST -la /some dir', '-la /some dir'],
    ['REST 100', '100'],
    ['TYPE L 8', 'L 8'],
  ])('%j → %j', (raw, expected) => {
    expect(rawArgument(raw)).toBe(expected);
  });

  it('is empty for a command without an argument', () => {
    expect(rawArgument('PWD')).toBe('');
    expect(rawArgument('NOOP')).toBe('');
  });

  it('keeps a password with quotes, spaces and a leading dash verbatim', () => {
    expect(rawArgument('PASS  "my pass" -x ')).toBe(' "my pass" -x ');
  });
});

describe('FEATURES', () => {
  it.each(['EPSV', 'REST STREAM', 'SIZE', 'MDTM', 'UTF8'])('announces %s', (feature) => {
    expect(FEATURES).toContain(feature);
  });

  it('announces MLST with the facts it serves, all marked as default', () => {
    const mlst = FEATURES.find((f) => f.startsWith('MLST '));
    expect(mlst).toBeDefined();
    const facts = (mlst as string).slice('MLST '.length).split(';').filter(Boolean);
    expect(facts.sort()).toEqual(['modify*', 'perm*', 'size*', 'type*', 'unique*']);
  });

  it('every line is a single feature without control characters', () => {
    for (const f of FEATURES) {
      expect(f).toMatch(/^[A-Z0-9]+(?: \S.*)?$/);
      // eslint-disable-next-line no-control-regex
      expect(f).not.toMatch(/[\x00-\x1f]/);
    }
  });
});
