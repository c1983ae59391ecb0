export { Tokenizer } from './tokenizer';
export type {
  AddedToken,
  DecodeOptions,
  EncodeOptions,
  GgufTokenizerMetadata,
  HfTokenizerConfig,
  HfTokenizerJson,
  TokenizerSpec,
} from './tokenizer';
export { loadHfTokenizer } from './hf-files';
export { readGgufTokenizerMetadata } from './gguf-metadata';
export type { GgufMetadataSource } from './gguf-metadata';
export { StreamDecoder } from './stream-decoder';
export type { StreamDecoderOptions, TokenByteSource } from './stream-decoder';
export { pretokenize } from './pretokenize';
export { BYTE_TO_CHAR, bytesToTokenString, tokenStringToBytes } from './byte-unicode';
export type { MergePair } from './bpe';
export { COMPILED_TOKENIZER_VERSION, CompiledTokenizerError } from './compiled';
export type { CompiledTokenizerData, CompiledTokenizerMeta } from './compiled';
