/**
 * The project's own model file: bit-plane ternary weights ready to mmap, plus everything needed
 * to run the model (config, tokenizer, chat template) in one file.
 *
 * Layout (all integers little-endian):
 *
 *   [0, 64)        fixed prefix: magic "BNPLANE\0", u32 version, u32 flags (0),
 *                  u64 index offset, u64 index length, u32 CRC-32 of the index, zero padding
 *   [64, index)    tensor data; every tensor starts on a 64-byte boundary (cache line, and the
 *                  alignment native/kernels/ternary_format.h requires of plane data)
 *   [index, EOF)   UTF-8 JSON index: format version, ModelConfig, chat template, and one
 *                  entry per tensor {name, kind, shape, scale?, offset, byteLength, crc32}
 *
 * The index sits at the end so the writer can stream tensors and record their checksums as it
 * goes, then patch the prefix; the file is written to a temporary sibling and renamed, so a
 * reader never sees a partial file. Ternary tensors hold the planes exactly as the native
 * pack_ternary writes them: packedBytes(rows, cols) bytes; β lives in the index.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as zlib from 'zlib';
import { ModelConfig, ModelConfigError, modelTensors, validateConfig } from '../model/architecture';
import { ModelFileError } from './errors';
import { BlockWriter, readExactly, TensorBytes, writeAll } from './file-io';

/** File magic (8 bytes). */
export const BITPLANE_MAGIC = 'BNPLANE\0';
/** Current format version; readers refuse other versions. */
export const BITPLANE_VERSION = 2;
/** Alignment of every tensor's first byte, and size of the fixed prefix. */
export const BITPLANE_ALIGNMENT = 64;
/** Largest index accepted (the 2B4T index is a few tens of KB). */
export const MAX_BITPLANE_INDEX_BYTES = 64 * 1024 * 1024;

// Mirrors kRowTile / kChunkCols of native/kernels/ternary_format.h.
const ROW_TILE = 64;
const CHUNK_COLS = 128;

/** Bytes of a packed bit-plane matrix (native packed_bytes()). */
export function packedPlaneBytes(rows: number, cols: number): number {
  return (Math.ceil(rows / ROW_TILE) * ROW_TILE * Math.ceil(cols / CHUNK_COLS) * CHUNK_COLS) / 4;
}

/**
 * What a tensor entry holds. 'q4': 4-bit rows [rows, cols] (cols a multiple of 128), cols / 2
 * bytes per row in the nibble layout of native matvec_q4 (see {@link LM_HEAD_Q4}).
 */
export type BitplaneTensorKind = 'ternary-planes' | 'f32' | 'f16' | 'i8' | 'q4' | 'blob';

/** One tensor as recorded in the index. Offsets are absolute file offsets. */
export interface BitplaneTensorEntry {
  name: string;
  kind: BitplaneTensorKind;
  /** Logical shape ([rows, cols] for ternary; [] for blobs). */
  shape: number[];
  /** β for ternary tensors. */
  scale?: number;
  offset: number;
  byteLength: number;
  crc32: number;
}

/** Model-level content of the file. */
export interface BitplaneModelInfo {
  config: ModelConfig;
  /** Jinja chat template, or null when the model has none. */
  chatTemplate: string | null;
}

/** A validated file header. */
export interface BitplaneHeader extends BitplaneModelInfo {
  path: string;
  version: number;
  tensors: BitplaneTensorEntry[];
}

/** Packed ternary planes together with their β, for tensors whose β is known only once read. */
export interface ScaledPlanes {
  planes: Uint8Array;
  scale: number;
}

/**
 * A tensor to write; `bytes` is called once, in order, and may return chunks. A ternary tensor
 * gives its β either as `scale` or by returning {@link ScaledPlanes} from `bytes`.
 */
export interface BitplaneTensorInput {
  name: string;
  kind: BitplaneTensorKind;
  shape: number[];
  scale?: number;
  bytes: () => TensorBytes | ScaledPlanes;
}

/** Name of the blob entry holding tokenizer.json (required). */
export const TOKENIZER_BLOB = 'tokenizer.json';
/** Name of the optional blob entry holding tokenizer_config.json (BOS/EOS names, add_bos_token). */
export const TOKENIZER_CONFIG_BLOB = 'tokenizer_config.json';
/**
 * Name of the optional blob entry holding the same tokenizer in compiled form (Tokenizer.toCompiled),
 * which loads in milliseconds; tokenizer.json stays the readable, standard copy.
 */
export const TOKENIZER_COMPILED_BLOB = 'tokenizer.bin';
/** The optional int8 LM head: i8 [vocab, int8HeadCols(hidden)], rows zero-padded. */
export const LM_HEAD_INT8 = 'lm_head.int8';
/** Per-row scales of the int8 LM head: f32 [vocab]; row r's logits weight is q[r][k] * scale[r]. */
export const LM_HEAD_ROW_SCALE = 'lm_head.row_scale';

/**
 * The optional 4-bit LM head (with the int8 head, which it requires): q4 [vocab, q4HeadCols(hidden)].
 * Each nibble is weight + 8 (weights -8..7, here -7..7); byte b of a row's 64-byte block j holds
 * column 128 j + b in its low nibble and 128 j + 64 + b in its high nibble. Decode ranks every row
 * with it and recomputes the best {@link LM_HEAD_EXACT_ROWS} from the int8 head.
 */
export const LM_HEAD_Q4 = 'lm_head.q4';
/** Per-row scales of the 4-bit LM head: f32 [vocab]; row r's weight is (nibble - 8) * scale[r]. */
export const LM_HEAD_Q4_ROW_SCALE = 'lm_head.q4_row_scale';
/** Columns per 64-byte block of the 4-bit head (native kQ4BlockCols). */
export const Q4_BLOCK_COLS = 128;
/** Rows of the int8 head decode recomputes after ranking with the 4-bit head (native kLmHeadExactRows). */
export const LM_HEAD_EXACT_ROWS = 64;

/** Row length of the int8 LM head: hidden rounded up to the 64-byte alignment the i8 kernels read. */
export function int8HeadCols(hidden: number): number {
  return alignUp(hidden);
}

/** Row length (in columns) of the 4-bit LM head: hidden rounded up to whole 128-column blocks. */
export function q4HeadCols(hidden: number): number {
  return Math.ceil(hidden / Q4_BLOCK_COLS) * Q4_BLOCK_COLS;
}

function expectedBytes(kind: BitplaneTensorKind, shape: number[]): number | null {
  const count = shape.reduce((a, b) => a * b, 1);
  if (kind === 'ternary-planes') return shape.length === 2 ? packedPlaneBytes(shape[0], shape[1]) : -1;
  if (kind === 'f32') return count * 4;
  if (kind === 'f16') return count * 2;
  if (kind === 'i8') return count;
  if (kind === 'q4') return shape.length === 2 && shape[1] % Q4_BLOCK_COLS === 0 ? count / 2 : -1;
  return null;
}

function isScaledPlanes(value: TensorBytes | ScaledPlanes): value is ScaledPlanes {
  return !(value instanceof Uint8Array) && 'planes' in value;
}

function alignUp(n: number): number {
  return Math.ceil(n / BITPLANE_ALIGNMENT) * BITPLANE_ALIGNMENT;
}

/**
 * Writes a bit-plane model file atomically (temporary sibling + rename). Ternary inputs must
 * already be packed (native pack_ternary); their byte length is checked against the shape.
 * @param onTensorWritten called after each tensor's bytes are written (default none)
 */
export function writeBitplaneFile(target: string, info: BitplaneModelInfo, tensors: BitplaneTensorInput[], onTensorWritten?: (entry: BitplaneTensorEntry, done: number, total: number) => void): void {
  validateConfig(info.config, target);
  const temp = `${target}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const fd = fs.openSync(temp, 'w');
  try {
    const entries: BitplaneTensorEntry[] = [];
    const writer = new BlockWriter((block) => writeAll(fd, block));
    let position = BITPLANE_ALIGNMENT;
    writer.write(new Uint8Array(BITPLANE_ALIGNMENT));
    for (const t of tensors) {
      const result = t.bytes();
      const scaled = isScaledPlanes(result);
      const produced = scaled ? result.planes : result;
      const scale = scaled ? result.scale : t.scale;
      if (t.kind === 'ternary-planes' && !(scale !== undefined && Number.isFinite(scale) && scale >= 0)) throw new Error(`writeBitplaneFile: '${t.name}' needs a finite non-negative scale, got ${scale}`);
      let length = 0;
      let crc = 0;
      for (const chunk of produced instanceof Uint8Array ? [produced] : produced) {
        writer.write(chunk);
        crc = zlib.crc32(chunk, crc);
        length += chunk.length;
      }
      const expected = expectedBytes(t.kind, t.shape);
      if (expected !== null && length !== expected) throw new Error(`writeBitplaneFile: '${t.name}' is ${length} bytes, expected ${expected} for ${t.kind} [${t.shape}]`);
      const entry: BitplaneTensorEntry = { name: t.name, kind: t.kind, shape: t.shape, ...(scale === undefined ? {} : { scale }), offset: position, byteLength: length, crc32: crc };
      entries.push(entry);
      onTensorWritten?.(entry, entries.length, tensors.length);
      const padded = alignUp(position + length);
      writer.write(new Uint8Array(padded - position - length));
      position = padded;
    }
    const index = Buffer.from(JSON.stringify({ format: 'bitnet-bitplane', version: BITPLANE_VERSION, config: info.config, chatTemplate: info.chatTemplate, tensors: entries }), 'utf8');
    writer.write(index);
    writer.flush();
    const prefix = Buffer.alloc(BITPLANE_ALIGNMENT);
    prefix.write(BITPLANE_MAGIC, 0, 'latin1');
    prefix.writeUInt32LE(BITPLANE_VERSION, 8);
    prefix.writeBigUInt64LE(BigInt(position), 16);
    prefix.writeBigUInt64LE(BigInt(index.length), 24);
    prefix.writeUInt32LE(zlib.crc32(index), 32);
    fs.writeSync(fd, prefix, 0, prefix.length, 0);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(temp, target);
  } catch (error) {
    try {
      fs.closeSync(fd);
    } catch {
      // Already closed on the success path before the rename failed.
    }
    fs.rmSync(temp, { force: true });
    throw error;
  }
}

/**
 * Reads and validates the prefix and index of a bit-plane file: magic, version, index bounds
 * and checksum, every tensor aligned, inside the data region, non-overlapping and sized for its
 * kind and shape, and the tensor set matching what the config implies. Tensor bytes are not
 * read; use verifyBitplaneChecksums for that.
 */
export function readBitplaneHeader(file: string): BitplaneHeader {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    if (size < BITPLANE_ALIGNMENT) throw new ModelFileError(file, null, `file is ${size} bytes, shorter than the ${BITPLANE_ALIGNMENT}-byte prefix`);
    const prefix = Buffer.from(readExactly(fd, file, null, 0, BITPLANE_ALIGNMENT));
    if (prefix.toString('latin1', 0, 8) !== BITPLANE_MAGIC) throw new ModelFileError(file, null, 'bad magic: not a bitnet-gen bit-plane model file');
    const version = prefix.readUInt32LE(8);
    if (version !== BITPLANE_VERSION) throw new ModelFileError(file, null, `unsupported bit-plane file version ${version} (this build reads ${BITPLANE_VERSION}); re-convert the model`);
    const indexOffset = prefix.readBigUInt64LE(16);
    const indexLength = prefix.readBigUInt64LE(24);
    if (indexOffset < BigInt(BITPLANE_ALIGNMENT) || indexOffset % BigInt(BITPLANE_ALIGNMENT) !== 0n || indexOffset + indexLength !== BigInt(size)) {
      throw new ModelFileError(file, null, `index [${indexOffset}, +${indexLength}) does not end the ${size}-byte file on an aligned offset (truncated or corrupt)`);
    }
    if (indexLength > BigInt(MAX_BITPLANE_INDEX_BYTES)) throw new ModelFileError(file, null, `index of ${indexLength} bytes exceeds the ${MAX_BITPLANE_INDEX_BYTES}-byte limit`);
    const indexBytes = readExactly(fd, file, null, Number(indexOffset), Number(indexLength));
    if (zlib.crc32(indexBytes) !== prefix.readUInt32LE(32)) throw new ModelFileError(file, null, 'index checksum mismatch (corrupt file)');
    let index: Record<string, unknown>;
    try {
      index = JSON.parse(Buffer.from(indexBytes).toString('utf8'));
    } catch (error) {
      throw new ModelFileError(file, null, `index is not valid JSON (${(error as Error).message})`);
    }
    const config = index.config as ModelConfig;
    try {
      validateConfig(config, file);
    } catch (error) {
      if (error instanceof ModelConfigError || error instanceof TypeError) throw new ModelFileError(file, null, `invalid config in index: ${(error as Error).message}`);
      throw error;
    }
    const tensors = validateEntries(file, index.tensors, Number(indexOffset));
    checkTensorSet(file, config, tensors);
    const chatTemplate = typeof index.chatTemplate === 'string' ? index.chatTemplate : null;
    return { path: file, version, config, chatTemplate, tensors };
  } finally {
    fs.closeSync(fd);
  }
}

const KINDS = new Set<BitplaneTensorKind>(['ternary-planes', 'f32', 'f16', 'i8', 'q4', 'blob']);

function validateEntries(file: string, raw: unknown, dataEnd: number): BitplaneTensorEntry[] {
  if (!Array.isArray(raw)) throw new ModelFileError(file, null, "index has no 'tensors' list");
  const entries = raw as BitplaneTensorEntry[];
  const names = new Set<string>();
  for (const e of entries) {
    const name = typeof e?.name === 'string' ? e.name : '(unnamed)';
    const problem = entryProblem(e, dataEnd);
    if (problem) throw new ModelFileError(file, name, problem);
    if (names.has(name)) throw new ModelFileError(file, name, 'duplicate tensor name');
    names.add(name);
  }
  const ordered = [...entries].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < ordered.length; i++) {
    if (ordered[i].offset < ordered[i - 1].offset + ordered[i - 1].byteLength) throw new ModelFileError(file, ordered[i].name, `bytes overlap tensor '${ordered[i - 1].name}'`);
  }
  return entries;
}

function entryProblem(e: BitplaneTensorEntry, dataEnd: number): string | null {
  if (!KINDS.has(e.kind)) return `unknown kind '${String(e.kind)}'`;
  if (!Array.isArray(e.shape) || e.shape.some((d) => !Number.isSafeInteger(d) || d <= 0)) return `shape ${JSON.stringify(e.shape)} is not a list of positive integers`;
  if (!Number.isSafeInteger(e.offset) || !Number.isSafeInteger(e.byteLength) || e.byteLength < 0) return 'offset/byteLength are not integers';
  if (e.offset % BITPLANE_ALIGNMENT !== 0) return `offset ${e.offset} is not ${BITPLANE_ALIGNMENT}-byte aligned`;
  if (e.offset < BITPLANE_ALIGNMENT || e.offset + e.byteLength > dataEnd) return `bytes [${e.offset}, ${e.offset + e.byteLength}) lie outside the data region [${BITPLANE_ALIGNMENT}, ${dataEnd})`;
  const expected = expectedBytes(e.kind, e.shape);
  if (expected !== null && expected !== e.byteLength) return `${e.kind} [${e.shape}] needs ${expected} bytes, index says ${e.byteLength}`;
  if (e.kind === 'ternary-planes' && !(typeof e.scale === 'number' && Number.isFinite(e.scale) && e.scale >= 0)) return `scale ${String(e.scale)} is not a finite non-negative number`;
  if (!Number.isInteger(e.crc32) || e.crc32 < 0 || e.crc32 > 0xffffffff) return 'crc32 is not a 32-bit unsigned integer';
  return null;
}

function checkTensorSet(file: string, config: ModelConfig, entries: BitplaneTensorEntry[]): void {
  const byName = new Map(entries.map((e) => [e.name, e]));
  const expect = (name: string, kinds: readonly BitplaneTensorKind[], shape: readonly number[] | null, what: string): void => {
    const e = byName.get(name);
    if (!e) throw new ModelFileError(file, name, 'tensor missing');
    if (!kinds.includes(e.kind)) throw new ModelFileError(file, name, `kind ${e.kind} is not valid for ${what}`);
    if (shape && (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i]))) throw new ModelFileError(file, name, `shape [${e.shape}] does not match [${shape}] from the config`);
  };
  for (const spec of modelTensors(config)) {
    expect(spec.hfName, spec.kind === 'ternary' ? ['ternary-planes'] : ['f32', 'f16'], spec.shape, `a ${spec.kind} tensor`);
  }
  expect(TOKENIZER_BLOB, ['blob'], null, 'the tokenizer');
  if (byName.has(TOKENIZER_CONFIG_BLOB)) expect(TOKENIZER_CONFIG_BLOB, ['blob'], null, 'the tokenizer config');
  if (byName.has(TOKENIZER_COMPILED_BLOB)) expect(TOKENIZER_COMPILED_BLOB, ['blob'], null, 'the compiled tokenizer');
  if (byName.has(LM_HEAD_INT8) || byName.has(LM_HEAD_ROW_SCALE)) {
    expect(LM_HEAD_INT8, ['i8'], [config.vocab, int8HeadCols(config.hidden)], 'the int8 LM head');
    expect(LM_HEAD_ROW_SCALE, ['f32'], [config.vocab], 'the int8 LM head row scales');
  }
  if (byName.has(LM_HEAD_Q4) || byName.has(LM_HEAD_Q4_ROW_SCALE)) {
    expect(LM_HEAD_Q4, ['q4'], [config.vocab, q4HeadCols(config.hidden)], 'the 4-bit LM head');
    expect(LM_HEAD_Q4_ROW_SCALE, ['f32'], [config.vocab], 'the 4-bit LM head row scales');
    if (!byName.has(LM_HEAD_INT8)) throw new ModelFileError(file, LM_HEAD_INT8, 'tensor missing: the 4-bit LM head needs the int8 head to re-score its candidates');
  }
}

/** Reads every tensor and checks its CRC-32; throws a ModelFileError naming the first bad one. */
export function verifyBitplaneChecksums(header: BitplaneHeader): void {
  const fd = fs.openSync(header.path, 'r');
  try {
    for (const e of header.tensors) {
      if (zlib.crc32(readExactly(fd, header.path, e.name, e.offset, e.byteLength)) !== e.crc32) throw new ModelFileError(header.path, e.name, 'checksum mismatch (corrupt file)');
    }
  } finally {
    fs.closeSync(fd);
  }
}
