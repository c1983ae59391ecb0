import * as fs from 'fs';
import * as path from 'path';
import { BITPLANE_VERSION, BitplaneTensorInput, BitplaneTensorEntry, int8HeadCols, LM_HEAD_INT8, LM_HEAD_Q4, LM_HEAD_Q4_ROW_SCALE, LM_HEAD_ROW_SCALE, packedPlaneBytes, q4HeadCols, readBitplaneHeader, TOKENIZER_BLOB, TOKENIZER_CONFIG_BLOB, verifyBitplaneChecksums, writeBitplaneFile } from '../src/formats/bitplane-file';
import { BlockWriter } from '../src/formats/file-io';
import { modelTensors, presetConfig } from '../src/model/architecture';
import { Prng } from '../src/synth/prng';
import { BITNET_CHAT_TEMPLATE, syntheticTokenizerJson } from '../src/synth/tokenizer';
import { modelFileError, scratchDir, writeFile } from './helpers/model-files';

const dir = scratchDir('bitplane');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const config = presetConfig('tiny');

function randomBytes(length: number, seed: number): Uint8Array {
  const rng = new Prng(seed);
  return Uint8Array.from({ length }, () => rng.int(0, 255));
}

/** Plane bytes are opaque to the file format, so random bytes of the right size stand in for pack_ternary output. */
function inputs(): BitplaneTensorInput[] {
  const tensors: BitplaneTensorInput[] = modelTensors(config).map((spec, i) =>
    spec.kind === 'ternary'
      ? { name: spec.hfName, kind: 'ternary-planes', shape: spec.shape, scale: 1.25, bytes: () => randomBytes(packedPlaneBytes(spec.shape[0], spec.shape[1]), i) }
      : { name: spec.hfName, kind: 'f32', shape: spec.shape, bytes: () => randomBytes(spec.shape.reduce((a, b) => a * b, 4), i) },
  );
  tensors.push({ name: TOKENIZER_BLOB, kind: 'blob', shape: [], bytes: () => Buffer.from(JSON.stringify(syntheticTokenizerJson())) });
  return tensors;
}

const file = path.join(dir, 'tiny.bnp');
writeBitplaneFile(file, { config, chatTemplate: BITNET_CHAT_TEMPLATE }, inputs());

test('packed plane sizes pad rows to 64 and columns to 128', () => {
  expect(packedPlaneBytes(64, 256)).toBe((64 * 256) / 4);
  expect(packedPlaneBytes(2560, 6912)).toBe((2560 * 6912) / 4);
  expect(packedPlaneBytes(65, 129)).toBe((128 * 256) / 4);
});

test('header round trip: config, template, aligned tensors, checksums', () => {
  const header = readBitplaneHeader(file);
  expect(header.config).toEqual(config);
  expect(header.chatTemplate).toBe(BITNET_CHAT_TEMPLATE);
  expect(header.tensors.length).toBe(modelTensors(config).length + 1);
  for (const t of header.tensors) expect(t.offset % 64).toBe(0);
  const q = header.tensors.find((t) => t.name === 'model.layers.0.self_attn.k_proj.weight')!;
  expect(q).toMatchObject({ kind: 'ternary-planes', shape: [64, 256], scale: 1.25, byteLength: 4096 });
  const fd = fs.openSync(file, 'r');
  const bytes = Buffer.alloc(q.byteLength);
  fs.readSync(fd, bytes, 0, q.byteLength, q.offset);
  fs.closeSync(fd);
  const index = modelTensors(config).findIndex((s) => s.hfName === q.name);
  expect(bytes.equals(Buffer.from(randomBytes(4096, index)))).toBe(true);
  verifyBitplaneChecksums(header);
});

test('a flipped data byte fails the checksum, naming the tensor', () => {
  const bytes = fs.readFileSync(file);
  const header = readBitplaneHeader(file);
  const victim = header.tensors[5];
  bytes[victim.offset + 7] ^= 0x10;
  const corrupt = writeFile(dir, 'flipped.bnp', bytes);
  const error = modelFileError(() => verifyBitplaneChecksums(readBitplaneHeader(corrupt)));
  expect(error.tensor).toBe(victim.name);
  expect(error.message).toMatch(/checksum mismatch/);
});

test.each([
  ['bad magic', (b: Buffer) => b.write('XX', 0), /bad magic/],
  ['future version', (b: Buffer) => b.writeUInt32LE(BITPLANE_VERSION + 1, 8), new RegExp(`unsupported bit-plane file version ${BITPLANE_VERSION + 1}`)],
  // Version 1 stored one block per row tile, before tiles were interleaved in quads.
  ['version 1', (b: Buffer) => b.writeUInt32LE(1, 8), /unsupported bit-plane file version 1 .*re-convert the model/],
  ['corrupt index', (b: Buffer) => (b[b.length - 3] ^= 1), /index checksum mismatch/],
  ['index offset past the end', (b: Buffer) => b.writeBigUInt64LE(2n ** 60n, 16), /does not end the .*-byte file/],
] as const)('%s is rejected', (label, edit, pattern) => {
  const bytes = fs.readFileSync(file);
  edit(bytes);
  expect(modelFileError(() => readBitplaneHeader(writeFile(dir, `${label.replace(/\W+/g, '-')}.bnp`, bytes))).message).toMatch(pattern);
});

test('truncations are clean errors', () => {
  const bytes = fs.readFileSync(file);
  for (const length of [0, 63, 64, 1000, bytes.length - 100, bytes.length - 1]) {
    modelFileError(() => readBitplaneHeader(writeFile(dir, 'cut.bnp', bytes.subarray(0, length))));
  }
});

test('the writer refuses wrongly sized planes and leaves no file behind', () => {
  const target = path.join(dir, 'refused.bnp');
  const bad = inputs();
  bad[2] = { ...bad[2], bytes: () => new Uint8Array(10) };
  expect(() => writeBitplaneFile(target, { config, chatTemplate: null }, bad)).toThrow(/is 10 bytes, expected/);
  expect(fs.readdirSync(dir).filter((f) => f.startsWith('refused'))).toEqual([]);
});

test('a missing tensor is named', () => {
  const target = path.join(dir, 'missing.bnp');
  writeBitplaneFile(target, { config, chatTemplate: null }, inputs().filter((t) => t.name !== 'model.norm.weight'));
  expect(modelFileError(() => readBitplaneHeader(target)).message).toMatch(/tensor 'model\.norm\.weight': tensor missing/);
});

function int8Head(cols = int8HeadCols(config.hidden), scaleLength = config.vocab): BitplaneTensorInput[] {
  return [
    { name: LM_HEAD_INT8, kind: 'i8', shape: [config.vocab, cols], bytes: () => randomBytes(config.vocab * cols, 99) },
    { name: LM_HEAD_ROW_SCALE, kind: 'f32', shape: [scaleLength], bytes: () => new Uint8Array(scaleLength * 4) },
  ];
}

test('the int8 LM head and tokenizer_config blob round trip; the writer reports each tensor', () => {
  const target = path.join(dir, 'int8.bnp');
  const written: [string, number, number][] = [];
  const tensors = [...inputs(), ...int8Head(), { name: TOKENIZER_CONFIG_BLOB, kind: 'blob' as const, shape: [], bytes: () => Buffer.from('{}') }];
  writeBitplaneFile(target, { config, chatTemplate: null }, tensors, (entry: BitplaneTensorEntry, done, total) => written.push([entry.name, done, total]));
  expect(written.map(([name]) => name)).toEqual(tensors.map((t) => t.name));
  expect(written.every(([, done, total], i) => done === i + 1 && total === tensors.length)).toBe(true);
  const header = readBitplaneHeader(target);
  expect(header.tensors.find((t) => t.name === LM_HEAD_INT8)).toMatchObject({ kind: 'i8', shape: [config.vocab, int8HeadCols(config.hidden)] });
  verifyBitplaneChecksums(header);
});

function q4Head(cols = q4HeadCols(config.hidden), scaleLength = config.vocab): BitplaneTensorInput[] {
  return [
    { name: LM_HEAD_Q4, kind: 'q4', shape: [config.vocab, cols], bytes: () => randomBytes((config.vocab * cols) / 2, 98) },
    { name: LM_HEAD_Q4_ROW_SCALE, kind: 'f32', shape: [scaleLength], bytes: () => new Uint8Array(scaleLength * 4) },
  ];
}

test('the 4-bit LM head round trips beside the int8 head', () => {
  const target = path.join(dir, 'q4.bnp');
  writeBitplaneFile(target, { config, chatTemplate: null }, [...inputs(), ...int8Head(), ...q4Head()]);
  const header = readBitplaneHeader(target);
  expect(header.tensors.find((t) => t.name === LM_HEAD_Q4)).toMatchObject({ kind: 'q4', shape: [config.vocab, q4HeadCols(config.hidden)], byteLength: (config.vocab * q4HeadCols(config.hidden)) / 2 });
  verifyBitplaneChecksums(header);
});

test('a ternary tensor may give its scale with its planes', () => {
  const target = path.join(dir, 'scaled.bnp');
  const tensors = inputs().map((t) => (t.kind === 'ternary-planes' ? { ...t, scale: undefined, bytes: () => ({ planes: t.bytes() as Uint8Array, scale: 0.5 }) } : t));
  writeBitplaneFile(target, { config, chatTemplate: null }, tensors);
  expect(readBitplaneHeader(target).tensors.filter((t) => t.kind === 'ternary-planes').every((t) => t.scale === 0.5)).toBe(true);
  const unscaled = inputs().map((t) => (t.kind === 'ternary-planes' ? { ...t, scale: undefined } : t));
  expect(() => writeBitplaneFile(path.join(dir, 'unscaled.bnp'), { config, chatTemplate: null }, unscaled)).toThrow(/needs a finite non-negative scale/);
});

test.each([
  ['an int8 head without row scales', () => [...inputs(), int8Head()[0]], /lm_head\.row_scale': tensor missing/],
  ['an int8 head rows not padded to 64', () => [...inputs(), ...int8Head(config.hidden + 1)], /lm_head\.int8': shape .* does not match/],
  ['row scales of the wrong length', () => [...inputs(), ...int8Head(undefined, config.vocab - 1)], /lm_head\.row_scale': shape .* does not match/],
  ['a 4-bit head without the int8 head', () => [...inputs(), ...q4Head()], /lm_head\.int8': tensor missing: the 4-bit LM head needs the int8 head/],
  ['a 4-bit head without row scales', () => [...inputs(), ...int8Head(), q4Head()[0]], /lm_head\.q4_row_scale': tensor missing/],
  ['a 4-bit head of the wrong width', () => [...inputs(), ...int8Head(), ...q4Head(q4HeadCols(config.hidden) + 128)], /lm_head\.q4': shape .* does not match/],
  ['4-bit row scales of the wrong length', () => [...inputs(), ...int8Head(), ...q4Head(undefined, config.vocab + 1)], /lm_head\.q4_row_scale': shape .* does not match/],
  ['a 4-bit head stored as i8', () => [...inputs(), ...int8Head(), { ...q4Head()[0], kind: 'i8' as const, shape: [config.vocab, q4HeadCols(config.hidden) / 2] }, q4Head()[1]], /lm_head\.q4': kind i8 is not valid for the 4-bit LM head/],
  ['no tokenizer blob', () => inputs().filter((t) => t.name !== TOKENIZER_BLOB), /tokenizer\.json': tensor missing/],
  ['a tokenizer stored as f32', () => inputs().map((t) => (t.name === TOKENIZER_BLOB ? { ...t, kind: 'f32' as const, shape: [4], bytes: () => new Uint8Array(16) } : t)), /tokenizer\.json': kind f32 is not valid for the tokenizer/],
] as const)('%s is rejected', (label, tensors, pattern) => {
  const target = path.join(dir, `${label.replace(/\W+/g, '-')}.bnp`);
  writeBitplaneFile(target, { config, chatTemplate: null }, tensors());
  expect(modelFileError(() => readBitplaneHeader(target)).message).toMatch(pattern);
});

test('BlockWriter hands on whole blocks, and the rest on flush', () => {
  const blocks: Buffer[] = [];
  const writer = new BlockWriter((block) => blocks.push(Buffer.from(block)), 16);
  const pieces = [randomBytes(5, 1), randomBytes(30, 2), randomBytes(0, 3), randomBytes(11, 4), randomBytes(3, 5)];
  for (const p of pieces) writer.write(p);
  writer.flush();
  writer.flush();
  expect(blocks.map((b) => b.length)).toEqual([16, 16, 16, 1]);
  expect(Buffer.compare(Buffer.concat(blocks), Buffer.concat(pieces))).toBe(0);
});
