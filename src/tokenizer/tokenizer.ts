import { BytePairEncoder, MergePair, TokenBytesIndex } from './bpe';
import { bytesToTokenString, tokenStringToBytes } from './byte-unicode';
import {
  CompiledTokenizerData,
  compileTokenizerSpec,
  decodeCompiledTokenizer,
  encodeCompiledTokenizer,
} from './compiled';
import { LLAMA3_HF_PATTERN, pretokenize } from './pretokenize';

/** Options for {@link Tokenizer.encode}. */
export interface EncodeOptions {
  /** Prepend the BOS token. Default: the model's setting (GGUF `tokenizer.ggml.add_bos_token`), else true. */
  addBos?: boolean;
  /**
   * Recognise special-token text such as `<|eot_id|>` in `text` and emit the special id.
   * Default false: special-token text in user input is encoded as ordinary text (like bitnet.cpp gpu/).
   */
  allowSpecial?: boolean;
}

/** Options for {@link Tokenizer.decode}. */
export interface DecodeOptions {
  /** Leave special tokens (BOS, `<|eot_id|>`, ...) out of the text. Default false. */
  skipSpecial?: boolean;
}

/** A token added on top of the BPE vocabulary, matched as a whole string rather than through BPE. */
export interface AddedToken {
  id: number;
  content: string;
  /** Control token (BOS, EOS, `<|eot_id|>`, reserved tokens): matched in text only with `allowSpecial`. */
  special: boolean;
}

/** Everything needed to build a {@link Tokenizer}; produced by the HF and GGUF loaders. */
export interface TokenizerSpec {
  /** Ordinary tokens: byte-level token string -> id. */
  vocab: ReadonlyMap<string, number>;
  /** Merge rules in priority order. */
  merges: readonly MergePair[];
  /** Emit a piece whole when it is itself a token (HF `model.ignore_merges`; true for Llama 3). */
  ignoreMerges: boolean;
  addedTokens: readonly AddedToken[];
  bosId: number;
  eosId: number;
  /** Whether {@link Tokenizer.encode} prepends BOS unless told otherwise. */
  addBosByDefault: boolean;
  /** Jinja chat template shipped with the model, if any. */
  chatTemplate?: string;
}

/** The parts of an HF tokenizer.json this loader reads. */
export interface HfTokenizerJson {
  model: {
    type?: string;
    vocab: Record<string, number>;
    /** `"a b"` strings (older files) or `[a, b]` pairs (newer files). */
    merges: ReadonlyArray<string | readonly [string, string]>;
    ignore_merges?: boolean;
    byte_fallback?: boolean;
  };
  added_tokens?: ReadonlyArray<{ id: number; content: string; special?: boolean }>;
  normalizer?: unknown;
  pre_tokenizer?: unknown;
}

type HfSpecialTokenValue = string | { content: string } | null;

/** The parts of an HF tokenizer_config.json this loader reads. */
export interface HfTokenizerConfig {
  bos_token?: HfSpecialTokenValue;
  eos_token?: HfSpecialTokenValue;
  add_bos_token?: boolean;
  chat_template?: string | ReadonlyArray<{ name: string; template: string }> | null;
}

/** GGUF tokenizer metadata, already read out of the file's key/value section. */
export interface GgufTokenizerMetadata {
  /** `tokenizer.ggml.tokens`: byte-level strings for ordinary tokens, literal text for control tokens. */
  tokens: readonly string[];
  /** `tokenizer.ggml.merges`: `"a b"` strings in priority order. */
  merges: readonly string[];
  /**
   * `tokenizer.ggml.token_type`: 1 normal (BPE vocabulary), 4 user-defined (matched in any text);
   * every other type (3 control, ...) is special: decodable, matched in text only with allowSpecial.
   */
  tokenTypes: ArrayLike<number>;
  /** `tokenizer.ggml.bos_token_id`. Default: the id of `<|begin_of_text|>`. */
  bosId?: number;
  /** `tokenizer.ggml.eos_token_id`. Default: the id of `<|end_of_text|>`. */
  eosId?: number;
  /** `tokenizer.ggml.add_bos_token`. Default true. */
  addBos?: boolean;
  /** `tokenizer.chat_template`. */
  chatTemplate?: string;
}

const GGUF_TOKEN_TYPE_NORMAL = 1;
const GGUF_TOKEN_TYPE_USER_DEFINED = 4;

const LLAMA3_BOS = '<|begin_of_text|>';
const LLAMA3_EOS = '<|end_of_text|>';
const LLAMA3_EOT = '<|eot_id|>';

const utf8Encoder = new TextEncoder();
// ignoreBOM: a leading U+FEFF is text the user wrote, not a byte-order mark to drop.
const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * Llama-3 byte-level BPE tokenizer (the tokenizer of BitNet b1.58 2B4T): Llama-3 regex
 * pre-tokenization, rank-ordered merges, special tokens added only structurally unless asked.
 * Build it with {@link Tokenizer.fromHfJson} or {@link Tokenizer.fromGguf}.
 */
export class Tokenizer {
  /** BOS id (`<|begin_of_text|>`, 128000 for Llama 3). */
  readonly bosId: number;
  /** EOS id (`<|end_of_text|>`, 128001 for Llama 3). */
  readonly eosId: number;
  /** End-of-turn id (`<|eot_id|>`, 128009), or undefined when the vocabulary has none. */
  readonly eotId: number | undefined;
  /** Ids that end generation: EOS and, when present, `<|eot_id|>`. */
  readonly stopTokenIds: readonly number[];
  /** Number of ids (ordinary plus added tokens). */
  readonly vocabSize: number;
  /** Jinja chat template shipped with the model, if any. */
  readonly chatTemplate: string | undefined;
  /** Default of {@link EncodeOptions.addBos}. */
  readonly addBosByDefault: boolean;

  private readonly encoder: BytePairEncoder;
  private readonly compiled: CompiledTokenizerData;
  private readonly ordinaryTokens: TokenBytesIndex;
  private readonly specialIds: Set<number>;
  private readonly idByAddedContent: Map<string, number>;
  private readonly addedContentById: Map<number, string>;
  private readonly addedBytesById: Map<number, Uint8Array>;
  /** Matches all added tokens (used with allowSpecial). */
  private readonly allAddedMatcher: RegExp | undefined;
  /** Matches the non-special added tokens, which are recognised in any text. */
  private readonly nonSpecialAddedMatcher: RegExp | undefined;

  /**
   * @param source token strings and merges (from the HF / GGUF loaders), or the same already
   *   resolved to ids and bytes (see {@link Tokenizer.fromCompiled}).
   */
  constructor(source: TokenizerSpec | CompiledTokenizerData) {
    const compiled = 'tokenOffsets' in source ? source : compileTokenizerSpec(source);
    const meta = compiled.meta;
    this.compiled = compiled;
    this.vocabSize = compiled.tokenOffsets.length - 1;
    this.ordinaryTokens = new TokenBytesIndex(compiled.tokenBytes, compiled.tokenOffsets, compiled.tokenIndexSlots);
    this.encoder = new BytePairEncoder(this.ordinaryTokens, compiled.merges, compiled.pairRankSlots, meta.ignoreMerges);
    this.specialIds = new Set();
    this.idByAddedContent = new Map();
    this.addedContentById = new Map();
    this.addedBytesById = new Map();
    for (const token of meta.addedTokens) {
      this.addedContentById.set(token.id, token.content);
      this.addedBytesById.set(token.id, utf8Encoder.encode(token.content));
      this.idByAddedContent.set(token.content, token.id);
      if (token.special) this.specialIds.add(token.id);
    }
    this.allAddedMatcher = buildAlternation(meta.addedTokens.map((token) => token.content));
    this.nonSpecialAddedMatcher = buildAlternation(
      meta.addedTokens.filter((token) => !token.special).map((token) => token.content),
    );
    for (const id of [meta.bosId, meta.eosId]) {
      if (!(id >= 0 && id < this.vocabSize)) throw new Error(`special token id ${id} is outside the vocabulary`);
    }
    this.bosId = meta.bosId;
    this.eosId = meta.eosId;
    this.eotId = this.idByAddedContent.get(LLAMA3_EOT);
    this.stopTokenIds = this.eotId === undefined || this.eotId === this.eosId ? [this.eosId] : [this.eosId, this.eotId];
    this.chatTemplate = meta.chatTemplate;
    this.addBosByDefault = meta.addBosByDefault;
  }

  /**
   * Builds a tokenizer from a blob written by {@link Tokenizer.toCompiled} (milliseconds, against
   * seconds for the Llama-3 tokenizer.json). The tokenizer keeps views of `blob`: do not modify it.
   * @throws CompiledTokenizerError if the blob is truncated, corrupt or of another version
   */
  static fromCompiled(blob: Uint8Array): Tokenizer {
    return new Tokenizer(decodeCompiledTokenizer(blob));
  }

  /** This tokenizer in the compiled form that {@link Tokenizer.fromCompiled} reads. */
  toCompiled(): Uint8Array {
    return encodeCompiledTokenizer(this.compiled);
  }

  /**
   * Builds a tokenizer from a parsed HF tokenizer.json (and optionally tokenizer_config.json,
   * which supplies the BOS/EOS names and the chat template).
   * @throws if the file is not a byte-level BPE with the Llama-3 pre-tokenizer.
   */
  static fromHfJson(json: HfTokenizerJson, config: HfTokenizerConfig = {}): Tokenizer {
    const model = json.model;
    if (model.type !== undefined && model.type !== 'BPE') throw new Error(`unsupported tokenizer model "${model.type}"`);
    if (model.byte_fallback) throw new Error('byte_fallback BPE is not supported');
    if (json.normalizer != null) throw new Error('tokenizers with a normalizer are not supported');
    if (!isLlama3PreTokenizer(json.pre_tokenizer)) {
      throw new Error('pre-tokenizer is not the Llama-3 regex split; only Llama-3 tokenizers are supported');
    }
    const merges = model.merges.map((merge): MergePair => (typeof merge === 'string' ? splitMergeString(merge) : merge));
    const addedTokens = (json.added_tokens ?? []).map((token) => ({
      id: token.id,
      content: token.content,
      special: token.special ?? false,
    }));
    const addedIdByContent = new Map(addedTokens.map((token) => [token.content, token.id]));
    const vocab = new Map(Object.entries(model.vocab).filter(([token]) => !addedIdByContent.has(token)));
    const lookupAdded = (value: HfSpecialTokenValue | undefined, fallback: string): number => {
      const content = value == null ? fallback : typeof value === 'string' ? value : value.content;
      const id = addedIdByContent.get(content) ?? vocab.get(content);
      if (id === undefined) throw new Error(`special token ${JSON.stringify(content)} is not in the vocabulary`);
      return id;
    };
    return new Tokenizer({
      vocab,
      merges,
      ignoreMerges: model.ignore_merges ?? false,
      addedTokens,
      bosId: lookupAdded(config.bos_token, LLAMA3_BOS),
      eosId: lookupAdded(config.eos_token, LLAMA3_EOS),
      addBosByDefault: config.add_bos_token ?? true,
      chatTemplate: pickChatTemplate(config.chat_template),
    });
  }

  /**
   * Builds a tokenizer from GGUF tokenizer metadata. The Llama-3 pre-tokenizer and
   * `ignore_merges` are always used: bitnet.cpp's converter omits `tokenizer.ggml.pre`.
   */
  static fromGguf(metadata: GgufTokenizerMetadata): Tokenizer {
    const vocab = new Map<string, number>();
    const addedTokens: AddedToken[] = [];
    metadata.tokens.forEach((token, id) => {
      const type = metadata.tokenTypes[id];
      if (type === GGUF_TOKEN_TYPE_NORMAL) vocab.set(token, id);
      else addedTokens.push({ id, content: token, special: type !== GGUF_TOKEN_TYPE_USER_DEFINED });
    });
    const addedId = (content: string): number => {
      const id = metadata.tokens.indexOf(content);
      if (id < 0) throw new Error(`GGUF metadata names no ${content} token id and the vocabulary lacks it`);
      return id;
    };
    return new Tokenizer({
      vocab,
      merges: metadata.merges.map(splitMergeString),
      ignoreMerges: true,
      addedTokens,
      bosId: metadata.bosId ?? addedId(LLAMA3_BOS),
      eosId: metadata.eosId ?? addedId(LLAMA3_EOS),
      addBosByDefault: metadata.addBos ?? true,
      chatTemplate: metadata.chatTemplate,
    });
  }

  /** Encodes text to token ids. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids: number[] = [];
    if (options.addBos ?? this.addBosByDefault) ids.push(this.bosId);
    const matcher = options.allowSpecial ? this.allAddedMatcher : this.nonSpecialAddedMatcher;
    if (matcher === undefined) {
      this.encodeOrdinary(text, ids);
      return ids;
    }
    let segmentStart = 0;
    matcher.lastIndex = 0;
    for (let match = matcher.exec(text); match !== null; match = matcher.exec(text)) {
      this.encodeOrdinary(text.slice(segmentStart, match.index), ids);
      ids.push(this.idByAddedContent.get(match[0]) as number);
      segmentStart = match.index + match[0].length;
    }
    this.encodeOrdinary(text.slice(segmentStart), ids);
    return ids;
  }

  /** Decodes ids to text; byte sequences that are not valid UTF-8 become U+FFFD. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const parts: Uint8Array[] = [];
    let length = 0;
    for (const id of ids) {
      if (options.skipSpecial && this.specialIds.has(id)) continue;
      const bytes = this.tokenBytes(id);
      parts.push(bytes);
      length += bytes.length;
    }
    const joined = new Uint8Array(length);
    let offset = 0;
    for (const bytes of parts) {
      joined.set(bytes, offset);
      offset += bytes.length;
    }
    return utf8Decoder.decode(joined);
  }

  /** The raw bytes a token stands for (UTF-8 of the text for added tokens). */
  tokenBytes(id: number): Uint8Array {
    this.checkId(id);
    const added = this.addedBytesById.get(id);
    if (added !== undefined) return added;
    const offsets = this.compiled.tokenOffsets;
    return this.compiled.tokenBytes.subarray(offsets[id], offsets[id + 1]);
  }

  /** The token as stored in tokenizer.json / GGUF: byte-level form for ordinary tokens, literal text for added tokens. */
  tokenString(id: number): string {
    this.checkId(id);
    return this.addedContentById.get(id) ?? bytesToTokenString(this.tokenBytes(id));
  }

  /** Id of a token given in its stored form (see {@link tokenString}), or undefined. */
  tokenId(tokenString: string): number | undefined {
    const added = this.idByAddedContent.get(tokenString);
    if (added !== undefined) return added;
    const bytes = tokenStringToBytes(tokenString);
    return bytes === undefined ? undefined : this.ordinaryTokens.get(bytes, 0, bytes.length);
  }

  /** Whether `id` is a special (control) token such as BOS, EOS or `<|eot_id|>`. */
  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  private encodeOrdinary(text: string, out: number[]): void {
    if (text.length === 0) return;
    for (const piece of pretokenize(text)) this.encoder.encodePiece(piece, out);
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new RangeError(`token id ${id} is out of range`);
  }
}

function splitMergeString(merge: string): MergePair {
  // Byte-level token strings never contain a real space, so the first space separates the pair.
  const space = merge.indexOf(' ');
  if (space <= 0 || space === merge.length - 1) throw new Error(`malformed merge rule ${JSON.stringify(merge)}`);
  return [merge.slice(0, space), merge.slice(space + 1)];
}

/** Leftmost-longest matcher for literal strings (longest first, since JS alternation is leftmost-first). */
function buildAlternation(literals: readonly string[]): RegExp | undefined {
  if (literals.length === 0) return undefined;
  const sorted = [...literals].sort((a, b) => b.length - a.length);
  return new RegExp(sorted.map((literal) => literal.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')).join('|'), 'gu');
}

/** True for a Sequence of exactly the Llama-3 Split and a ByteLevel step that adds no regex of its own. */
function isLlama3PreTokenizer(preTokenizer: unknown): boolean {
  type Step = { type?: string; pattern?: { Regex?: string }; use_regex?: boolean; add_prefix_space?: boolean };
  const root = preTokenizer as { type?: string; pretokenizers?: Step[] } | null | undefined;
  const steps: Step[] = root?.type === 'Sequence' ? (root.pretokenizers ?? []) : root ? [root as Step] : [];
  return (
    steps.some((step) => step.type === 'Split' && step.pattern?.Regex === LLAMA3_HF_PATTERN) &&
    steps.every(
      (step) =>
        (step.type === 'Split' && step.pattern?.Regex === LLAMA3_HF_PATTERN) ||
        (step.type === 'ByteLevel' && step.use_regex === false && !step.add_prefix_space),
    )
  );
}

function pickChatTemplate(template: HfTokenizerConfig['chat_template']): string | undefined {
  if (template == null) return undefined;
  if (typeof template === 'string') return template;
  return template.find((named) => named.name === 'default')?.template;
}
