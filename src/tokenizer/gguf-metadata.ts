import type { GgufTokenizerMetadata } from './tokenizer';

/** Anything that yields plain GGUF metadata values by key, such as `GgufFile`. */
export interface GgufMetadataSource {
  get(key: string): unknown;
}

/**
 * Reads and checks the `tokenizer.*` keys of a GGUF file.
 * @throws if `tokenizer.ggml.model` is not `"gpt2"` or a required array is missing or mistyped.
 */
export function readGgufTokenizerMetadata(source: GgufMetadataSource): GgufTokenizerMetadata {
  const model = source.get('tokenizer.ggml.model');
  if (model !== 'gpt2') throw new Error(`unsupported GGUF tokenizer model ${JSON.stringify(model)} (expected "gpt2")`);
  const tokens = stringArray(source, 'tokenizer.ggml.tokens');
  const tokenTypes = numberArray(source, 'tokenizer.ggml.token_type');
  if (tokenTypes.length !== tokens.length) {
    throw new Error(`tokenizer.ggml.token_type has ${tokenTypes.length} entries for ${tokens.length} tokens`);
  }
  const chatTemplate = source.get('tokenizer.chat_template');
  const addBos = source.get('tokenizer.ggml.add_bos_token');
  return {
    tokens,
    merges: stringArray(source, 'tokenizer.ggml.merges'),
    tokenTypes,
    bosId: optionalId(source, 'tokenizer.ggml.bos_token_id'),
    eosId: optionalId(source, 'tokenizer.ggml.eos_token_id'),
    addBos: typeof addBos === 'boolean' ? addBos : undefined,
    chatTemplate: typeof chatTemplate === 'string' ? chatTemplate : undefined,
  };
}

function stringArray(source: GgufMetadataSource, key: string): string[] {
  const value = source.get(key);
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw new Error(`GGUF key ${key} is missing or not a string array`);
  }
  return value as string[];
}

function numberArray(source: GgufMetadataSource, key: string): number[] {
  const value = source.get(key);
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'number')) {
    throw new Error(`GGUF key ${key} is missing or not a 32-bit integer array`);
  }
  return value as number[];
}

function optionalId(source: GgufMetadataSource, key: string): number | undefined {
  const value = source.get(key);
  if (value === undefined) return undefined;
  const id = typeof value === 'bigint' ? Number(value) : value;
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new Error(`GGUF key ${key} is not a token id`);
  return id;
}
