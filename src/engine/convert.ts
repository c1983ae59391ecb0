/**
 * Conversion of any supported source model (HF folder, GGUF file) into the project's bit-plane
 * model file, which {@link BitNetModel.load} maps without copying.
 *
 * Tensors are converted one at a time, in file order, straight into the atomic writer (temporary
 * sibling + rename): a failed conversion leaves no output, and memory holds one source tensor
 * plus the piece being written, never the whole model.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { packTernary } from '../kernels';
import {
  BitplaneTensorInput,
  int8HeadCols,
  LM_HEAD_INT8,
  LM_HEAD_Q4,
  LM_HEAD_Q4_ROW_SCALE,
  LM_HEAD_ROW_SCALE,
  Q4_BLOCK_COLS,
  q4HeadCols,
  readBitplaneHeader,
  TOKENIZER_BLOB,
  TOKENIZER_COMPILED_BLOB,
  TOKENIZER_CONFIG_BLOB,
  writeBitplaneFile,
} from '../formats/bitplane-file';
import { ModelFileError } from '../formats/errors';
import { GgufFile } from '../formats/gguf';
import { ModelSource, openModel } from '../formats/model-reader';
import type { ConfigOverrides, TensorSpec } from '../model/architecture';
import { readGgufTokenizerMetadata } from '../tokenizer/gguf-metadata';
import { hfTokenizerFilesFromGguf } from '../tokenizer/hf-json';
import { Tokenizer } from '../tokenizer/tokenizer';
import type { HfTokenizerConfig, HfTokenizerJson } from '../tokenizer/tokenizer';

/** Bumped whenever the converter's output bytes change, so cached conversions are redone. */
export const CONVERTER_VERSION = 3;

/**
 * How the LM head is stored: 'q4' = per-row 4-bit rows that decode ranks the vocabulary with plus
 * the int8 rows it recomputes the best candidates from (the fewest bytes read per token), 'int8' =
 * per-row int8 only, 'f16' = the f16 embedding / lm_head only.
 */
export type LmHeadFormat = 'q4' | 'int8' | 'f16';

/** The LM head format of new conversions (see {@link ConvertOptions.lmHead}). */
export const DEFAULT_LM_HEAD: LmHeadFormat = 'q4';

/** Every LM head format, the default first. */
export const LM_HEAD_FORMATS: readonly LmHeadFormat[] = ['q4', 'int8', 'f16'];

/** One step of a conversion, reported after each tensor is written. */
export interface ConvertProgress {
  /** Tensors written so far. */
  done: number;
  /** Tensors the file will hold. */
  total: number;
  /** The tensor just written. */
  tensor: string;
}

/** Options of {@link convertModel}. */
export interface ConvertOptions {
  /**
   * LM head storage, in addition to the f16 embedding, which the embedding lookup always needs.
   * 'int8': per-row absmax int8 of the head (the tied embedding for 2B4T). 'q4': the same int8
   * rows plus per-row absmax 4-bit rows; decode reads the 4-bit rows for every token and the int8
   * rows of the 64 best candidates only (LM_HEAD_EXACT_ROWS), so greedy decoding and the top of
   * the distribution are exact while the other logits are approximate (docs/model-files.md).
   * 'f16': no quantized head. Default {@link DEFAULT_LM_HEAD}.
   */
  lmHead?: LmHeadFormat;
  /** Forces activation / sub-norm choices of the source (see openModel). Default none. */
  overrides?: ConfigOverrides;
  /** Called after each tensor is written. Default none. */
  onProgress?: (progress: ConvertProgress) => void;
}

/** What a conversion produced. */
export interface ConvertResult {
  output: string;
  /** Bytes of the written file. */
  bytes: number;
  /** Non-zero embedding / head values that became ±0 in f16 (too small for f16's range). */
  f16Underflows: number;
  /** Values stored as f16 subnormals (reduced precision, below 2^-14). */
  f16Subnormals: number;
  /** The chat template recorded in the file, or null. */
  chatTemplate: string | null;
}

/** Counts of lossy f16 conversions over one tensor or a whole file. */
export interface F16Stats {
  underflows: number;
  subnormals: number;
}

/** Rows per written block of the f16 embedding and the int8 head. */
const ROWS_PER_CHUNK = 1024;

/**
 * Converts `input` (an HF folder or a .gguf file) to a bit-plane model file at `output`.
 * Ternary matrices are packed into bit planes with β as their scale, norms stay f32, the
 * embedding (and an untied lm_head.weight) become f16, the tokenizer is stored as HF
 * tokenizer.json + tokenizer_config.json blobs (built from tokenizer.ggml.* for GGUF inputs) plus
 * the same tokenizer compiled (tokenizer.bin, see Tokenizer.toCompiled) for fast loading.
 * @throws ModelFileError for invalid inputs (nothing is written), or when a value overflows f16
 */
export function convertModel(input: string, output: string, options: ConvertOptions = {}): ConvertResult {
  const lmHead = options.lmHead ?? DEFAULT_LM_HEAD;
  if (!LM_HEAD_FORMATS.includes(lmHead)) throw new RangeError(`lmHead must be one of ${LM_HEAD_FORMATS.map((f) => `'${f}'`).join(', ')}, got '${String(lmHead)}'`);
  const folder = path.dirname(path.resolve(output));
  if (!fs.existsSync(folder) || !fs.statSync(folder).isDirectory()) throw new Error(`convertModel: output folder ${folder} does not exist`);
  const source = openModel(input, options.overrides);
  try {
    const tokenizer = tokenizerBlobs(source);
    const stats: F16Stats = { underflows: 0, subnormals: 0 };
    const tensors = tensorInputs(source, lmHead, stats);
    tensors.push(...tokenizer.blobs);
    writeBitplaneFile(output, { config: source.config, chatTemplate: tokenizer.chatTemplate }, tensors, (entry, done, total) => options.onProgress?.({ done, total, tensor: entry.name }));
    return { output, bytes: fs.statSync(output).size, f16Underflows: stats.underflows, f16Subnormals: stats.subnormals, chatTemplate: tokenizer.chatTemplate };
  } finally {
    source.close();
  }
}

function tensorInputs(source: ModelSource, lmHead: LmHeadFormat, stats: F16Stats): BitplaneTensorInput[] {
  const inputs: BitplaneTensorInput[] = source.tensors.map((spec) => {
    if (spec.kind === 'ternary') {
      return {
        name: spec.hfName,
        kind: 'ternary-planes',
        shape: spec.shape,
        bytes: () => {
          const m = source.readTernary(spec);
          return { planes: packTernary(m.values, m.rows, m.cols), scale: m.scale };
        },
      };
    }
    if (spec.kind === 'norm') return { name: spec.hfName, kind: 'f32', shape: spec.shape, bytes: () => f32Bytes(source.readFloat(spec)) };
    return { name: spec.hfName, kind: 'f16', shape: spec.shape, bytes: () => f16Chunks(source, spec, stats) };
  });
  if (lmHead === 'f16') return inputs;
  const headSpec = source.tensors.find((s) => s.role === (source.config.tiedEmbeddings ? 'embed' : 'lm_head'))!;
  const [vocab, hidden] = headSpec.shape;
  const rowScale = new Float32Array(vocab);
  inputs.push(
    { name: LM_HEAD_INT8, kind: 'i8', shape: [vocab, int8HeadCols(hidden)], bytes: () => int8HeadChunks(source, headSpec, rowScale) },
    { name: LM_HEAD_ROW_SCALE, kind: 'f32', shape: [vocab], bytes: () => f32Bytes(rowScale) },
  );
  if (lmHead === 'q4') {
    const q4Scale = new Float32Array(vocab);
    inputs.push(
      { name: LM_HEAD_Q4, kind: 'q4', shape: [vocab, q4HeadCols(hidden)], bytes: () => q4HeadChunks(source, headSpec, q4Scale) },
      { name: LM_HEAD_Q4_ROW_SCALE, kind: 'f32', shape: [vocab], bytes: () => f32Bytes(q4Scale) },
    );
  }
  return inputs;
}

function f32Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** The f16 bytes of a float tensor, a block of rows at a time so no full f16 copy is held. */
function* f16Chunks(source: ModelSource, spec: TensorSpec, stats: F16Stats): Generator<Uint8Array> {
  const [rows] = spec.shape;
  const cols = spec.shape.slice(1).reduce((a, b) => a * b, 1);
  for (let first = 0; first < rows; first += ROWS_PER_CHUNK) {
    const block = source.readFloatRows(spec, first, Math.min(ROWS_PER_CHUNK, rows - first));
    const half = new Uint16Array(block.length);
    const overflow = f32ToF16Block(block, half, stats);
    if (overflow >= 0) {
      const at = first * cols + overflow;
      throw new ModelFileError(source.path, spec.hfName, `value ${block[overflow]} at element ${at} (row ${Math.floor(at / cols)}) overflows f16 (|x| > 65504); this model cannot be stored with an f16 embedding`);
    }
    yield new Uint8Array(half.buffer);
  }
}

/**
 * Converts f32 values to IEEE binary16 bits with round-to-nearest-even (the same results as
 * float16.ts f32ToF16, done on the bit pattern because the 2B4T embedding has 328 M values),
 * counting underflows and subnormals.
 * @returns the index of the first value that overflows f16, or -1
 */
export function f32ToF16Block(values: Float32Array, out: Uint16Array, stats: F16Stats): number {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i];
    const sign = (x >>> 16) & 0x8000;
    const exponent = ((x >>> 23) & 0xff) - 127 + 15;
    const mantissa = x & 0x7fffff;
    if (exponent >= 31) return i;
    let half: number;
    if (exponent > 0) {
      half = (exponent << 10) | (mantissa >>> 13);
      const rest = mantissa & 0x1fff;
      if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++;
      if (half >= 0x7c00) return i;
    } else if (exponent >= -10) {
      const shift = 14 - exponent;
      const full = mantissa | 0x800000;
      half = full >>> shift;
      const rest = full & ((1 << shift) - 1);
      const halfway = 1 << (shift - 1);
      if (rest > halfway || (rest === halfway && (half & 1) === 1)) half++;
    } else {
      half = 0;
    }
    if (half === 0 && (x & 0x7fffffff) !== 0) stats.underflows++;
    else if (half !== 0 && half < 0x400) stats.subnormals++;
    out[i] = sign | half;
  }
  return -1;
}

/**
 * Per-row absmax int8 quantization of the LM head: scale[r] = fround(max|x| / 127),
 * q = round-half-even(x / scale[r]) clamped to ±127; an all-zero row gets scale 0 and q = 0.
 * Rows are zero-padded to `int8HeadCols(hidden)`. Fills `rowScale` as rows are produced.
 */
function* int8HeadChunks(source: ModelSource, spec: TensorSpec, rowScale: Float32Array): Generator<Uint8Array> {
  const [vocab, hidden] = spec.shape;
  const cols = int8HeadCols(hidden);
  for (let first = 0; first < vocab; first += ROWS_PER_CHUNK) {
    const rows = Math.min(ROWS_PER_CHUNK, vocab - first);
    const values = source.readFloatRows(spec, first, rows);
    const q = new Int8Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      const row = values.subarray(r * hidden, (r + 1) * hidden);
      rowScale[first + r] = quantizeRowInt8(row, q.subarray(r * cols, r * cols + hidden));
    }
    yield new Uint8Array(q.buffer);
  }
}

/** Quantizes one row into `out` (same length) and returns its scale; see int8HeadChunks. */
export function quantizeRowInt8(row: Float32Array, out: Int8Array): number {
  return quantizeRowSymmetric(row, out, 127);
}

/**
 * Per-row absmax quantization to integers in [-levels, levels]: scale = fround(max|x| / levels),
 * q = round-half-even(x / scale) clamped; an all-zero row gets scale 0 and q = 0.
 */
function quantizeRowSymmetric(row: Float32Array, out: Int8Array, levels: number): number {
  let absmax = 0;
  for (let i = 0; i < row.length; i++) absmax = Math.max(absmax, Math.abs(row[i]));
  const scale = Math.fround(absmax / levels);
  if (scale === 0) return 0;
  for (let i = 0; i < row.length; i++) {
    const x = row[i] / scale;
    let q = Math.round(x);
    // Math.round rounds halves up; ties go to the even neighbour instead.
    if (q - x === 0.5 && q % 2 !== 0) q -= 1;
    out[i] = Math.max(-levels, Math.min(levels, q));
  }
  return scale;
}

/**
 * The 4-bit LM head: per-row absmax quantization to -7..7 (as int8, with 7 levels), packed as
 * nibbles q + 8 in the layout of {@link LM_HEAD_Q4}; padding columns hold weight 0. Fills `rowScale`.
 */
function* q4HeadChunks(source: ModelSource, spec: TensorSpec, rowScale: Float32Array): Generator<Uint8Array> {
  const [vocab, hidden] = spec.shape;
  const cols = q4HeadCols(hidden);
  const half = Q4_BLOCK_COLS / 2;
  const q = new Int8Array(cols);
  for (let first = 0; first < vocab; first += ROWS_PER_CHUNK) {
    const rows = Math.min(ROWS_PER_CHUNK, vocab - first);
    const values = source.readFloatRows(spec, first, rows);
    const packed = new Uint8Array((rows * cols) / 2);
    for (let r = 0; r < rows; r++) {
      q.fill(0);
      rowScale[first + r] = quantizeRowSymmetric(values.subarray(r * hidden, (r + 1) * hidden), q.subarray(0, hidden), 7);
      const out = packed.subarray((r * cols) / 2, ((r + 1) * cols) / 2);
      for (let block = 0; block < cols; block += Q4_BLOCK_COLS) {
        for (let b = 0; b < half; b++) out[block / 2 + b] = (q[block + b] + 8) | ((q[block + half + b] + 8) << 4);
      }
    }
    yield packed;
  }
}

/** The tokenizer blobs and chat template of a source model. */
interface TokenizerContent {
  blobs: BitplaneTensorInput[];
  chatTemplate: string | null;
}

function blob(name: string, bytes: Uint8Array): BitplaneTensorInput {
  return { name, kind: 'blob', shape: [], bytes: () => bytes };
}

/** The tokenizer files of a source model, as they are stored in the converted file. */
interface TokenizerFiles {
  /** Where the tokenizer comes from, for error messages. */
  origin: string;
  tokenizerJson: Uint8Array;
  tokenizerConfig: Uint8Array | null;
  chatTemplate: string | null;
}

/**
 * The tokenizer.json / tokenizer_config.json blobs plus the compiled form of the same tokenizer,
 * built the way BitNetModel.load builds it from the JSON (the file's chat template wins).
 */
function tokenizerBlobs(source: ModelSource): TokenizerContent {
  const files = tokenizerFiles(source);
  const blobs = [blob(TOKENIZER_BLOB, files.tokenizerJson)];
  let config: HfTokenizerConfig = {};
  if (files.tokenizerConfig !== null) {
    blobs.push(blob(TOKENIZER_CONFIG_BLOB, files.tokenizerConfig));
    config = JSON.parse(Buffer.from(files.tokenizerConfig).toString('utf8')) as HfTokenizerConfig;
  }
  let compiled: Uint8Array;
  try {
    const json = JSON.parse(Buffer.from(files.tokenizerJson).toString('utf8')) as HfTokenizerJson;
    compiled = Tokenizer.fromHfJson(json, { ...config, chat_template: files.chatTemplate }).toCompiled();
  } catch (error) {
    throw new ModelFileError(files.origin, null, `tokenizer: ${(error as Error).message}`);
  }
  blobs.push(blob(TOKENIZER_COMPILED_BLOB, compiled));
  return { blobs, chatTemplate: files.chatTemplate };
}

function tokenizerFiles(source: ModelSource): TokenizerFiles {
  if (source.format === 'gguf') {
    const gguf = GgufFile.open(source.path);
    try {
      let metadata;
      try {
        metadata = readGgufTokenizerMetadata(gguf);
      } catch (error) {
        throw new ModelFileError(source.path, null, `tokenizer metadata: ${(error as Error).message}`);
      }
      const chatTemplate = realChatTemplate(metadata.chatTemplate);
      const files = hfTokenizerFilesFromGguf(metadata, chatTemplate);
      return {
        origin: source.path,
        tokenizerJson: Buffer.from(JSON.stringify(files.tokenizerJson)),
        tokenizerConfig: Buffer.from(JSON.stringify(files.tokenizerConfig)),
        chatTemplate,
      };
    } finally {
      gguf.close();
    }
  }
  const tokenizerPath = path.join(source.path, 'tokenizer.json');
  if (!fs.existsSync(tokenizerPath)) throw new ModelFileError(tokenizerPath, null, 'tokenizer.json missing: the converted file must carry the tokenizer');
  const tokenizerJson = fs.readFileSync(tokenizerPath);
  const configPath = path.join(source.path, 'tokenizer_config.json');
  if (!fs.existsSync(configPath)) return { origin: tokenizerPath, tokenizerJson, tokenizerConfig: null, chatTemplate: null };
  const configBytes = fs.readFileSync(configPath);
  let config: HfTokenizerConfig;
  try {
    config = JSON.parse(configBytes.toString('utf8')) as HfTokenizerConfig;
  } catch (error) {
    throw new ModelFileError(configPath, null, `cannot read JSON (${(error as Error).message})`);
  }
  const template = config.chat_template;
  const chosen = typeof template === 'string' ? template : Array.isArray(template) ? template.find((t) => t.name === 'default')?.template : undefined;
  return { origin: tokenizerPath, tokenizerJson, tokenizerConfig: configBytes, chatTemplate: realChatTemplate(chosen) };
}

/** bitnet.cpp's converter embeds a placeholder containing "BITNET" (reference 3f); it is no template. */
function realChatTemplate(template: string | null | undefined): string | null {
  if (typeof template !== 'string' || template.length === 0 || template.includes('BITNET')) return null;
  return template;
}

/** Options of {@link ensureConverted}. */
export interface EnsureConvertedOptions extends ConvertOptions {
  /** Cache folder. Default $BITNET_GEN_CACHE, else ~/.cache/bitnet-gen. */
  cacheDir?: string;
}

/** The converted-file cache folder: $BITNET_GEN_CACHE, else ~/.cache/bitnet-gen. */
export function defaultCacheDir(): string {
  return process.env.BITNET_GEN_CACHE || path.join(os.homedir(), '.cache', 'bitnet-gen');
}

const HF_KEY_FILES = /^(config\.json|generation_config\.json|tokenizer\.json|tokenizer_config\.json|.*\.safetensors|model\.safetensors\.index\.json)$/;

/**
 * The path of `input` converted with `options`, converting it first unless a valid file is
 * already cached. The file name is keyed by the input's real path, the size and mtime of the
 * files that define it (config, tokenizer and weight files for a folder), lmHead, overrides and
 * {@link CONVERTER_VERSION}, so editing the source or upgrading the converter re-converts.
 */
export function ensureConverted(input: string, options: EnsureConvertedOptions = {}): string {
  const real = fs.realpathSync(input);
  const files = fs.statSync(real).isDirectory()
    ? fs.readdirSync(real).filter((name) => HF_KEY_FILES.test(name)).sort().map((name) => [name, fs.statSync(path.join(real, name))] as const)
    : [['', fs.statSync(real)] as const];
  const key = JSON.stringify({
    input: real,
    files: files.map(([name, stat]) => [name, stat.size, stat.mtimeMs]),
    lmHead: options.lmHead ?? DEFAULT_LM_HEAD,
    overrides: options.overrides ?? {},
    converter: CONVERTER_VERSION,
  });
  const digest = crypto.createHash('sha256').update(key).digest('hex').slice(0, 16);
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const output = path.join(cacheDir, `${path.basename(real).replace(/\.gguf$/i, '')}-${digest}.bitnet`);
  if (fs.existsSync(output)) {
    try {
      readBitplaneHeader(output);
      return output;
    } catch (error) {
      if (!(error instanceof ModelFileError)) throw error;
      // An invalid cached file (e.g. from an older build) is replaced below.
    }
  }
  fs.mkdirSync(cacheDir, { recursive: true });
  convertModel(input, output, options);
  return output;
}
