import { describe, expect, it } from 'vitest';
import { FtpReplyParser, type FtpReply } from '../../../src/ftp/reply-parser.js';

/** Feeds the chunks one by one; returns every reply, and after which chunk it was complete. */
function feed(chunks: (Buffer | string)[]): { reply: FtpReply; after: number }[] {
  const parser = new FtpReplyParser();
  return chunks.flatMap((chunk, i) => parser.push(chunk).map((reply) => ({ reply, after: i })));
}

describe('FtpReplyParser', () => {
  it('parses a single-line reply, and keeps a partial one until its line ends', () => {
    const parser = new FtpReplyParser();
    expect(parser.push('220 ready\r')).toEqual([]);
    expect(parser.push('\n331 Pass')).toEqual([{ code: 220, lines: ['220 ready'], text: '220 ready' }]);
    expect(parser.push('word required\r\n')).toEqual([{ code: 331, lines: ['331 Password required'], text: '331 Password required' }]);
  });

  it('returns several replies of one chunk in order', () => {
    const parser = new FtpReplyParser();
    expect(parser.push('200 Type set to I\r\n227 Entering Passive Mode (127,0,0,1,4,1)\r\n150 ok').map((r) => r.code)).toEqual([200, 227]);
    expect(parser.push('\r\n').map((r) => r.code)).toEqual([150]);
  });

  it('ends a multi-line reply only at its own code and a space; inner lines may start with digits', () => {
    const feat = ['211-Features:', ' EPSV', ' UTF8', '211 End'];
    expect(feed([feat.join('\r\n') + '\r\n'])).toEqual([{ reply: { code: 211, lines: feat, text: feat.join('\n') }, after: 0 }]);

    // RFC 959 §4.2: inner lines that start with other codes, or with the code and a hyphen, or with digits, do not end it.
    const block = ['250-Listing follows', '200 not the end (other code)', '250-still inside', '2500 bytes', '  250 indented', '250 End'];
    const got = feed([block.join('\r\n') + '\r\n']);
    expect(got).toHaveLength(1);
    expect(got[0]?.reply).toEqual({ code: 250, lines: block, text: block.join('\n') });
  });

  it('reassembles replies split across chunks anywhere, even inside the code and the CRLF', () => {
    const wire = '220-Welcome\r\n220-2 lines of text\r\n220 ready\r\n331 Password required\r\n';
    const whole = feed([wire]).map((r) => r.reply);
    expect(whole.map((r) => r.code)).toEqual([220, 331]);
    for (let a = 1; a < wire.length; a++) {
      for (const b of [a + 1, a + 7, wire.length - 1]) {
        if (b <= a || b >= wire.length) continue;
        const parts = [wire.slice(0, a), wire.slice(a, b), wire.slice(b)];
        expect(feed(parts).map((r) => r.reply), JSON.stringify(parts)).toEqual(whole);
      }
    }
    // Byte by byte: each reply is complete exactly after its last LF.
    const bytes = [...Buffer.from(wire)].map((b) => Buffer.from([b]));
    expect(feed(bytes).map((r) => r.after)).toEqual([wire.indexOf('220 ready\r\n') + 10, wire.length - 1]);
  });

  it('accepts LF as well as CRLF line ends, and removes both', () => {
    const lf = feed(['230-Welcome\n230-x\n230 Logged in\n257 "/" is the current directory\n']).map((r) => r.reply);
    const crlf = feed(['230-Welcome\r\n230-x\r\n230 Logged in\r\n257 "/" is the current directory\r\n']).map((r) => r.reply);
    expect(lf).toEqual(crlf);
    expect(lf.map((r) => r.code)).toEqual([230, 257]);
    expect(lf[0]?.lines).toEqual(['230-Welcome', '230-x', '230 Logged in']);
    expect(lf.every((r) => !/\r/.test(r.text))).toBe(true);
  });

  it('decodes UTF-8 split across Buffer chunks', () => {
    const wire = Buffer.from('257 "/Bäder/日本" created\r\n');
    const split = wire.indexOf(Buffer.from('日')) + 1; // inside the three bytes of 日
    expect(feed([wire.subarray(0, split), wire.subarray(split)])[0]?.reply.text).toBe('257 "/Bäder/日本" created');
  });

  it('keeps lines that are no reply line with the reply that follows', () => {
    expect(feed(['garbage\r\n', '500 Unknown command\r\n'])[0]?.reply).toEqual({
      code: 500,
      lines: ['garbage', '500 Unknown command'],
      text: 'garbage\n500 Unknown command',
    });
  });
});
