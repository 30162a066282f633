/**
 * The control connection's byte stream → command lines (RFC 959 §4.1.3, §5.4, RFC 854).
 *
 * Telnet sequences are dropped: IAC + command, IAC + WILL/WONT/DO/DONT + option, IAC SB ... IAC SE,
 * and IAC IAC. Clients put "Interrupt Process" + "Synch" (IAC IP IAC DM) before ABOR and send part
 * of it as TCP urgent data; Linux then takes the urgent byte out of the stream (Node cannot read it),
 * so what arrives may be IAC IP DM (its IAC lost) or IAC IP IAC (its DM lost): a lone IAC is
 * dropped, and so are Telnet command bytes (0xF0-0xFE) before the first character of a line.
 */

const IAC = 0xff;
const SB = 0xfa;
const SE = 0xf0;
const WILL = 0xfb;
const DONT = 0xfe;
const CR = 0x0d;
const LF = 0x0a;

/** Longest command line accepted (bytes, without its line end). */
export const MAX_LINE = 8192;

/** A line longer than {@link MAX_LINE}: answered 500 and discarded up to its end. */
export const LINE_TOO_LONG = Symbol('line too long');

export type ReadLine = string | typeof LINE_TOO_LONG;

type TelnetState = 'data' | 'iac' | 'option' | 'sb' | 'sb-iac';

/**
 * Splits the control connection's bytes into lines, across any segmentation. A line ends at LF
 * (its CR before it removed) or at a CR that is the last byte received so far: Python's ftplib
 * sends "ABOR\r\n" as urgent data, whose last byte, the LF, never arrives in the stream. An LF
 * right after such a CR is then the rest of that line end. Empty lines are skipped.
 */
export class CommandLineReader {
  /** Grown as lines get longer, up to MAX_LINE: most connections never need more than the start. */
  private line = Buffer.allocUnsafe(256);
  private length = 0;
  private discarding = false;
  private telnet: TelnetState = 'data';
  /** The previous byte was a CR (not yet known whether it ends the line). */
  private cr = false;
  /** A line just ended at a trailing CR: an LF that comes next belongs to it. */
  private swallowLf = false;

  /** Feeds bytes; returns the lines they complete, in order. */
  push(chunk: Buffer): ReadLine[] {
    const lines: ReadLine[] = [];
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i] as number;
      if (this.telnet === 'iac') {
        this.telnet = byte >= WILL && byte <= DONT ? 'option' : byte === SB ? 'sb' : 'data';
        // IAC + command (IP, DM, ...) or IAC IAC; otherwise a lone IAC, whose command byte was
        // the urgent one: what follows it is data.
        if (byte >= SE) continue;
      } else if (this.telnet !== 'data') {
        this.telnetByte(byte);
        continue;
      }
      if (byte === IAC) {
        this.telnet = 'iac';
        continue;
      }
      if (this.swallowLf) {
        this.swallowLf = false;
        if (byte === LF) continue;
      }
      if (byte === LF) {
        this.cr = false;
        this.endLine(lines);
        continue;
      }
      if (this.cr) {
        // CR followed by something other than LF: the CR is part of the line (a control character).
        this.cr = false;
        this.append(CR, lines);
      }
      if (byte === CR) {
        this.cr = true;
        continue;
      }
      // Telnet command bytes whose IAC went out of band (IAC IP IAC DM sent as urgent data).
      if (this.length === 0 && !this.discarding && byte >= SE && byte < IAC) continue;
      this.append(byte, lines);
    }
    if (this.cr) {
      this.cr = false;
      this.swallowLf = true;
      this.endLine(lines);
    }
    return lines;
  }

  private telnetByte(byte: number): void {
    if (this.telnet === 'option') this.telnet = 'data';
    else if (this.telnet === 'sb') this.telnet = byte === IAC ? 'sb-iac' : 'sb';
    else if (this.telnet === 'sb-iac') this.telnet = byte === SE ? 'data' : 'sb';
  }

  private append(byte: number, lines: ReadLine[]): void {
    if (this.discarding) return;
    if (this.length === MAX_LINE) {
      this.discarding = true;
      this.length = 0;
      lines.push(LINE_TOO_LONG);
      return;
    }
    if (this.length === this.line.length) {
      const grown = Buffer.allocUnsafe(Math.min(MAX_LINE, this.line.length * 2));
      this.line.copy(grown);
      this.line = grown;
    }
    this.line[this.length++] = byte;
  }

  private endLine(lines: ReadLine[]): void {
    if (this.discarding) {
      this.discarding = false;
      return;
    }
    if (this.length === 0) return;
    lines.push(this.line.toString('utf8', 0, this.length));
    this.length = 0;
  }

  /** Forgets a partial line (the control connection changed, e.g. upgraded to TLS). */
  reset(): void {
    this.length = 0;
    this.discarding = false;
    this.telnet = 'data';
    this.cr = false;
    this.swallowLf = false;
  }
}

/** C0 controls, DEL and C1 controls: never part of a command, a name or a password. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

/** What a verb looks like: RFC 959 §5.3.1 has letters, extensions add digits (XSHA256, XMD5). */
const DIRECTIVE = /^[A-Za-z][A-Za-z0-9]{0,15}$/;

export type ParsedLine =
  | { directive: string; arg: string | null }
  | { invalid: 'control-characters' | 'not-a-command' };

/**
 * Splits "DIRECTIVE SP argument": the argument is everything after the first space, verbatim
 * (quotes, further spaces, a leading "-" and all). A line with a control character anywhere, or
 * whose first word is not a verb, is invalid, and nothing of it is to be echoed or logged.
 */
export function parseCommandLine(line: string): ParsedLine {
  if (CONTROL_CHARACTERS.test(line)) return { invalid: 'control-characters' };
  const space = line.indexOf(' ');
  const directive = space < 0 ? line : line.slice(0, space);
  if (!DIRECTIVE.test(directive)) return { invalid: 'not-a-command' };
  return { directive: directive.toUpperCase(), arg: space < 0 ? null : line.slice(space + 1) };
}
