/**
 * The compiled tokenizer form: the same tokenizer as tokenizer.json, stored as flat arrays of
 * ids and bytes so that loading is a few array views instead of parsing and resolving a 9 MB JSON
 * document (the 128k-token / 280k-merge Llama-3 tokenizer).
 *
 * Blob layout, little-endian; the int32 arrays come first so they stay 4-byte aligned:
 * ```
 *  0  "BNTK"              magic
 *  4  u32 version         COMPILED_TOKENIZER_VERSION
 *  8  u32 vocabSize       number of ids (ordinary plus added)
 * 12  u32 mergeCount
 * 16  u32 pairRankInts    length of the pair-rank table
 * 20  u32 tokenIndexInts  length of the token index
 * 24  u32 tokenBytesLength
 * 28  u32 metaLength      bytes of the UTF-8 JSON {@link CompiledTokenizerMeta}
 * 32  u32 crc32           zlib CRC-32 of every byte after this header
 * 36  i32[vocabSize + 1]  token offsets into the token bytes
 *     i32[3 * mergeCount] merges as (left id, right id, merged id), in rank order
 *     i32[pairRankInts]   hash table (left, right) -> rank (bpe.ts buildPairRankSlots)
 *     i32[tokenIndexInts] hash table token bytes -> id (bpe.ts buildTokenIndexSlots)
 *     u8[tokenBytesLength] ordinary-token bytes
 *     u8[metaLength]       meta JSON
 * ```
 * The hash tables are stored, not rebuilt, because building them for 280k merges and 128k tokens
 * is the bulk of the remaining load time (random memory access).
 */
import * as os from 'os';
import * as zlib from 'zlib';
import { buildPairRankSlots, buildTokenIndexSlots, isPowerOfTwo } from './bpe';
import { tokenStringToBytes } from './byte-unicode';
import type { AddedToken, TokenizerSpec } from './tokenizer';

/** Version of the compiled blob layout; decoding rejects any other. */
export const COMPILED_TOKENIZER_VERSION = 1;

const MAGIC = 'BNTK';
const HEADER_BYTES = 36;
const LITTLE_ENDIAN_HOST = os.endianness() === 'LE';

/** The small, non-array part of a compiled tokenizer. */
export interface CompiledTokenizerMeta {
  /** See {@link TokenizerSpec.ignoreMerges}. */
  ignoreMerges: boolean;
  addedTokens: AddedToken[];
  bosId: number;
  eosId: number;
  addBosByDefault: boolean;
  /** Jinja chat template, if any. */
  chatTemplate?: string;
}

/** A tokenizer as flat arrays: what {@link encodeCompiledTokenizer} writes and {@link decodeCompiledTokenizer} reads. */
export interface CompiledTokenizerData {
  /**
   * Bytes of the ordinary (BPE) token with id i are `tokenBytes[tokenOffsets[i] .. tokenOffsets[i + 1])`;
   * the range is empty for ids that have no ordinary token (added tokens, gaps).
   */
  tokenBytes: Uint8Array;
  /** vocabSize + 1 non-decreasing offsets, from 0 to tokenBytes.length. */
  tokenOffsets: Int32Array;
  /** Merge rules as (left id, right id, merged id) triples; triple index = rank. */
  merges: Int32Array;
  /** {@link buildPairRankSlots} of `merges`. */
  pairRankSlots: Int32Array;
  /** {@link buildTokenIndexSlots} of `tokenBytes` and `tokenOffsets`. */
  tokenIndexSlots: Int32Array;
  meta: CompiledTokenizerMeta;
}

/** Thrown when a compiled tokenizer blob is truncated, corrupt or of another version. */
export class CompiledTokenizerError extends Error {
  constructor(message: string) {
    super(`compiled tokenizer: ${message}`);
    this.name = 'CompiledTokenizerError';
  }
}

/**
 * Resolves a {@link TokenizerSpec} (token strings) into ids and bytes.
 * @throws if a token is not a byte-level string, is empty, shares its id with another ordinary
 *   token, or a merge names a token missing from the vocabulary
 */
export function compileTokenizerSpec(spec: TokenizerSpec): CompiledTokenizerData {
  let maxId = -1;
  for (const id of spec.vocab.values()) maxId = Math.max(maxId, id);
  for (const token of spec.addedTokens) maxId = Math.max(maxId, token.id);
  const vocabSize = maxId + 1;
  const bytesById = new Array<Uint8Array | undefined>(vocabSize);
  let totalBytes = 0;
  for (const [token, id] of spec.vocab) {
    if (!Number.isInteger(id) || id < 0) throw new Error(`token ${JSON.stringify(token)} has invalid id ${id}`);
    const bytes = tokenStringToBytes(token);
    if (bytes === undefined) throw new Error(`token ${id} (${JSON.stringify(token)}) is not a byte-level token string`);
    if (bytes.length === 0) throw new Error(`token ${id} is empty`);
    if (bytesById[id] !== undefined) throw new Error(`token id ${id} is given to more than one token`);
    bytesById[id] = bytes;
    totalBytes += bytes.length;
  }
  const tokenOffsets = new Int32Array(vocabSize + 1);
  const tokenBytes = new Uint8Array(totalBytes);
  let offset = 0;
  for (let id = 0; id < vocabSize; id++) {
    const bytes = bytesById[id];
    if (bytes !== undefined) {
      tokenBytes.set(bytes, offset);
      offset += bytes.length;
    }
    tokenOffsets[id + 1] = offset;
  }
  const merges = new Int32Array(spec.merges.length * 3);
  spec.merges.forEach(([left, right], rank) => {
    const leftId = spec.vocab.get(left);
    const rightId = spec.vocab.get(right);
    const mergedId = spec.vocab.get(left + right);
    if (leftId === undefined || rightId === undefined || mergedId === undefined) {
      throw new Error(`merge rule ${rank} ("${left} ${right}") refers to a token missing from the vocabulary`);
    }
    merges[rank * 3] = leftId;
    merges[rank * 3 + 1] = rightId;
    merges[rank * 3 + 2] = mergedId;
  });
  return {
    tokenBytes,
    tokenOffsets,
    merges,
    pairRankSlots: buildPairRankSlots(merges),
    tokenIndexSlots: buildTokenIndexSlots(tokenBytes, tokenOffsets),
    meta: {
      ignoreMerges: spec.ignoreMerges,
      addedTokens: spec.addedTokens.map(({ id, content, special }) => ({ id, content, special })),
      bosId: spec.bosId,
      eosId: spec.eosId,
      addBosByDefault: spec.addBosByDefault,
      ...(spec.chatTemplate === undefined ? {} : { chatTemplate: spec.chatTemplate }),
    },
  };
}

/** Serializes compiled tokenizer data into the blob layout described at the top of this module. */
export function encodeCompiledTokenizer(data: CompiledTokenizerData): Uint8Array {
  const meta = Buffer.from(JSON.stringify(data.meta), 'utf8');
  const vocabSize = data.tokenOffsets.length - 1;
  const mergeCount = data.merges.length / 3;
  const intArrays = [data.tokenOffsets, data.merges, data.pairRankSlots, data.tokenIndexSlots];
  const ints = intArrays.reduce((sum, values) => sum + values.length, 0);
  const blob = Buffer.alloc(HEADER_BYTES + ints * 4 + data.tokenBytes.length + meta.length);
  blob.write(MAGIC, 0, 'latin1');
  blob.writeUInt32LE(COMPILED_TOKENIZER_VERSION, 4);
  blob.writeUInt32LE(vocabSize, 8);
  blob.writeUInt32LE(mergeCount, 12);
  blob.writeUInt32LE(data.pairRankSlots.length, 16);
  blob.writeUInt32LE(data.tokenIndexSlots.length, 20);
  blob.writeUInt32LE(data.tokenBytes.length, 24);
  blob.writeUInt32LE(meta.length, 28);
  let offset = HEADER_BYTES;
  for (const values of intArrays) {
    for (let i = 0; i < values.length; i++, offset += 4) blob.writeInt32LE(values[i], offset);
  }
  blob.set(data.tokenBytes, offset);
  blob.set(meta, offset + data.tokenBytes.length);
  blob.writeUInt32LE(zlib.crc32(blob.subarray(HEADER_BYTES)), 32);
  return blob;
}

/**
 * Reads a blob written by {@link encodeCompiledTokenizer}. The arrays are views of `blob` when it
 * is 4-byte aligned (as bit-plane file blobs are), so `blob` must stay unchanged while in use.
 * @throws CompiledTokenizerError if the blob is truncated, corrupt or of another version
 */
export function decodeCompiledTokenizer(blob: Uint8Array): CompiledTokenizerData {
  if (blob.length < HEADER_BYTES) throw new CompiledTokenizerError(`${blob.length} bytes is shorter than the ${HEADER_BYTES}-byte header`);
  const header = new DataView(blob.buffer, blob.byteOffset, HEADER_BYTES);
  const magic = String.fromCharCode(blob[0], blob[1], blob[2], blob[3]);
  if (magic !== MAGIC) throw new CompiledTokenizerError(`bad magic ${JSON.stringify(magic)} (expected "${MAGIC}")`);
  const version = header.getUint32(4, true);
  if (version !== COMPILED_TOKENIZER_VERSION) throw new CompiledTokenizerError(`version ${version} is not the supported ${COMPILED_TOKENIZER_VERSION}`);
  const vocabSize = header.getUint32(8, true);
  const mergeCount = header.getUint32(12, true);
  const pairRankInts = header.getUint32(16, true);
  const tokenIndexInts = header.getUint32(20, true);
  const tokenBytesLength = header.getUint32(24, true);
  const metaLength = header.getUint32(28, true);
  const bytesStart = HEADER_BYTES + (vocabSize + 1 + mergeCount * 3 + pairRankInts + tokenIndexInts) * 4;
  const expectedLength = bytesStart + tokenBytesLength + metaLength;
  if (blob.length !== expectedLength) throw new CompiledTokenizerError(`${blob.length} bytes, but the header describes ${expectedLength} (truncated or corrupt)`);
  if (zlib.crc32(blob.subarray(HEADER_BYTES)) !== header.getUint32(32, true)) throw new CompiledTokenizerError('checksum mismatch (corrupt data)');
  if (pairRankInts % 3 !== 0 || !isPowerOfTwo(pairRankInts / 3) || !isPowerOfTwo(tokenIndexInts)) {
    throw new CompiledTokenizerError(`hash tables of ${pairRankInts} and ${tokenIndexInts} ints are not power-of-two slot counts`);
  }
  let intOffset = HEADER_BYTES;
  const nextInts = (count: number): Int32Array => {
    const values = readInt32s(blob, intOffset, count);
    intOffset += count * 4;
    return values;
  };
  const tokenOffsets = nextInts(vocabSize + 1);
  const merges = nextInts(mergeCount * 3);
  const pairRankSlots = nextInts(pairRankInts);
  const tokenIndexSlots = nextInts(tokenIndexInts);
  // A plain Uint8Array view even when `blob` is a Buffer, so tokenBytes() hands out plain arrays.
  const tokenBytes = new Uint8Array(blob.buffer, blob.byteOffset + bytesStart, tokenBytesLength);
  if (tokenOffsets[0] !== 0 || tokenOffsets[vocabSize] !== tokenBytesLength) throw new CompiledTokenizerError('token offsets do not span the token bytes');
  for (let id = 0; id < vocabSize; id++) {
    if (tokenOffsets[id + 1] < tokenOffsets[id]) throw new CompiledTokenizerError(`token offsets decrease at id ${id}`);
  }
  for (let i = 0; i < merges.length; i++) {
    if (!(merges[i] >= 0 && merges[i] < vocabSize)) throw new CompiledTokenizerError(`merge rule ${Math.floor(i / 3)} names id ${merges[i]} outside the vocabulary`);
  }
  const metaBytes = blob.subarray(bytesStart + tokenBytesLength);
  let meta: unknown;
  try {
    meta = JSON.parse(Buffer.from(metaBytes.buffer, metaBytes.byteOffset, metaBytes.length).toString('utf8'));
  } catch (error) {
    throw new CompiledTokenizerError(`meta JSON: ${(error as Error).message}`);
  }
  return { tokenBytes, tokenOffsets, merges, pairRankSlots, tokenIndexSlots, meta: checkMeta(meta, vocabSize) };
}

function readInt32s(blob: Uint8Array, offset: number, count: number): Int32Array {
  const start = blob.byteOffset + offset;
  if (LITTLE_ENDIAN_HOST && start % 4 === 0) return new Int32Array(blob.buffer, start, count);
  const view = new DataView(blob.buffer, start, count * 4);
  const values = new Int32Array(count);
  for (let i = 0; i < count; i++) values[i] = view.getInt32(i * 4, true);
  return values;
}

function checkMeta(value: unknown, vocabSize: number): CompiledTokenizerMeta {
  const meta = value as Partial<Record<keyof CompiledTokenizerMeta, unknown>> | null;
  const isId = (id: unknown): id is number => Number.isInteger(id) && (id as number) >= 0 && (id as number) < vocabSize;
  const fail = (what: string): never => {
    throw new CompiledTokenizerError(`meta JSON: ${what}`);
  };
  if (typeof meta !== 'object' || meta === null) return fail('not an object');
  if (typeof meta.ignoreMerges !== 'boolean') fail('ignoreMerges is not a boolean');
  if (typeof meta.addBosByDefault !== 'boolean') fail('addBosByDefault is not a boolean');
  if (!isId(meta.bosId) || !isId(meta.eosId)) fail('bosId / eosId are not ids of the vocabulary');
  if (meta.chatTemplate !== undefined && typeof meta.chatTemplate !== 'string') fail('chatTemplate is not a string');
  if (!Array.isArray(meta.addedTokens)) return fail('addedTokens is not an array');
  for (const token of meta.addedTokens as Partial<AddedToken>[]) {
    if (!isId(token?.id) || typeof token.content !== 'string' || typeof token.special !== 'boolean') {
      fail(`malformed added token ${JSON.stringify(token)}`);
    }
  }
  return meta as CompiledTokenizerMeta;
}
