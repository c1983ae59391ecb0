/**
 * Mutation fuzzing: random byte flips, overwrites with extreme integers, and truncations of
 * valid model files must end in a clean ModelFileError or a valid load, never another
 * exception or a hang (jest's timeout catches hangs).
 */
import * as fs from 'fs';
import * as path from 'path';
import { ModelFileError } from '../src/formats/errors';
import { GgmlType, GgufFile, GgufValueType, writeGguf } from '../src/formats/gguf';
import { openModel } from '../src/formats/model-reader';
import { SafetensorsFile, writeSafetensors } from '../src/formats/safetensors';
import { Prng } from '../src/synth/prng';
import { scratchDir, tinyModel } from './helpers/model-files';

const dir = scratchDir('fuzz');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Applies one random mutation, mostly inside the first `hotBytes` (where headers live). */
function mutate(original: Buffer, rng: Prng, hotBytes: number): Buffer {
  const bytes = Buffer.from(original);
  const at = (): number => (rng.next() < 0.9 ? rng.int(0, Math.min(hotBytes, bytes.length) - 1) : rng.int(0, bytes.length - 1));
  switch (rng.int(0, 3)) {
    case 0:
      return bytes.subarray(0, rng.int(0, bytes.length - 1));
    case 1: {
      for (let i = rng.int(1, 8); i > 0; i--) bytes[at()] ^= 1 << rng.int(0, 7);
      return bytes;
    }
    case 2: {
      const extremes = [0xffffffffffffffffn, 0x8000000000000000n, 0xffffffffn, 0n, 1n << 40n];
      const position = Math.min(at(), bytes.length - 8);
      if (position >= 0) bytes.writeBigUInt64LE(extremes[rng.int(0, extremes.length - 1)], position);
      return bytes;
    }
    default:
      bytes[at()] = rng.int(0, 255);
      return bytes;
  }
}

/** Runs `load` on `iterations` mutants; returns how many loaded and how many failed cleanly. */
function fuzz(original: Buffer, file: string, iterations: number, seed: number, hotBytes: number, load: (file: string) => void): { loaded: number; rejected: number } {
  const rng = new Prng(seed);
  const outcome = { loaded: 0, rejected: 0 };
  for (let i = 0; i < iterations; i++) {
    fs.writeFileSync(file, mutate(original, rng, hotBytes));
    try {
      load(file);
      outcome.loaded++;
    } catch (error) {
      if (!(error instanceof ModelFileError)) throw new Error(`mutant ${i} (seed ${seed}) crashed the reader: ${(error as Error).stack}`);
      outcome.rejected++;
    }
  }
  return outcome;
}

function readAllGguf(file: string): void {
  const gguf = GgufFile.open(file);
  try {
    for (const name of gguf.tensors.keys()) gguf.read(name);
  } finally {
    gguf.close();
  }
}

test('GGUF container: 2000 mutants of a small file', () => {
  const source = path.join(dir, 'small.gguf');
  writeGguf(
    source,
    [
      ['general.architecture', { type: GgufValueType.STRING, value: 'bitnet' }],
      ['bitnet.block_count', { type: GgufValueType.U32, value: 1 }],
      ['tokenizer.ggml.tokens', { type: GgufValueType.ARRAY, elementType: GgufValueType.STRING, value: ['a', 'b', 'Ġc'] }],
      ['nested', { type: GgufValueType.ARRAY, elementType: GgufValueType.ARRAY, value: [{ type: GgufValueType.ARRAY, elementType: GgufValueType.U64, value: [1n] }] }],
    ],
    [
      { name: 'blk.0.attn_q.weight', dims: [256, 1], type: GgmlType.TQ2_0, bytes: () => new Uint8Array(66) },
      { name: 'blk.0.attn_k.weight', dims: [128, 1], type: GgmlType.I2_S, bytes: () => new Uint8Array(64) },
      { name: 'output_norm.weight', dims: [4], type: GgmlType.F32, bytes: () => new Uint8Array(16) },
    ],
  );
  const outcome = fuzz(fs.readFileSync(source), path.join(dir, 'mutant.gguf'), 2000, 101, 1 << 16, readAllGguf);
  expect(outcome.rejected).toBeGreaterThan(700);
  expect(outcome.loaded).toBeGreaterThan(100);
});

test('safetensors container: 2000 mutants of a small file', () => {
  const source = path.join(dir, 'small.safetensors');
  writeSafetensors(source, [
    { name: 'a', dtype: 'BF16', shape: [2, 3], bytes: () => new Uint8Array(12) },
    { name: 'b', dtype: 'U8', shape: [5], bytes: () => new Uint8Array(5) },
  ]);
  const outcome = fuzz(fs.readFileSync(source), path.join(dir, 'mutant.safetensors'), 2000, 202, 1 << 16, (file) => {
    const st = SafetensorsFile.open(file);
    try {
      for (const name of st.tensors.keys()) st.read(name);
    } finally {
      st.close();
    }
  });
  expect(outcome.rejected).toBeGreaterThan(700);
  expect(outcome.loaded).toBeGreaterThan(10);
});

function loadWholeModel(target: string): void {
  const source = openModel(target);
  try {
    for (const spec of source.tensors) {
      if (spec.kind === 'ternary') source.readTernary(spec);
      else source.readFloat(spec);
    }
  } finally {
    source.close();
  }
}

test.each([
  ['gguf-i2_s', 303],
  ['gguf-tq1_0', 304],
] as const)('whole tiny model (%s): 150 mutants load or fail cleanly', (format, seed) => {
  const original = fs.readFileSync(tinyModel().paths[format]!);
  const headerBytes = GgufFile.open(tinyModel().paths[format]!);
  const hot = headerBytes.dataStart + 4096;
  headerBytes.close();
  const outcome = fuzz(original, path.join(dir, `${format}.gguf`), 150, seed, hot, loadWholeModel);
  expect(outcome.rejected).toBeGreaterThan(30);
});

test('whole tiny HF model: 150 mutants of model.safetensors load or fail cleanly', () => {
  const folder = path.join(dir, 'hf');
  fs.cpSync(tinyModel().paths.hf!, folder, { recursive: true });
  const weights = path.join(folder, 'model.safetensors');
  const original = fs.readFileSync(weights);
  const hot = 8 + Number(original.readBigUInt64LE(0)) + 4096;
  const outcome = fuzz(original, weights, 150, 405, hot, () => loadWholeModel(folder));
  expect(outcome.rejected).toBeGreaterThan(30);
});
