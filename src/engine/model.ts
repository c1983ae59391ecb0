/**
 * A loaded model: the bit-plane file mapped into memory, its tokenizer, the
 * native forward pass over the mapped tensors, and the runtime (ISA, threads)
 * it runs on. Loading maps the file (faulting it in, in 2 MB pages where the OS allows) and parses
 * the index: no tensor is copied.
 */
import * as fs from 'fs';
import * as os from 'os';
import { native } from '../native';
import type { NativeHeadSpec, NativeLayerSpec, NativeModel, NativeModelSpec } from '../native';
import { Runtime, TernaryMatrix } from '../kernels';
import type { RuntimeOptions } from '../kernels';
import {
  BITPLANE_MAGIC,
  LM_HEAD_EXACT_ROWS,
  LM_HEAD_INT8,
  LM_HEAD_Q4,
  LM_HEAD_Q4_ROW_SCALE,
  LM_HEAD_ROW_SCALE,
  readBitplaneHeader,
  TOKENIZER_BLOB,
  TOKENIZER_COMPILED_BLOB,
  TOKENIZER_CONFIG_BLOB,
  verifyBitplaneChecksums,
} from '../formats/bitplane-file';
import type { BitplaneHeader, BitplaneTensorEntry } from '../formats/bitplane-file';
import { ModelFileError } from '../formats/errors';
import { layerTensors } from '../model/architecture';
import type { ModelConfig, TensorRole } from '../model/architecture';
import { Tokenizer } from '../tokenizer';
import type { HfTokenizerConfig, HfTokenizerJson } from '../tokenizer';
import type { RenderChatOptions } from '../chat';
import { Session } from './session';
import type { SessionHost } from './session';

/** Options of {@link BitNetModel.load}. */
export interface LoadOptions extends RuntimeOptions {
  /** Largest context any session may use. Default: the model's trained context (maxPositions). */
  maxContext?: number;
  /** Check every tensor's CRC-32 before use (reads the whole file once). Default false. */
  verify?: boolean;
  /**
   * Read the weights into memory instead of mapping the file (llama.cpp's --no-mmap), so that the
   * file may then change or go away. Both lie in 2 MB pages where the OS allows (see
   * {@link BitNetModel.hugePageShare}) and decode at the same speed; the copy loads slower (3.8-7.4 s
   * against 0.1-0.9 s for 2B4T on the VM of docs/kernels.md) and is not shared between processes.
   * Default false.
   */
  noMmap?: boolean;
  /** How chats are rendered: the model's Jinja template, the 2B4T format, or auto. Default "auto". */
  chatFormat?: RenderChatOptions['format'];
}

/** Options of {@link BitNetModel.createSession}. */
export interface SessionOptions {
  /** KV cache capacity in tokens. Default: min(4096, the model's maxContext). */
  contextSize?: number;
}

/** Throws a RangeError when `bytes` for `what` exceed this machine's memory, before anything is allocated. */
function requireMemory(what: string, bytes: number, advice: string): void {
  const total = os.totalmem();
  if (bytes > total) {
    const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;
    throw new RangeError(`not enough memory: ${what} needs ${gib(bytes)}, more than this machine's ${gib(total)}; ${advice}`);
  }
}

function isBitplaneFile(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const magic = Buffer.alloc(BITPLANE_MAGIC.length);
    return fs.readSync(fd, magic, 0, magic.length, 0) === magic.length && magic.toString('latin1') === BITPLANE_MAGIC;
  } finally {
    fs.closeSync(fd);
  }
}

/** The file's tensor entries by name. */
class TensorIndex {
  private readonly byName: Map<string, BitplaneTensorEntry>;

  constructor(protected readonly header: BitplaneHeader) {
    this.byName = new Map(header.tensors.map((e) => [e.name, e]));
  }

  entry(name: string): BitplaneTensorEntry {
    const e = this.byName.get(name);
    if (!e) throw new ModelFileError(this.header.path, name, 'tensor missing');
    return e;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }
}

/** Typed views over the mapped file, one per tensor entry, checked against the index. */
class MappedTensors extends TensorIndex {
  constructor(header: BitplaneHeader, private readonly buffer: ArrayBuffer) {
    super(header);
  }

  f32(name: string): Float32Array {
    const e = this.expectKind(name, 'f32');
    return new Float32Array(this.buffer, e.offset, e.byteLength / 4);
  }

  f16(name: string): Uint16Array {
    const e = this.expectKind(name, 'f16');
    return new Uint16Array(this.buffer, e.offset, e.byteLength / 2);
  }

  i8(name: string): Int8Array {
    const e = this.expectKind(name, 'i8');
    return new Int8Array(this.buffer, e.offset, e.byteLength);
  }

  q4(name: string): Uint8Array {
    const e = this.expectKind(name, 'q4');
    return new Uint8Array(this.buffer, e.offset, e.byteLength);
  }

  ternary(name: string): TernaryMatrix {
    const e = this.expectKind(name, 'ternary-planes');
    return new TernaryMatrix(new Uint8Array(this.buffer, e.offset, e.byteLength), e.shape[0], e.shape[1], e.scale ?? NaN);
  }

  blob(name: string): Buffer {
    const e = this.expectKind(name, 'blob');
    return Buffer.from(this.buffer, e.offset, e.byteLength);
  }

  private expectKind(name: string, kind: BitplaneTensorEntry['kind']): BitplaneTensorEntry {
    const e = this.entry(name);
    if (e.kind !== kind) throw new ModelFileError(this.header.path, name, `is stored as ${e.kind}, expected ${kind}`);
    return e;
  }
}

/**
 * The file's tokenizer: from the compiled blob when the converter wrote one (milliseconds), else
 * from tokenizer.json (seconds for the Llama-3 vocabulary; files from converter version 1).
 */
function loadTokenizer(tensors: MappedTensors, header: BitplaneHeader): Tokenizer {
  if (tensors.has(TOKENIZER_COMPILED_BLOB)) {
    try {
      return Tokenizer.fromCompiled(tensors.blob(TOKENIZER_COMPILED_BLOB));
    } catch (error) {
      throw new ModelFileError(header.path, TOKENIZER_COMPILED_BLOB, (error as Error).message);
    }
  }
  const tokenizerJson = JSON.parse(tensors.blob(TOKENIZER_BLOB).toString('utf8')) as HfTokenizerJson;
  const tokenizerConfig: HfTokenizerConfig = tensors.has(TOKENIZER_CONFIG_BLOB)
    ? (JSON.parse(tensors.blob(TOKENIZER_CONFIG_BLOB).toString('utf8')) as HfTokenizerConfig)
    : {};
  // The index's template wins: the converter stores null for bitnet.cpp's placeholder.
  return Tokenizer.fromHfJson(tokenizerJson, { ...tokenizerConfig, chat_template: header.chatTemplate });
}

function nativeSpec(config: ModelConfig, t: MappedTensors, maxContext: number): NativeModelSpec {
  const layers: NativeLayerSpec[] = [];
  for (let l = 0; l < config.layers; l++) {
    const byRole = new Map<TensorRole, string>(layerTensors(config, l).map((s) => [s.role, s.hfName]));
    const name = (role: TensorRole) => byRole.get(role)!;
    layers.push({
      attnNorm: t.f32(name('attn_norm')),
      q: t.ternary(name('q')),
      k: t.ternary(name('k')),
      v: t.ternary(name('v')),
      o: t.ternary(name('o')),
      attnSubNorm: config.subNorms ? t.f32(name('attn_sub_norm')) : undefined,
      ffnNorm: t.f32(name('ffn_norm')),
      gate: t.ternary(name('gate')),
      up: t.ternary(name('up')),
      down: t.ternary(name('down')),
      ffnSubNorm: config.subNorms ? t.f32(name('ffn_sub_norm')) : undefined,
    });
  }
  const embedding = t.f16('model.embed_tokens.weight');
  let head: NativeHeadSpec;
  if (t.has(LM_HEAD_INT8)) {
    const e = t.entry(LM_HEAD_INT8);
    head = { i8: t.i8(LM_HEAD_INT8), rowScale: t.f32(LM_HEAD_ROW_SCALE), cols: e.shape[1] };
    if (t.has(LM_HEAD_Q4)) {
      head = { ...head, q4: t.q4(LM_HEAD_Q4), q4RowScale: t.f32(LM_HEAD_Q4_ROW_SCALE), q4Cols: t.entry(LM_HEAD_Q4).shape[1] };
    }
  } else {
    head = { f16: config.tiedEmbeddings ? embedding : t.f16('lm_head.weight') };
  }
  return {
    dims: {
      hidden: config.hidden,
      intermediate: config.intermediate,
      layers: config.layers,
      heads: config.heads,
      kvHeads: config.kvHeads,
      headDim: config.headDim,
      vocab: config.vocab,
      ropeTheta: config.ropeTheta,
      rmsEps: config.rmsEps,
      activation: config.activation,
    },
    maxContext,
    embedding,
    finalNorm: t.f32('model.norm.weight'),
    layers,
    head,
  };
}

/** What decode reads for every token (see decodeReads). */
interface DecodeReads {
  lmHead: BitNetModel['lmHead'];
  /** Tensors read in full: the ternary planes and the LM head's rows (4-bit or int8 with their scales, or f16). */
  streamed: BitplaneTensorEntry[];
  /** Their bytes, plus for a 'q4' head the LM_HEAD_EXACT_ROWS int8 rows and scales it re-scores. */
  bytesPerToken: number;
}

function decodeReads(header: BitplaneHeader): DecodeReads {
  const index = new TensorIndex(header);
  const lmHead = index.has(LM_HEAD_Q4) ? 'q4' : index.has(LM_HEAD_INT8) ? 'int8' : 'f16';
  const headNames = lmHead === 'q4' ? [LM_HEAD_Q4, LM_HEAD_Q4_ROW_SCALE]
    : lmHead === 'int8' ? [LM_HEAD_INT8, LM_HEAD_ROW_SCALE]
    : [header.config.tiedEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight'];
  const streamed = [...header.tensors.filter((e) => e.kind === 'ternary-planes'), ...headNames.map((name) => index.entry(name))];
  const exactRows = lmHead === 'q4' ? Math.min(LM_HEAD_EXACT_ROWS, header.config.vocab) * (index.entry(LM_HEAD_INT8).shape[1] + 4) : 0;
  return { lmHead, streamed, bytesPerToken: exactRows + streamed.reduce((sum, e) => sum + e.byteLength, 0) };
}

/**
 * A BitNet b1.58 model ready to generate. Load once, then open one
 * {@link Session} per conversation; sessions run concurrently.
 */
export class BitNetModel implements SessionHost {
  readonly config: ModelConfig;
  readonly tokenizer: Tokenizer;
  /** Tokens that end generation: the tokenizer's EOS / end-of-turn and the config's eos ids. */
  readonly stopTokenIds: readonly number[];
  readonly runtime: Runtime;
  readonly nativeModel: NativeModel;
  readonly chatFormat: RenderChatOptions['format'];
  /** The bit-plane file the weights are mapped from. */
  readonly path: string;
  /** Format of the LM head: 4-bit re-scored from int8, int8 with row scales, or f16. */
  readonly lmHead: 'q4' | 'int8' | 'f16';
  /**
   * Bytes of weights read per decoded token: ternary planes + LM head (for a 'q4' head its 4-bit
   * rows and scales plus the LM_HEAD_EXACT_ROWS int8 rows and scales it recomputes).
   */
  readonly weightBytesPerToken: number;
  /** The model file in memory: mapped, or read in with `noMmap`. */
  private readonly fileMemory: ArrayBuffer;
  /** The tensors decode reads in full for every token. */
  private readonly streamed: readonly BitplaneTensorEntry[];

  private constructor(header: BitplaneHeader, buffer: ArrayBuffer, reads: DecodeReads, options: LoadOptions) {
    const tensors = new MappedTensors(header, buffer);
    this.fileMemory = buffer;
    this.config = header.config;
    this.path = header.path;
    const maxContext = options.maxContext ?? header.config.maxPositions;
    if (!Number.isInteger(maxContext) || maxContext < 1) throw new RangeError(`maxContext must be a positive integer, got ${maxContext}`);
    // The RoPE cos/sin tables cover every position up to maxContext.
    requireMemory(`a maximum context of ${maxContext} tokens`, maxContext * header.config.headDim * 4, 'use a smaller maxContext (--ctx)');
    this.tokenizer = loadTokenizer(tensors, header);
    this.stopTokenIds = [...new Set([...this.tokenizer.stopTokenIds, ...header.config.eosTokenIds])];
    this.runtime = new Runtime(options);
    this.nativeModel = new native.NativeModel(nativeSpec(header.config, tensors, maxContext));
    this.chatFormat = options.chatFormat ?? 'auto';
    this.lmHead = reads.lmHead;
    this.streamed = reads.streamed;
    this.weightBytesPerToken = reads.bytesPerToken;
  }

  /**
   * Loads a bit-plane model file (see docs/model-files.md). Throws a
   * ModelFileError naming the file and tensor when the file is not valid.
   */
  static async load(file: string, options: LoadOptions = {}): Promise<BitNetModel> {
    if (!isBitplaneFile(file)) {
      throw new ModelFileError(file, null, 'not a bitnet-gen model file; convert it first (see docs/model-files.md)');
    }
    const header = readBitplaneHeader(file);
    if (options.verify) verifyBitplaneChecksums(header);
    const reads = decodeReads(header);
    const streamed = reads.streamed.map((e): [number, number] => [e.offset, e.byteLength]);
    return new BitNetModel(header, await native.mapFile(file, options.noMmap ?? false, streamed), reads, options);
  }

  get vocab(): number {
    return this.config.vocab;
  }

  /**
   * The share of the weights decode reads for every token (the ternary planes and the LM head's
   * rows) that the OS maps with 2 MB pages, 0 to 1. Through 4 KB pages decode ran 14-32 % slower on
   * the VM of docs/kernels.md ("Weights in 2 MB pages"). Loading faults these weights in and
   * regroups them into 2 MB pages where it can: on Linux with a filesystem that caches large folios
   * (ext4 from 6.16, XFS), unless the file's cached pages are still being written back or are
   * mapped by another process. Null where the OS cannot tell (Linux before 6.7, other systems).
   */
  hugePageShare(): number | null {
    let huge = 0;
    for (const e of this.streamed) {
      const bytes = native.hugePageBytes(this.fileMemory, e.offset, e.byteLength);
      if (bytes === null) return null;
      huge += bytes;
    }
    return huge / this.streamed.reduce((sum, e) => sum + e.byteLength, 0);
  }

  /** The context a session gets by default. */
  get defaultContextSize(): number {
    return Math.min(4096, this.nativeModel.maxContext);
  }

  /** Opens a new conversation with its own KV cache. */
  createSession(options: SessionOptions = {}): Session {
    const contextSize = options.contextSize ?? this.defaultContextSize;
    const max = this.nativeModel.maxContext;
    if (!Number.isInteger(contextSize) || contextSize < 1 || contextSize > max) {
      throw new RangeError(`contextSize must be an integer in [1, ${max}], got ${contextSize}`);
    }
    const c = this.config;
    // f16 K and V for every layer and position.
    requireMemory(`a KV cache of ${contextSize} tokens`, c.layers * contextSize * c.kvHeads * c.headDim * 2 * 2,
      'use a smaller context (--ctx)');
    return new Session(this, contextSize);
  }
}
