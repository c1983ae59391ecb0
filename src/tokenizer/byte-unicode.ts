/**
 * GPT-2 byte-level alphabet: every byte gets a printable Unicode character so that
 * token strings in tokenizer.json and GGUF never contain raw control bytes or spaces.
 * Printable Latin-1 bytes map to themselves; the other 68 bytes map to U+0100 upward
 * in ascending byte order (space -> "Ġ" U+0120, newline -> "Ċ" U+010A).
 */

function buildByteToChar(): string[] {
  const byteToChar = new Array<string>(256);
  let nextUnprintable = 0;
  for (let byte = 0; byte < 256; byte++) {
    const printable =
      (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
    byteToChar[byte] = String.fromCharCode(printable ? byte : 0x100 + nextUnprintable++);
  }
  return byteToChar;
}

/** Character that stands for each byte value in byte-level token strings. */
export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();

const CHAR_CODE_TO_BYTE: ReadonlyMap<number, number> = new Map(
  BYTE_TO_CHAR.map((char, byte) => [char.charCodeAt(0), byte]),
);

/** Writes `bytes` in the byte-level alphabet (the form tokenizer.json and GGUF store tokens in). */
export function bytesToTokenString(bytes: ArrayLike<number>): string {
  let text = '';
  for (let i = 0; i < bytes.length; i++) text += BYTE_TO_CHAR[bytes[i]];
  return text;
}

/**
 * Inverse of {@link bytesToTokenString}.
 * @returns the bytes, or `undefined` if `token` has a character outside the byte-level alphabet.
 */
export function tokenStringToBytes(token: string): Uint8Array | undefined {
  const bytes = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const byte = CHAR_CODE_TO_BYTE.get(token.charCodeAt(i));
    if (byte === undefined) return undefined;
    bytes[i] = byte;
  }
  return bytes;
}
