/**
 * Llama-3 pre-tokenizer. The original pattern is
 *
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *
 * written for Oniguruma / Rust regex. Two translations keep JavaScript in agreement with them:
 * - `(?i:...)` becomes explicit case alternatives. Unicode simple case folding also equates "ſ"
 *   (U+017F LONG S) with "s", so `'ſ` is a contraction there and here.
 * - `\s` becomes `\p{White_Space}`: JavaScript's `\s` wrongly includes U+FEFF and misses U+0085.
 */
const LLAMA3_SPLIT_PATTERN =
  "'(?:[sSſ]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])" +
  '|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+' +
  '|\\p{N}{1,3}' +
  '| ?[^\\p{White_Space}\\p{L}\\p{N}]+[\\r\\n]*' +
  '|\\p{White_Space}*[\\r\\n]+' +
  '|\\p{White_Space}+(?!\\P{White_Space})' +
  '|\\p{White_Space}+';

/** The Llama-3 regex exactly as HF tokenizer.json files spell it (used to validate loaded files). */
export const LLAMA3_HF_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const LLAMA3_SPLIT_REGEX = new RegExp(LLAMA3_SPLIT_PATTERN, 'gu');

/**
 * Splits text into the pieces that BPE encodes independently. The alternatives cover every
 * character, so the pieces concatenate back to `text`.
 */
export function pretokenize(text: string): string[] {
  return text.match(LLAMA3_SPLIT_REGEX) ?? [];
}
