/**
 * safetensors reader (single file and sharded) and streaming writer.
 * The reader only ever reads the header and the bytes of requested tensors with positional
 * reads, so multi-GB files are never loaded whole.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ModelFileError } from './errors';
import { readExactly, readTensorBytes, TensorBytes, writeAll, writeTensorBytes } from './file-io';

/** Element types this engine reads from safetensors files. */
export type SafetensorsDtype = 'BF16' | 'F16' | 'F32' | 'U8' | 'I8';

/** Bytes per element of each supported dtype. */
export const SAFETENSORS_DTYPE_SIZE: Record<SafetensorsDtype, number> = { BF16: 2, F16: 2, F32: 4, U8: 1, I8: 1 };

/** Largest JSON header accepted (the 2B4T header is ~40 KB; real files stay far below this). */
export const MAX_SAFETENSORS_HEADER_BYTES = 100 * 1024 * 1024;

/** One tensor's description from a safetensors header. */
export interface SafetensorsTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute file offset of the first byte. */
  offset: number;
  byteLength: number;
  /** File that holds the bytes. */
  file: string;
}

/** An open safetensors file: validated header plus positional access to tensor bytes. */
export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private readonly fd: number,
    readonly tensors: ReadonlyMap<string, SafetensorsTensor>,
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  /** Opens and validates `file`; throws ModelFileError naming the file, tensor and problem. */
  static open(file: string): SafetensorsFile {
    const fd = fs.openSync(file, 'r');
    try {
      const { tensors, metadata } = parseHeader(file, fd);
      return new SafetensorsFile(file, fd, tensors, metadata);
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
  }

  /** Reads the raw little-endian bytes of tensor `name`. */
  /** The tensor's bytes, or `length` of them from byte `start` of the tensor. */
  read(name: string, start = 0, length?: number): Uint8Array {
    return readTensorBytes(this.fd, this.path, name, this.tensors.get(name), start, length);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

function parseHeader(file: string, fd: number): { tensors: Map<string, SafetensorsTensor>; metadata: Record<string, string> } {
  const fileSize = fs.fstatSync(fd).size;
  if (fileSize < 8) throw new ModelFileError(file, null, `file is ${fileSize} bytes, too short for a safetensors header length`);
  const lengthBytes = readExactly(fd, file, null, 0, 8);
  const headerLength = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(fileSize - 8)) throw new ModelFileError(file, null, `header length ${headerLength} exceeds the ${fileSize - 8} bytes after it`);
  if (headerLength > BigInt(MAX_SAFETENSORS_HEADER_BYTES)) throw new ModelFileError(file, null, `header length ${headerLength} exceeds the ${MAX_SAFETENSORS_HEADER_BYTES}-byte limit`);
  const headerBytes = readExactly(fd, file, null, 8, Number(headerLength));
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (error) {
    throw new ModelFileError(file, null, `header is not valid UTF-8 JSON (${(error as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new ModelFileError(file, null, 'header is not a JSON object');

  const dataStart = 8 + Number(headerLength);
  const dataLength = fileSize - dataStart;
  const tensors = new Map<string, SafetensorsTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(file, entry);
      continue;
    }
    const tensor = parseEntry(file, name, entry, dataStart, dataLength);
    tensors.set(name, tensor);
  }
  const ordered = [...tensors.values()].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < ordered.length; i++) {
    const previous = ordered[i - 1];
    if (ordered[i].offset < previous.offset + previous.byteLength) {
      throw new ModelFileError(file, ordered[i].name, `bytes overlap tensor '${previous.name}'`);
    }
  }
  return { tensors, metadata };
}

function parseMetadata(file: string, entry: unknown): Record<string, string> {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new ModelFileError(file, null, '__metadata__ is not an object');
  for (const [key, value] of Object.entries(entry)) {
    if (typeof value !== 'string') throw new ModelFileError(file, null, `__metadata__ value '${key}' is not a string`);
  }
  return entry as Record<string, string>;
}

function parseEntry(file: string, name: string, entry: unknown, dataStart: number, dataLength: number): SafetensorsTensor {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new ModelFileError(file, name, 'header entry is not an object');
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (typeof dtype !== 'string' || !(dtype in SAFETENSORS_DTYPE_SIZE)) {
    throw new ModelFileError(file, name, `unsupported dtype '${String(dtype)}' (supported: ${Object.keys(SAFETENSORS_DTYPE_SIZE).join(', ')})`);
  }
  if (!Array.isArray(shape) || shape.some((d) => typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)) {
    throw new ModelFileError(file, name, `shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || offsets.some((d) => typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)) {
    throw new ModelFileError(file, name, `data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
  }
  const [begin, end] = offsets as number[];
  if (end < begin) throw new ModelFileError(file, name, `data_offsets end ${end} precedes begin ${begin}`);
  if (end > dataLength) throw new ModelFileError(file, name, `data_offsets end ${end} is past the end of the data section (${dataLength} bytes)`);
  const elementSize = SAFETENSORS_DTYPE_SIZE[dtype as SafetensorsDtype];
  // BigInt so that a hostile shape cannot overflow into a "matching" byte count.
  const expected = (shape as number[]).reduce((acc, d) => acc * BigInt(d), BigInt(elementSize));
  if (expected !== BigInt(end - begin)) {
    throw new ModelFileError(file, name, `shape ${JSON.stringify(shape)} x ${dtype} needs ${expected} bytes but data_offsets span ${end - begin}`);
  }
  return { name, dtype: dtype as SafetensorsDtype, shape: shape as number[], offset: dataStart + begin, byteLength: end - begin, file };
}

/**
 * A safetensors model that may be sharded: `model.safetensors`, or
 * `model.safetensors.index.json` naming shards in the same folder.
 */
export class SafetensorsModel {
  private constructor(
    readonly folder: string,
    private readonly files: SafetensorsFile[],
    readonly tensors: ReadonlyMap<string, SafetensorsTensor>,
  ) {}

  /** Opens the weights in `folder`; prefers the index when both layouts are present. */
  static open(folder: string): SafetensorsModel {
    const indexPath = path.join(folder, 'model.safetensors.index.json');
    const singlePath = path.join(folder, 'model.safetensors');
    let shardNames: string[];
    let weightMap: Record<string, string> | null = null;
    if (fs.existsSync(indexPath)) {
      weightMap = readWeightMap(indexPath);
      shardNames = [...new Set(Object.values(weightMap))].sort();
    } else if (fs.existsSync(singlePath)) shardNames = ['model.safetensors'];
    else throw new ModelFileError(folder, null, 'neither model.safetensors nor model.safetensors.index.json exists');

    const files: SafetensorsFile[] = [];
    try {
      const tensors = new Map<string, SafetensorsTensor>();
      for (const shard of shardNames) {
        const opened = SafetensorsFile.open(path.join(folder, shard));
        files.push(opened);
        for (const [name, tensor] of opened.tensors) {
          if (weightMap && weightMap[name] !== shard) continue;
          if (tensors.has(name)) throw new ModelFileError(opened.path, name, `tensor also present in ${tensors.get(name)!.file}`);
          tensors.set(name, tensor);
        }
      }
      if (weightMap) {
        for (const [name, shard] of Object.entries(weightMap)) {
          if (!tensors.has(name)) throw new ModelFileError(path.join(folder, shard), name, 'listed in model.safetensors.index.json but missing from the shard');
        }
      }
      return new SafetensorsModel(folder, files, tensors);
    } catch (error) {
      for (const f of files) f.close();
      throw error;
    }
  }

  /** Reads the raw bytes of tensor `name` from whichever shard holds it. */
  /** The tensor's bytes, or `length` of them from byte `start` of the tensor. */
  read(name: string, start = 0, length?: number): Uint8Array {
    const tensor = this.tensors.get(name);
    if (!tensor) throw new ModelFileError(this.folder, name, 'tensor not found');
    return this.files.find((f) => f.path === tensor.file)!.read(name, start, length);
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}

function readWeightMap(indexPath: string): Record<string, string> {
  let index: unknown;
  try {
    index = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
  } catch (error) {
    throw new ModelFileError(indexPath, null, `not valid JSON (${(error as Error).message})`);
  }
  const weightMap = (index as Record<string, unknown> | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) throw new ModelFileError(indexPath, null, "missing 'weight_map' object");
  for (const [name, shard] of Object.entries(weightMap)) {
    // Shards must be plain names in the same folder: never follow a path out of it.
    if (typeof shard !== 'string' || shard !== path.basename(shard) || shard === '..' || shard === '.' || shard === '') {
      throw new ModelFileError(indexPath, name, `shard '${String(shard)}' is not a file name in the model folder`);
    }
  }
  return weightMap as Record<string, string>;
}

/** A tensor to write: shape, dtype and a producer called once, in order, when its bytes are due. */
export interface SafetensorsWriteEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  bytes: () => TensorBytes;
}

/**
 * Streams tensors into a safetensors file. The header is built from the declared shapes, then
 * each producer is called and its bytes written, so only one tensor is in memory at a time.
 * The JSON header is space-padded to a multiple of 8 bytes, as the reference writer does.
 */
export function writeSafetensors(file: string, entries: SafetensorsWriteEntry[], metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const e of entries) {
    const length = e.shape.reduce((a, b) => a * b, SAFETENSORS_DTYPE_SIZE[e.dtype]);
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + length] };
    offset += length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((Buffer.byteLength(json) + 8) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length));
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, prefix);
    fs.writeSync(fd, headerBytes);
    for (const e of entries) {
      const written = writeTensorBytes(fd, e.bytes());
      const expected = (header[e.name] as { data_offsets: number[] }).data_offsets;
      if (written !== expected[1] - expected[0]) throw new Error(`writeSafetensors: '${e.name}' produced ${written} bytes, expected ${expected[1] - expected[0]}`);
    }
  } finally {
    fs.closeSync(fd);
  }
}
