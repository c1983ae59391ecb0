/**
 * GGUF v2/v3 reader and streaming writer.
 *
 * The reader parses the header with bounded positional reads, checks every count and offset
 * against the file size with BigInt arithmetic before trusting it, and computes each tensor's
 * byte size from its type so that truncated or overlapping tensors are caught at open time.
 */
import * as fs from 'fs';
import { ModelFileError } from './errors';
import { readExactly, readTensorBytes, TensorBytes, writeAll, writeTensorBytes } from './file-io';

/** GGUF metadata value type ids. */
export enum GgufValueType {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
}

/** A decoded metadata value. 64-bit integers are bigint; arrays keep their element type. */
export type GgufValue =
  | { type: Exclude<GgufValueType, GgufValueType.BOOL | GgufValueType.STRING | GgufValueType.ARRAY | GgufValueType.U64 | GgufValueType.I64>; value: number }
  | { type: GgufValueType.U64 | GgufValueType.I64; value: bigint }
  | { type: GgufValueType.BOOL; value: boolean }
  | { type: GgufValueType.STRING; value: string }
  | { type: GgufValueType.ARRAY; elementType: GgufValueType; value: GgufArrayItem[] };

/** An array element: a plain value, or for arrays of arrays the inner array as a GgufValue. */
export type GgufArrayItem = number | bigint | boolean | string | GgufValue;

/** ggml tensor type ids used by BitNet files (ids 36-39 are bitnet.cpp's, see TL2/MXFP4 note). */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  I2_S = 36,
  TL1 = 38,
  /** bitnet.cpp TL2 in bitnet.cpp files; upstream ggml uses 39 for MXFP4. */
  TL2_OR_MXFP4 = 39,
}

interface BlockLayout {
  name: string;
  blockElements: number;
  blockBytes: number;
}

// Types whose byte sizes are known, so files holding them can be validated even where this
// engine cannot decode them (a Q6_K embedding is recognized; decoding it is a separate matter).
const BLOCK_LAYOUTS: ReadonlyMap<number, BlockLayout> = new Map([
  [GgmlType.F32, { name: 'F32', blockElements: 1, blockBytes: 4 }],
  [GgmlType.F16, { name: 'F16', blockElements: 1, blockBytes: 2 }],
  [GgmlType.Q4_0, { name: 'Q4_0', blockElements: 32, blockBytes: 18 }],
  [GgmlType.Q4_1, { name: 'Q4_1', blockElements: 32, blockBytes: 20 }],
  [GgmlType.Q5_0, { name: 'Q5_0', blockElements: 32, blockBytes: 22 }],
  [GgmlType.Q5_1, { name: 'Q5_1', blockElements: 32, blockBytes: 24 }],
  [GgmlType.Q8_0, { name: 'Q8_0', blockElements: 32, blockBytes: 34 }],
  [GgmlType.Q8_1, { name: 'Q8_1', blockElements: 32, blockBytes: 36 }],
  [GgmlType.Q2_K, { name: 'Q2_K', blockElements: 256, blockBytes: 84 }],
  [GgmlType.Q3_K, { name: 'Q3_K', blockElements: 256, blockBytes: 110 }],
  [GgmlType.Q4_K, { name: 'Q4_K', blockElements: 256, blockBytes: 144 }],
  [GgmlType.Q5_K, { name: 'Q5_K', blockElements: 256, blockBytes: 176 }],
  [GgmlType.Q6_K, { name: 'Q6_K', blockElements: 256, blockBytes: 210 }],
  [GgmlType.Q8_K, { name: 'Q8_K', blockElements: 256, blockBytes: 292 }],
  [GgmlType.I8, { name: 'I8', blockElements: 1, blockBytes: 1 }],
  [GgmlType.I16, { name: 'I16', blockElements: 1, blockBytes: 2 }],
  [GgmlType.I32, { name: 'I32', blockElements: 1, blockBytes: 4 }],
  [GgmlType.I64, { name: 'I64', blockElements: 1, blockBytes: 8 }],
  [GgmlType.F64, { name: 'F64', blockElements: 1, blockBytes: 8 }],
  [GgmlType.BF16, { name: 'BF16', blockElements: 1, blockBytes: 2 }],
  [GgmlType.TQ1_0, { name: 'TQ1_0', blockElements: 256, blockBytes: 54 }],
  [GgmlType.TQ2_0, { name: 'TQ2_0', blockElements: 256, blockBytes: 66 }],
]);

const MXFP4: BlockLayout = { name: 'MXFP4', blockElements: 32, blockBytes: 17 };

/** Bytes after the packed I2_S codes: the f32 scale and padding to 32 bytes. */
export const I2S_TAIL_BYTES = 32;
/** Elements per I2_S block (the canonical x86 128/32 layout). */
export const I2S_BLOCK_ELEMENTS = 128;

/** Limits from ggml: tensor names < 64 bytes plus NUL, at most 4 dims, keys <= 65535 bytes. */
export const GGUF_MAX_NAME_BYTES = 64;
export const GGUF_MAX_DIMS = 4;
export const GGUF_MAX_KEY_BYTES = 65535;
/** Nesting bound for array-of-array metadata, so hostile files cannot exhaust the stack. */
export const GGUF_MAX_ARRAY_DEPTH = 8;
/** Largest general.alignment accepted. */
export const GGUF_MAX_ALIGNMENT = 1 << 20;

/** Architectures written by bitnet.cpp, in whose files type 39 means TL2. */
const BITNET_CPP_ARCHITECTURES = new Set(['bitnet-25', 'bitnet-b1.58']);

/** One tensor's description from a GGUF header, validated against the file. */
export interface GgufTensorInfo {
  name: string;
  /** ggml dims, ne0 (contiguous) first. */
  dims: number[];
  type: number;
  typeName: string;
  /** Absolute file offset of the first byte. */
  offset: number;
  byteLength: number;
  elementCount: number;
}

/** Human-readable name of a ggml type id given the file's architecture. */
export function ggmlTypeName(type: number, architecture: string | undefined): string {
  if (type === GgmlType.I2_S) return 'I2_S';
  if (type === GgmlType.TL1) return 'TL1';
  if (type === GgmlType.TL2_OR_MXFP4) return architecture !== undefined && BITNET_CPP_ARCHITECTURES.has(architecture) ? 'TL2' : 'MXFP4';
  return BLOCK_LAYOUTS.get(type)?.name ?? `unknown type ${type}`;
}

/**
 * Byte size of a tensor of `type` with `dims`, or an error string. Uses BigInt so that a hostile
 * header cannot overflow into a plausible size.
 */
export function ggmlTensorBytes(type: number, dims: readonly bigint[], architecture: string | undefined): bigint | string {
  const elements = dims.reduce((a, b) => a * b, 1n);
  const name = ggmlTypeName(type, architecture);
  if (type === GgmlType.I2_S) {
    if (elements % BigInt(I2S_BLOCK_ELEMENTS) !== 0n) return `I2_S needs a multiple of ${I2S_BLOCK_ELEMENTS} elements, got ${elements}`;
    return elements / 4n + BigInt(I2S_TAIL_BYTES);
  }
  if (name === 'TL1' || name === 'TL2') return `type ${name} (${type}) is a bitnet.cpp lookup-table format tied to one kernel tiling; convert the model to I2_S`;
  const layout = name === 'MXFP4' ? MXFP4 : BLOCK_LAYOUTS.get(type);
  if (!layout) return `unsupported ggml type ${type}`;
  const ne0 = dims[0] ?? 1n;
  if (ne0 % BigInt(layout.blockElements) !== 0n) return `${name} needs ne0 to be a multiple of ${layout.blockElements}, got ${ne0}`;
  return (elements / BigInt(layout.blockElements)) * BigInt(layout.blockBytes);
}

/** An open, validated GGUF file with positional access to tensor bytes. */
export class GgufFile {
  private constructor(
    readonly path: string,
    private readonly fd: number,
    readonly version: number,
    readonly alignment: number,
    readonly metadata: ReadonlyMap<string, GgufValue>,
    readonly tensors: ReadonlyMap<string, GgufTensorInfo>,
    /** Absolute offset of the tensor-data section. */
    readonly dataStart: number,
  ) {}

  /** Opens and validates `file`; throws ModelFileError naming the file, tensor and problem. */
  static open(file: string): GgufFile {
    const fd = fs.openSync(file, 'r');
    try {
      const parsed = new HeaderParser(file, fd).parse();
      return new GgufFile(file, fd, parsed.version, parsed.alignment, parsed.metadata, parsed.tensors, parsed.dataStart);
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
  }

  /** The plain JS value of metadata `key` (bigint for 64-bit integers), or undefined. */
  get(key: string): unknown {
    return this.metadata.get(key)?.value;
  }

  /** general.architecture, or undefined. */
  get architecture(): string | undefined {
    const arch = this.get('general.architecture');
    return typeof arch === 'string' ? arch : undefined;
  }

  /** Reads the raw bytes of tensor `name`. */
  /** The tensor's bytes, or `length` of them from byte `start` of the tensor. */
  read(name: string, start = 0, length?: number): Uint8Array {
    return readTensorBytes(this.fd, this.path, name, this.tensors.get(name), start, length);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

const WINDOW_BYTES = 1 << 20;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Sequential little-endian reader over a file, refilled in windows with positional reads. */
class HeaderParser {
  private window = new Uint8Array(0);
  private view = new DataView(this.window.buffer);
  private windowStart = 0;
  private position = 0;
  private readonly fileSize: number;
  private context = 'header';

  constructor(
    private readonly file: string,
    private readonly fd: number,
  ) {
    this.fileSize = fs.fstatSync(fd).size;
  }

  parse(): { version: number; alignment: number; metadata: Map<string, GgufValue>; tensors: Map<string, GgufTensorInfo>; dataStart: number } {
    this.context = 'magic';
    const magic = this.bytes(4);
    if (Buffer.from(magic).toString('latin1') !== 'GGUF') throw this.error(`bad magic ${Buffer.from(magic).toString('hex')}, expected 47475546 ("GGUF")`);
    this.context = 'version';
    const version = this.u32();
    if (version === 0x03000000 || version === 0x02000000) throw this.error('big-endian GGUF files are not supported');
    if (version !== 2 && version !== 3) throw this.error(`unsupported GGUF version ${version} (supported: 2, 3)`);
    this.context = 'tensor count';
    const tensorCount = this.count(32n, 'tensor_count');
    this.context = 'metadata count';
    const kvCount = this.count(13n, 'metadata_kv_count');

    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < kvCount; i++) {
      this.context = `metadata entry ${i}`;
      const key = this.string(GGUF_MAX_KEY_BYTES, 'key');
      this.context = `metadata '${key}'`;
      if (metadata.has(key)) throw this.error('duplicate key');
      metadata.set(key, this.value(this.u32(), 0));
    }
    const architecture = metadata.get('general.architecture')?.value;
    const arch = typeof architecture === 'string' ? architecture : undefined;
    const alignment = this.alignment(metadata.get('general.alignment'));

    const raw: { name: string; dims: bigint[]; type: number; relative: bigint }[] = [];
    const names = new Set<string>();
    for (let i = 0; i < tensorCount; i++) {
      this.context = `tensor info ${i}`;
      const name = this.string(GGUF_MAX_NAME_BYTES, 'tensor name');
      this.context = `tensor info '${name}'`;
      if (names.has(name)) throw new ModelFileError(this.file, name, 'duplicate tensor name');
      names.add(name);
      const nDims = this.u32();
      if (nDims < 1 || nDims > GGUF_MAX_DIMS) throw new ModelFileError(this.file, name, `n_dims ${nDims} outside 1..${GGUF_MAX_DIMS}`);
      const dims: bigint[] = [];
      for (let d = 0; d < nDims; d++) dims.push(this.u64());
      raw.push({ name, dims, type: this.u32(), relative: this.u64() });
    }
    const dataStart = alignUp(this.position, alignment);
    if (dataStart > this.fileSize) throw new ModelFileError(this.file, null, `tensor data section would start at ${dataStart}, past the end of the ${this.fileSize}-byte file`);

    const tensors = new Map<string, GgufTensorInfo>();
    for (const t of raw) tensors.set(t.name, this.tensorInfo(t, arch, alignment, dataStart));
    const ordered = [...tensors.values()].sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < ordered.length; i++) {
      const previous = ordered[i - 1];
      if (ordered[i].offset < previous.offset + previous.byteLength) throw new ModelFileError(this.file, ordered[i].name, `bytes overlap tensor '${previous.name}'`);
    }
    return { version, alignment, metadata, tensors, dataStart };
  }

  private tensorInfo(t: { name: string; dims: bigint[]; type: number; relative: bigint }, arch: string | undefined, alignment: number, dataStart: number): GgufTensorInfo {
    let elements = 1n;
    for (const d of t.dims) {
      elements *= d;
      // Any real tensor fits in the file; checking the running product keeps BigInts small.
      if (elements > BigInt(this.fileSize) * 8n && d !== 0n) throw new ModelFileError(this.file, t.name, `element count of dims [${t.dims.join(', ')}] exceeds what a ${this.fileSize}-byte file can hold`);
    }
    const size = ggmlTensorBytes(t.type, t.dims, arch);
    const typeName = ggmlTypeName(t.type, arch);
    if (typeof size === 'string') throw new ModelFileError(this.file, t.name, size);
    if (t.relative % BigInt(alignment) !== 0n) throw new ModelFileError(this.file, t.name, `offset ${t.relative} is not a multiple of the alignment ${alignment}`);
    const end = BigInt(dataStart) + t.relative + size;
    if (end > BigInt(this.fileSize)) throw new ModelFileError(this.file, t.name, `${typeName} data [${BigInt(dataStart) + t.relative}, ${end}) extends past the end of the ${this.fileSize}-byte file`);
    return {
      name: t.name,
      dims: t.dims.map(Number),
      type: t.type,
      typeName,
      offset: dataStart + Number(t.relative),
      byteLength: Number(size),
      elementCount: Number(elements),
    };
  }

  private alignment(value: GgufValue | undefined): number {
    if (value === undefined) return 32;
    this.context = "metadata 'general.alignment'";
    const n = typeof value.value === 'bigint' ? Number(value.value) : value.value;
    if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0 || n % 8 !== 0 || n > GGUF_MAX_ALIGNMENT) {
      throw this.error(`general.alignment ${String(value.value)} is not a positive multiple of 8 up to ${GGUF_MAX_ALIGNMENT}`);
    }
    return n;
  }

  private value(type: number, depth: number): GgufValue {
    switch (type) {
      case GgufValueType.U8:
        return { type, value: this.bytes(1)[0] };
      case GgufValueType.I8:
        return { type, value: this.scalar(1, (v, o) => v.getInt8(o)) };
      case GgufValueType.U16:
        return { type, value: this.scalar(2, (v, o) => v.getUint16(o, true)) };
      case GgufValueType.I16:
        return { type, value: this.scalar(2, (v, o) => v.getInt16(o, true)) };
      case GgufValueType.U32:
        return { type, value: this.u32() };
      case GgufValueType.I32:
        return { type, value: this.scalar(4, (v, o) => v.getInt32(o, true)) };
      case GgufValueType.F32:
        return { type, value: this.scalar(4, (v, o) => v.getFloat32(o, true)) };
      case GgufValueType.BOOL: {
        const b = this.bytes(1)[0];
        if (b > 1) throw this.error(`bool value ${b} is neither 0 nor 1`);
        return { type, value: b === 1 };
      }
      case GgufValueType.STRING:
        return { type, value: this.string(Number.MAX_SAFE_INTEGER, 'string value') };
      case GgufValueType.U64:
        return { type, value: this.u64() };
      case GgufValueType.I64:
        return { type, value: this.scalar(8, (v, o) => v.getBigInt64(o, true)) };
      case GgufValueType.F64:
        return { type, value: this.scalar(8, (v, o) => v.getFloat64(o, true)) };
      case GgufValueType.ARRAY: {
        if (depth >= GGUF_MAX_ARRAY_DEPTH) throw this.error(`arrays nested deeper than ${GGUF_MAX_ARRAY_DEPTH}`);
        const elementType = this.u32();
        if (elementType > GgufValueType.F64) throw this.error(`unknown array element type ${elementType}`);
        // Every element takes at least one byte (strings and arrays at least eight).
        const minBytes = elementType === GgufValueType.STRING || elementType === GgufValueType.ARRAY ? 8n : 1n;
        const count = this.count(minBytes, 'array length');
        const values: GgufArrayItem[] = new Array(count);
        for (let i = 0; i < count; i++) {
          const item = this.value(elementType, depth + 1);
          values[i] = elementType === GgufValueType.ARRAY ? item : (item.value as GgufArrayItem);
        }
        return { type, elementType, value: values };
      }
      default:
        throw this.error(`unknown metadata value type ${type}`);
    }
  }

  /** A u64 count bounded by how many items of `minBytes` the rest of the file could hold. */
  private count(minBytes: bigint, what: string): number {
    const n = this.u64();
    if (n * minBytes > BigInt(this.fileSize - this.position)) throw this.error(`${what} ${n} cannot fit in the remaining ${this.fileSize - this.position} bytes`);
    return Number(n);
  }

  private string(maxBytes: number, what: string): string {
    const length = this.u64();
    if (length > BigInt(maxBytes)) throw this.error(`${what} length ${length} exceeds the limit of ${maxBytes} bytes`);
    if (length > BigInt(this.fileSize - this.position)) throw this.error(`${what} length ${length} runs past the end of the file`);
    const bytes = this.bytes(Number(length));
    try {
      return UTF8.decode(bytes);
    } catch {
      throw this.error(`${what} is not valid UTF-8`);
    }
  }

  private u32(): number {
    return this.scalar(4, (v, o) => v.getUint32(o, true));
  }

  private u64(): bigint {
    return this.scalar(8, (v, o) => v.getBigUint64(o, true));
  }

  private scalar<T>(size: number, get: (view: DataView, offset: number) => T): T {
    this.ensure(size);
    const value = get(this.view, this.position - this.windowStart);
    this.position += size;
    return value;
  }

  private bytes(size: number): Uint8Array {
    if (size > WINDOW_BYTES) {
      this.ensureAvailable(size);
      const out = readExactly(this.fd, this.file, null, this.position, size);
      this.position += size;
      return out;
    }
    this.ensure(size);
    const offset = this.position - this.windowStart;
    this.position += size;
    return this.window.subarray(offset, offset + size);
  }

  private ensure(size: number): void {
    if (this.position + size <= this.windowStart + this.window.length) return;
    this.ensureAvailable(size);
    const length = Math.min(WINDOW_BYTES, this.fileSize - this.position);
    this.window = readExactly(this.fd, this.file, null, this.position, length).slice();
    this.view = new DataView(this.window.buffer);
    this.windowStart = this.position;
  }

  private ensureAvailable(size: number): void {
    if (this.position + size > this.fileSize) throw this.error(`file truncated: needs ${size} bytes at offset ${this.position} but the file is ${this.fileSize} bytes`);
  }

  private error(problem: string): ModelFileError {
    return new ModelFileError(this.file, null, `${this.context}: ${problem}`);
  }
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/** A tensor to write: its dims (ne0 first), type, and a producer called once when due. */
export interface GgufWriteTensor {
  name: string;
  dims: number[];
  type: number;
  bytes: () => TensorBytes;
}

/**
 * Streams a GGUF v3 file: header, metadata, tensor infos, then each tensor's bytes padded to
 * `alignment` (default 32; written as general.alignment only when it differs).
 * @param metadata ordered key/value pairs
 */
export function writeGguf(file: string, metadata: [string, GgufValue][], tensors: GgufWriteTensor[], alignment = 32): void {
  const out = new ByteSink();
  out.raw(Buffer.from('GGUF', 'latin1'));
  out.u32(3);
  out.u64(BigInt(tensors.length));
  const entries = alignment === 32 ? metadata : [...metadata, ['general.alignment', { type: GgufValueType.U32, value: alignment }] as [string, GgufValue]];
  out.u64(BigInt(entries.length));
  for (const [key, value] of entries) {
    out.string(key);
    out.u32(value.type);
    out.value(value);
  }
  const sizes: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    const size = ggmlTensorBytes(t.type, t.dims.map(BigInt), undefined);
    if (typeof size === 'string') throw new Error(`writeGguf: '${t.name}': ${size}`);
    out.string(t.name);
    out.u32(t.dims.length);
    for (const d of t.dims) out.u64(BigInt(d));
    out.u32(t.type);
    out.u64(BigInt(offset));
    sizes.push(Number(size));
    offset = alignUp(offset + Number(size), alignment);
  }
  out.pad(alignment);
  const fd = fs.openSync(file, 'w');
  try {
    writeAll(fd, out.finish());
    tensors.forEach((t, i) => {
      const written = writeTensorBytes(fd, t.bytes());
      if (written !== sizes[i]) throw new Error(`writeGguf: '${t.name}' produced ${written} bytes, expected ${sizes[i]}`);
      if (i + 1 < tensors.length) writeAll(fd, new Uint8Array(alignUp(sizes[i], alignment) - sizes[i]));
    });
  } finally {
    fs.closeSync(fd);
  }
}

/** Growable little-endian byte buffer for the header. */
class ByteSink {
  private chunks: Uint8Array[] = [];
  private length = 0;

  raw(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  private fixed(size: number, set: (view: DataView) => void): void {
    const bytes = new Uint8Array(size);
    set(new DataView(bytes.buffer));
    this.raw(bytes);
  }

  u32(v: number): void {
    this.fixed(4, (d) => d.setUint32(0, v, true));
  }

  u64(v: bigint): void {
    this.fixed(8, (d) => d.setBigUint64(0, v, true));
  }

  string(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    this.u64(BigInt(bytes.length));
    this.raw(bytes);
  }

  value(v: GgufValue): void {
    if (v.type !== GgufValueType.ARRAY) return this.scalar(v.type, v.value);
    this.u32(v.elementType);
    this.u64(BigInt(v.value.length));
    for (const item of v.value) {
      if (v.elementType === GgufValueType.ARRAY) this.value(item as GgufValue);
      else this.scalar(v.elementType, item as number | bigint | boolean | string);
    }
  }

  private scalar(type: GgufValueType, value: number | bigint | boolean | string): void {
    switch (type) {
      case GgufValueType.U8:
        return this.fixed(1, (d) => d.setUint8(0, value as number));
      case GgufValueType.I8:
        return this.fixed(1, (d) => d.setInt8(0, value as number));
      case GgufValueType.U16:
        return this.fixed(2, (d) => d.setUint16(0, value as number, true));
      case GgufValueType.I16:
        return this.fixed(2, (d) => d.setInt16(0, value as number, true));
      case GgufValueType.U32:
        return this.u32(value as number);
      case GgufValueType.I32:
        return this.fixed(4, (d) => d.setInt32(0, value as number, true));
      case GgufValueType.F32:
        return this.fixed(4, (d) => d.setFloat32(0, value as number, true));
      case GgufValueType.BOOL:
        return this.fixed(1, (d) => d.setUint8(0, value ? 1 : 0));
      case GgufValueType.STRING:
        return this.string(value as string);
      case GgufValueType.U64:
        return this.u64(value as bigint);
      case GgufValueType.I64:
        return this.fixed(8, (d) => d.setBigInt64(0, value as bigint, true));
      case GgufValueType.F64:
        return this.fixed(8, (d) => d.setFloat64(0, value as number, true));
      default:
        throw new Error(`writeGguf: value type ${type} is not a scalar`);
    }
  }

  pad(alignment: number): void {
    this.raw(new Uint8Array(alignUp(this.length, alignment) - this.length));
  }

  finish(): Uint8Array {
    return Buffer.concat(this.chunks);
  }
}
