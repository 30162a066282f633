import { describe, expect, it } from 'vitest';
import { buildCommands, featuresOf, rawArgument } from '../../../src/ftp/commands/index.js';

const FEATURES = featuresOf(buildCommands(() => {
  throw new Error('not used');
}));
import type { FtpCommand } from '../../../src/ftp/ftp-srv-internals.js';

/** A command roughly as ftp-srv's parser hands it over: quotes stripped from arg, flags split off. */
function command(raw: string): FtpCommand {
  const [directive = '', ...rest] = raw.split(' ');
  const words = rest.join(' ').replace(/"/g, '').split(' ');
  return {
    directive: directive.toUpperCase(),
    arg: words.filter((w) => !w.startsWith('-')).join(' ') || null,
    flags: words.filter((w) => w.startsWith('-')),
    raw,
  };
}

describe('rawArgument', () => {
  it('keeps quotes and multiple spaces exactly', () => {
    expect(rawArgument(command('STOR my "quoted"  name.txt'))).toBe('my "quoted"  name.txt');
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
    expect(rawArgument(command(raw))).toBe(expected);
  });

  it('is empty for a command without an argument', () => {
    expect(rawArgument(command('PWD'))).toBe('');
    expect(rawArgument(command('NOOP'))).toBe('');
  });

  it('does not rely on the parsed arg, which lost the quotes', () => {
    const c = command('STOR my "quoted"  name.txt');
    expect(c.arg).not.toContain('"');
    expect(rawArgument(c)).toContain('"quoted"');
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
