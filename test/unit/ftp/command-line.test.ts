import { describe, expect, it } from 'vitest';
import { CommandLineReader, LINE_TOO_LONG, MAX_LINE, parseCommandLine } from '../../../src/ftp/command-line.js';

const read = (...chunks: (string | number[])[]) => {
  const reader = new CommandLineReader();
  return chunks.flatMap((c) => reader.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : Buffer.from(c)));
};

describe('CommandLineReader', () => {
  it('splits at CRLF and LF, across any segmentation, skipping empty lines', () => {
    expect(read('USER a\r\nPASS b\n\r\nNOOP\r\n')).toEqual(['USER a', 'PASS b', 'NOOP']);
    expect(read('US', 'ER a\r', '\nNO', 'OP\r\n')).toEqual(['USER a', 'NOOP']);
  });

  it('ends a line at a CR that is the last byte so far (ftplib sends the LF of ABOR as urgent data)', () => {
    expect(read('ABOR\r')).toEqual(['ABOR']);
    expect(read('ABOR\r', '\nNOOP\r\n')).toEqual(['ABOR', 'NOOP']);
  });

  it('keeps a CR inside a line (it is a control character there)', () => {
    expect(read('MKD a\rb\r\n')).toEqual(['MKD a\rb']);
  });

  it('drops Telnet IP and Synch before ABOR, however the urgent byte was lost', () => {
    expect(read([0xff, 0xf4, 0xff, 0xf2, ...Buffer.from('ABOR\r\n')])).toEqual(['ABOR']);
    // IAC IP IAC sent as urgent data: the last IAC is taken out of band, DM arrives alone.
    expect(read([0xff, 0xf4, 0xf2, ...Buffer.from('ABOR\r\n')])).toEqual(['ABOR']);
    // IAC DM sent as urgent data: the DM is lost, its IAC stands before "A".
    expect(read([0xff, 0xf4, 0xff, ...Buffer.from('ABOR\r\n')])).toEqual(['ABOR']);
    expect(read([0xff, 0xf4], [0xff], [0xf2], 'ABOR\r\n')).toEqual(['ABOR']);
  });

  it('drops option negotiation, subnegotiation and IAC IAC', () => {
    expect(read([0xff, 0xfb, 0x01, 0xff, 0xfa, 0x18, 0x01, 0xff, 0xf0, ...Buffer.from('NO'), 0xff, 0xff, ...Buffer.from('OP\r\n')])).toEqual(['NOOP']);
  });

  it('keeps UTF-8 split across segments', () => {
    const bytes = Buffer.from('MKD dü\r\n');
    const cut = bytes.indexOf(0xc3) + 1;
    const reader = new CommandLineReader();
    expect([...reader.push(bytes.subarray(0, cut)), ...reader.push(bytes.subarray(cut))]).toEqual(['MKD dü']);
  });

  it('reports a line longer than MAX_LINE once and discards it up to its end', () => {
    const long = 'x'.repeat(MAX_LINE + 10);
    expect(read(long.slice(0, 5000), long.slice(5000) + '\r\nNOOP\r\n')).toEqual([LINE_TOO_LONG, 'NOOP']);
    expect(read('y'.repeat(MAX_LINE) + '\r\n')).toEqual(['y'.repeat(MAX_LINE)]);
  });
});

describe('parseCommandLine', () => {
  it.each([
    ['PASS "quoted" pass', '"quoted" pass'],
    ['PASS  leading space', ' leading space'],
    ['PASS -x', '-x'],
    ['PASS trailing ', 'trailing '],
    ['STOR my "quoted"  name.txt', 'my "quoted"  name.txt'],
    ['LIST -la /dir', '-la /dir'],
  ])('%j → the argument verbatim', (line, arg) => {
    expect(parseCommandLine(line)).toEqual({ directive: line.split(' ')[0], arg });
  });

  it('upper-cases the verb; no argument is null', () => {
    expect(parseCommandLine('noop')).toEqual({ directive: 'NOOP', arg: null });
  });

  it.each(['USER a\u0000b', 'STOR a\rb', 'PASS a\tb', 'MKD \u001b[31mred', 'RETR a\u007f', 'CWD \u009b2J', 'NO\u0007OP'])(
    '%j has a control character',
    (line) => {
      expect(parseCommandLine(line)).toEqual({ invalid: 'control-characters' });
    },
  );

  it('takes verbs with digits (XSHA256, XMD5)', () => {
    expect(parseCommandLine('xsha256 a.bin')).toEqual({ directive: 'XSHA256', arg: 'a.bin' });
  });

  it.each([' NOOP', 'NO-OP', '1NOOP', 'ÜBER x', 'A'.repeat(17)])('%j is not a command', (line) => {
    expect(parseCommandLine(line)).toEqual({ invalid: 'not-a-command' });
  });
});
