/**
 * Shared helpers for model-file tests: the cached tiny synthetic model, scratch folders, a raw
 * GGUF byte builder that can express invalid headers, and rewriters that copy a valid model
 * file while changing one thing.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ModelFileError } from '../../src/formats/errors';
import { GgufFile, GgufValue, GgufWriteTensor, writeGguf } from '../../src/formats/gguf';
import { SafetensorsFile, writeSafetensors } from '../../src/formats/safetensors';
import { ensureSyntheticModel, SynthModel } from '../../src/synth/generate';

/** The tiny synthetic model (seed 1) in every format, generated once into the repo cache. */
export function tinyModel(): SynthModel {
  return ensureSyntheticModel({ preset: 'tiny', seed: 1 });
}

/** A fresh scratch folder under the OS temp dir. */
export function scratchDir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `bitnet-${label}-`));
}

/** Runs `action` and returns the ModelFileError it throws (failing the test otherwise). */
export function modelFileError(action: () => unknown): ModelFileError {
  try {
    action();
  } catch (error) {
    if (error instanceof ModelFileError) return error;
    throw new Error(`expected a ModelFileError, got ${(error as Error)?.stack ?? String(error)}`);
  }
  throw new Error('expected a ModelFileError, but the call succeeded');
}

/** Little-endian byte builder for hand-made (possibly invalid) GGUF headers. */
export class RawBytes {
  private parts: Buffer[] = [];

  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    return this.push(b);
  }

  u64(v: bigint | number): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    return this.push(b);
  }

  str(s: string): this {
    const bytes = Buffer.from(s, 'utf8');
    return this.u64(bytes.length).push(bytes);
  }

  push(b: Uint8Array): this {
    this.parts.push(Buffer.from(b));
    return this;
  }

  /** Zero bytes up to the next multiple of `alignment`. */
  pad(alignment: number): this {
    const length = this.length;
    return this.push(Buffer.alloc((alignment - (length % alignment)) % alignment));
  }

  get length(): number {
    return this.parts.reduce((a, b) => a + b.length, 0);
  }

  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** A tensor info for rawGguf. */
export interface RawTensorInfo {
  name: string;
  dims: (bigint | number)[];
  type: number;
  offset: bigint | number;
}

/**
 * A GGUF with one string metadata entry (general.architecture = `arch`), the given tensor
 * infos, and `data` as the tensor-data section (alignment 32).
 */
export function rawGguf(tensors: RawTensorInfo[], data: Uint8Array, arch = 'bitnet'): Buffer {
  const raw = new RawBytes().push(Buffer.from('GGUF')).u32(3).u64(tensors.length).u64(1);
  raw.str('general.architecture').u32(8).str(arch);
  for (const t of tensors) {
    raw.str(t.name).u32(t.dims.length);
    for (const d of t.dims) raw.u64(d);
    raw.u32(t.type).u64(t.offset);
  }
  return raw.pad(32).push(data).build();
}

/** Writes `bytes` to `name` inside `dir` and returns the path. */
export function writeFile(dir: string, name: string, bytes: Uint8Array | string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

/** Edits applied by rewriteGguf. */
export interface GgufEdits {
  /** Replace or drop (return undefined) a metadata value. */
  metadata?: (key: string, value: GgufValue) => GgufValue | undefined;
  /** Replace a tensor's bytes. */
  tensorBytes?: (name: string, bytes: Uint8Array) => Uint8Array;
  /** Drop tensors. */
  dropTensor?: (name: string) => boolean;
  /** Tensors appended after the existing ones. */
  extraTensors?: GgufWriteTensor[];
}

/** Copies a GGUF file to `target`, applying `edits`. */
export function rewriteGguf(source: string, target: string, edits: GgufEdits): string {
  const gguf = GgufFile.open(source);
  try {
    const metadata: [string, GgufValue][] = [];
    for (const [key, value] of gguf.metadata) {
      const edited = edits.metadata ? edits.metadata(key, value) : value;
      if (edited !== undefined) metadata.push([key, edited]);
    }
    const tensors = [...gguf.tensors.values()]
      .filter((t) => !edits.dropTensor?.(t.name))
      .map((t) => ({ name: t.name, dims: t.dims, type: t.type, bytes: () => (edits.tensorBytes ? edits.tensorBytes(t.name, gguf.read(t.name)) : gguf.read(t.name)) }));
    writeGguf(target, metadata, [...tensors, ...(edits.extraTensors ?? [])], gguf.alignment);
  } finally {
    gguf.close();
  }
  return target;
}

/** Copies an HF model folder to `target`, replacing the bytes of tensors via `edit`. */
export function rewriteHfFolder(source: string, target: string, edit: (name: string, bytes: Uint8Array) => Uint8Array): string {
  fs.cpSync(source, target, { recursive: true });
  const file = path.join(target, 'model.safetensors');
  const st = SafetensorsFile.open(path.join(source, 'model.safetensors'));
  try {
    const entries = [...st.tensors.values()].sort((a, b) => a.offset - b.offset).map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: () => edit(t.name, st.read(t.name)) }));
    writeSafetensors(file, entries);
  } finally {
    st.close();
  }
  return target;
}
