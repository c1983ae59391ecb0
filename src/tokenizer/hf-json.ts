/**
 * Builds Hugging Face tokenizer files from GGUF tokenizer metadata, so a model converted from
 * GGUF carries the same tokenizer.json / tokenizer_config.json pair as one converted from an HF
 * folder and both load through {@link Tokenizer.fromHfJson}.
 */
import { LLAMA3_HF_PATTERN } from './pretokenize';
import type { GgufTokenizerMetadata, HfTokenizerConfig, HfTokenizerJson } from './tokenizer';

const GGUF_TOKEN_TYPE_NORMAL = 1;
const GGUF_TOKEN_TYPE_USER_DEFINED = 4;

/** One entry of tokenizer.json's added_tokens. */
export interface HfAddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/**
 * A tokenizer.json for a byte-level BPE with the Llama-3 split pre-tokenizer, ByteLevel
 * decoder and `ignore_merges`: the one shape this project writes (GGUF conversions and the
 * synthetic models' tokenizers).
 */
export function llama3TokenizerJson(
  vocab: Record<string, number>,
  addedTokens: HfAddedTokenJson[],
  merges: string[],
): HfTokenizerJson & Record<string, unknown> {
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: LLAMA3_HF_PATTERN }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: true,
      vocab,
      merges,
    },
  };
  return json;
}

/** An HF tokenizer.json / tokenizer_config.json pair, as plain JSON values. */
export interface HfTokenizerFiles {
  tokenizerJson: HfTokenizerJson & Record<string, unknown>;
  tokenizerConfig: HfTokenizerConfig & Record<string, unknown>;
}

/**
 * The tokenizer.json of a byte-level BPE with the Llama-3 split pre-tokenizer, ByteLevel decoder
 * and `ignore_merges` (what bitnet.cpp's GGUFs hold, reference 3f), and a tokenizer_config.json
 * naming BOS/EOS by content.
 *
 * Token types follow {@link Tokenizer.fromGguf}: type 1 is the BPE vocabulary, every other type is
 * an added token, special unless it is 4 (user-defined).
 * @param chatTemplate the template to record (callers drop bitnet.cpp's placeholder); default null
 * @throws if a BOS/EOS id is outside the vocabulary
 */
export function hfTokenizerFilesFromGguf(metadata: GgufTokenizerMetadata, chatTemplate: string | null = null): HfTokenizerFiles {
  const vocab: Record<string, number> = {};
  const addedTokens: HfAddedTokenJson[] = [];
  metadata.tokens.forEach((token, id) => {
    const type = metadata.tokenTypes[id];
    if (type === GGUF_TOKEN_TYPE_NORMAL) vocab[token] = id;
    else addedTokens.push({ id, content: token, single_word: false, lstrip: false, rstrip: false, normalized: false, special: type !== GGUF_TOKEN_TYPE_USER_DEFINED });
  });
  const tokenAt = (id: number | undefined, what: string): string | undefined => {
    if (id === undefined) return undefined;
    if (!(id >= 0 && id < metadata.tokens.length)) throw new Error(`GGUF ${what} token id ${id} is outside the ${metadata.tokens.length}-token vocabulary`);
    return metadata.tokens[id];
  };
  const bos = tokenAt(metadata.bosId, 'BOS');
  const eos = tokenAt(metadata.eosId, 'EOS');
  const tokenizerJson = llama3TokenizerJson(vocab, addedTokens, [...metadata.merges]);
  const tokenizerConfig = {
    ...(bos === undefined ? {} : { bos_token: bos }),
    ...(eos === undefined ? {} : { eos_token: eos }),
    add_bos_token: metadata.addBos ?? true,
    chat_template: chatTemplate,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  return { tokenizerJson, tokenizerConfig };
}
