import { StringDecoder } from 'node:string_decoder';

/** One complete reply of an FTP server. */
export interface FtpReply {
  /** The three-digit reply code. */
  code: number;
  /** Every line of the reply, line ends removed. */
  lines: string[];
  /** The lines joined with "\n". */
  text: string;
}

/**
 * Incremental parser for the replies on an FTP control connection (RFC 959 §4.2): fed the data as
 * it arrives, in chunks split anywhere, it returns each reply once its last line is complete.
 *
 * A reply is a single line "123 text", or a multi-line block that opens with "123-text" and ends
 * with the first line that starts with the same code and a space ("123 end"); lines inside the
 * block may start with anything, digits included. Lines end with CRLF or a bare LF. Lines before a
 * reply that are no reply line of their own stay part of the reply that follows.
 */
export class FtpReplyParser {
  private readonly decoder = new StringDecoder('utf8');
  private buffer = '';
  private lines: string[] = [];

  /**
   * Feeds the next chunk of the control connection: Buffers (UTF-8; a character split across
   * chunks is kept whole) or strings (a socket with `setEncoding('utf8')`), not both on one parser.
   * Returns the replies this chunk completed, in order.
   */
  push(chunk: Buffer | string): FtpReply[] {
    this.buffer += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    const replies: FtpReply[] = [];
    let i: number;
    while ((i = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, i).replace(/\r$/, '');
      this.buffer = this.buffer.slice(i + 1);
      this.lines.push(line);
      const last = /^(\d{3}) /.exec(line)?.[1];
      const opening = /^(\d{3})-/.exec(this.lines[0] as string)?.[1];
      if (last && (!opening || opening === last)) {
        replies.push({ code: Number(last), lines: this.lines, text: this.lines.join('\n') });
        this.lines = [];
      }
    }
    return replies;
  }
}
