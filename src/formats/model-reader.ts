/**
 * Opens a BitNet model in any supported source format and presents it in one logical form:
 * a ModelConfig, the architecture's tensor list, ternary matrices with their β, and f32 norms
 * and embeddings. Every expected tensor is checked for presence, dtype and shape at open time.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ConfigOverrides, configFromGguf, configFromHf, hfQuantization, HfQuantization, ModelConfig, ModelConfigError, modelTensors, TensorSpec, ggufDims } from '../model/architecture';
import { ModelFileError, TensorLocation } from './errors';
import { bf16BytesToF32, f16BytesToF32, f32BytesToF32 } from './float16';
import { GgmlType, GgufFile, GgufTensorInfo } from './gguf';
import { SafetensorsModel, SafetensorsTensor } from './safetensors';
import { betaFromWeightScale, checkScale, decodeHfPacked, decodeI2S, decodeTQ1_0, decodeTQ2_0, TernaryMatrix, ternarizeAbsmean } from './ternary-codecs';

// Math/Number members are bound once: global lookups inside hot loops are slow in VM contexts (jest).
const isFiniteNumber = Number.isFinite;

/** Which container a model came from. */
export type SourceFormat = 'hf-safetensors' | 'gguf';

/** A model opened for reading, independent of its on-disk format. */
export interface ModelSource {
  /** The folder (HF) or file (GGUF) that was opened. */
  path: string;
  format: SourceFormat;
  config: ModelConfig;
  /** The architecture's tensors, in file order. */
  tensors: TensorSpec[];
  /** Decodes a ternary tensor to its logical matrix and β. */
  readTernary(spec: TensorSpec): TernaryMatrix;
  /** Decodes a norm or embedding tensor to f32, in logical row-major order. */
  readFloat(spec: TensorSpec): Float32Array;
  /** Decodes rows [first, first + count) of a float tensor (rows = the first dimension), reading only those bytes. */
  readFloatRows(spec: TensorSpec, first: number, count: number): Float32Array;
  close(): void;
}

/**
 * Opens `target`: a folder holding config.json + safetensors, or a .gguf file.
 * @param overrides force activation/sub-norm choices (default: inferred from the files)
 */
export function openModel(target: string, overrides: ConfigOverrides = {}): ModelSource {
  if (fs.statSync(target).isDirectory()) return openHf(target, overrides);
  return openGguf(target, overrides);
}

/** Bytes per element of the float dtypes the readers accept. */
function floatElementBytes(dtype: string): number {
  return dtype === 'F32' ? 4 : 2;
}

/**
 * readFloat and readFloatRows over one tensor lookup: `locate` finds the
 * tensor's dtype and a reader of byte ranges of it.
 */
function floatReaders(
  locate: (spec: TensorSpec) => { dtype: string; where: TensorLocation; read: (start: number, length: number) => Uint8Array },
): Pick<ModelSource, 'readFloat' | 'readFloatRows'> {
  const readFloatRows = (spec: TensorSpec, first: number, count: number): Float32Array => {
    const t = locate(spec);
    const rowBytes = (spec.shape.slice(1).reduce((a, b) => a * b, 1)) * floatElementBytes(t.dtype);
    return floatsFromBytes(t.dtype, t.read(first * rowBytes, count * rowBytes), t.where);
  };
  return { readFloatRows, readFloat: (spec) => readFloatRows(spec, 0, spec.shape[0]) };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function floatsFromBytes(dtype: string, bytes: Uint8Array, where: TensorLocation): Float32Array {
  const values = dtype === 'BF16' ? bf16BytesToF32(bytes) : dtype === 'F16' ? f16BytesToF32(bytes) : f32BytesToF32(bytes);
  for (let i = 0; i < values.length; i++) {
    if (!isFiniteNumber(values[i])) throw new ModelFileError(where.file, where.tensor, `value ${values[i]} at element ${i} is not finite`);
  }
  return values;
}

const HF_FLOAT_DTYPES = new Set(['BF16', 'F16', 'F32']);

function openHf(folder: string, overrides: ConfigOverrides): ModelSource {
  const configPath = path.join(folder, 'config.json');
  const json = readJson(configPath);
  const generationPath = path.join(folder, 'generation_config.json');
  const generation = fs.existsSync(generationPath) ? readJson(generationPath) : undefined;
  let config: ModelConfig;
  try {
    config = configFromHf(json, configPath, overrides, generation);
  } catch (error) {
    if (error instanceof ModelConfigError) throw new ModelFileError(configPath, null, error.message.slice(configPath.length + 2));
    throw error;
  }
  const quantization = hfQuantization(json);
  const weights = SafetensorsModel.open(folder);
  try {
    const tensors = modelTensors(config);
    const stored = new Map<string, SafetensorsTensor>();
    for (const spec of tensors) stored.set(spec.hfName, checkHfTensor(weights, spec, folder));
    const lookup = (spec: TensorSpec): SafetensorsTensor => {
      const t = stored.get(spec.hfName);
      if (!t) throw new ModelFileError(folder, spec.hfName, 'not a tensor of this model');
      return t;
    };
    return {
      path: folder,
      format: 'hf-safetensors',
      config,
      tensors,
      readTernary: (spec) => readHfTernary(weights, lookup(spec), spec, quantization),
      ...floatReaders((spec) => {
        const t = lookup(spec);
        return { dtype: t.dtype, where: { file: t.file, tensor: t.name }, read: (start, length) => weights.read(t.name, start, length) };
      }),
      close: () => weights.close(),
    };
  } catch (error) {
    weights.close();
    throw error;
  }
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ModelFileError(file, null, `cannot read JSON (${(error as Error).message})`);
  }
}

function checkHfTensor(weights: SafetensorsModel, spec: TensorSpec, folder: string): SafetensorsTensor {
  const name = [spec.hfName, ...spec.hfAliases].find((n) => weights.tensors.has(n));
  if (name === undefined) throw new ModelFileError(folder, spec.hfName, 'tensor missing');
  const t = weights.tensors.get(name)!;
  if (spec.kind === 'ternary' && t.dtype === 'U8') {
    const packedShape = [spec.shape[0] / 4, spec.shape[1]];
    if (!sameShape(t.shape, packedShape)) throw new ModelFileError(t.file, name, `packed shape [${t.shape}] does not match [${packedShape}] (logical [${spec.shape}] from the config)`);
    const scaleName = name.replace(/\.weight$/, '.weight_scale');
    const scale = weights.tensors.get(scaleName);
    if (!scale) throw new ModelFileError(t.file, scaleName, 'weight_scale missing for a packed ternary tensor');
    if (!HF_FLOAT_DTYPES.has(scale.dtype) || scale.shape.reduce((a, b) => a * b, 1) !== 1) throw new ModelFileError(scale.file, scaleName, `weight_scale must be one float, got ${scale.dtype} [${scale.shape}]`);
    return t;
  }
  if (!HF_FLOAT_DTYPES.has(t.dtype)) throw new ModelFileError(t.file, name, `dtype ${t.dtype} is not valid for a ${spec.kind} tensor`);
  if (!sameShape(t.shape, spec.shape)) throw new ModelFileError(t.file, name, `shape [${t.shape}] does not match [${spec.shape}] from the config`);
  return t;
}

function readHfTernary(weights: SafetensorsModel, t: SafetensorsTensor, spec: TensorSpec, quantization: HfQuantization): TernaryMatrix {
  const where = { file: t.file, tensor: t.name };
  const [rows, cols] = spec.shape;
  if (t.dtype !== 'U8') return ternarizeAbsmean(floatsFromBytes(t.dtype, weights.read(t.name), where), rows, cols, where);
  const scaleName = t.name.replace(/\.weight$/, '.weight_scale');
  const scaleTensor = weights.tensors.get(scaleName)!;
  const [rawScale] = floatsFromBytes(scaleTensor.dtype, weights.read(scaleName), { file: scaleTensor.file, tensor: scaleName });
  const scale = betaFromWeightScale(rawScale, quantization.weightScale, { file: scaleTensor.file, tensor: scaleName });
  return { rows, cols, values: decodeHfPacked(weights.read(t.name), rows, cols, where), scale };
}

const GGUF_TERNARY_TYPES = new Set<number>([GgmlType.I2_S, GgmlType.TQ1_0, GgmlType.TQ2_0]);
const GGUF_FLOAT_TYPES = new Set<number>([GgmlType.F32, GgmlType.F16, GgmlType.BF16]);

function openGguf(file: string, overrides: ConfigOverrides): ModelSource {
  const gguf = GgufFile.open(file);
  try {
    let config: ModelConfig;
    try {
      config = configFromGguf((key) => gguf.get(key), new Set(gguf.tensors.keys()), file, overrides);
    } catch (error) {
      if (error instanceof ModelConfigError) throw new ModelFileError(file, null, error.message.slice(file.length + 2));
      throw error;
    }
    const tensors = modelTensors(config);
    for (const spec of tensors) checkGgufTensor(gguf, spec);
    return {
      path: file,
      format: 'gguf',
      config,
      tensors,
      readTernary: (spec) => readGgufTernary(gguf, spec),
      ...floatReaders((spec) => {
        const t = gguf.tensors.get(spec.ggufName);
        if (!t) throw new ModelFileError(file, spec.ggufName, 'tensor not found');
        return { dtype: t.typeName, where: { file, tensor: t.name }, read: (start, length) => gguf.read(t.name, start, length) };
      }),
      close: () => gguf.close(),
    };
  } catch (error) {
    gguf.close();
    throw error;
  }
}

function checkGgufTensor(gguf: GgufFile, spec: TensorSpec): GgufTensorInfo {
  const t = gguf.tensors.get(spec.ggufName);
  if (!t) throw new ModelFileError(gguf.path, spec.ggufName, 'tensor missing');
  const expected = ggufDims(spec);
  if (!sameShape(t.dims, expected)) throw new ModelFileError(gguf.path, t.name, `dims {${t.dims}} do not match {${expected}} from the metadata`);
  const allowed = spec.kind === 'ternary' ? GGUF_TERNARY_TYPES : GGUF_FLOAT_TYPES;
  if (!allowed.has(t.type)) throw new ModelFileError(gguf.path, t.name, `type ${t.typeName} is not supported for a ${spec.kind} tensor`);
  return t;
}

function readGgufTernary(gguf: GgufFile, spec: TensorSpec): TernaryMatrix {
  const t = gguf.tensors.get(spec.ggufName);
  if (!t) throw new ModelFileError(gguf.path, spec.ggufName, 'tensor not found');
  const where = { file: gguf.path, tensor: t.name };
  const [rows, cols] = spec.shape;
  const bytes = gguf.read(t.name);
  const matrix = t.type === GgmlType.I2_S ? decodeI2S(bytes, rows, cols, where) : t.type === GgmlType.TQ1_0 ? decodeTQ1_0(bytes, rows, cols, where) : decodeTQ2_0(bytes, rows, cols, where);
  // Upstream llama.cpp multiplies an optional per-tensor `.scale` into the output.
  const scaleName = t.name.replace(/\.weight$/, '.scale');
  const extra = gguf.tensors.get(scaleName);
  if (extra) {
    if (extra.type !== GgmlType.F32 || extra.elementCount !== 1) throw new ModelFileError(gguf.path, scaleName, `expected one F32 value, got ${extra.typeName} with ${extra.elementCount} elements`);
    const factor = f32BytesToF32(gguf.read(scaleName))[0];
    checkScale(factor, { file: gguf.path, tensor: scaleName });
    matrix.scale = Math.fround(matrix.scale * factor);
  }
  return matrix;
}
