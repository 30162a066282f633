/** Reply texts made safe for the control connection. Free of imports, so the ftp-srv adapter loads alone (test/unit/ftp/ftp-srv-supply.test.ts). */

// eslint-disable-next-line no-control-regex
const REPLY_CONTROL_CHARS = /[\x00-\x1f\x7f-\x9f]/g;

/**
 * A reply text with every control character (C0, DEL, C1) shown as `\xHH`. ftp-srv echoes what a
 * client sent (`502 Command not allowed: <directive>`); a CR or LF in it, or in a name, would end
 * the reply line and let the rest pose as a reply of its own.
 */
export function safeReplyText(text: string): string {
  return text.replace(REPLY_CONTROL_CHARS, (c) => '\\x' + c.charCodeAt(0).toString(16).padStart(2, '0'));
}

/**
 * One line of a reply (a text, or an object with a `message` and other fields kept as they are)
 * with its text passed through {@link safeReplyText}; ftp-srv-adapter.ts applies it to every reply.
 */
export function safeReplyLetter(letter: unknown): unknown {
  if (typeof letter === 'string') return safeReplyText(letter);
  if (letter !== null && typeof letter === 'object' && typeof (letter as { message?: unknown }).message === 'string') {
    return { ...letter, message: safeReplyText((letter as { message: string }).message) };
  }
  return letter;
}
