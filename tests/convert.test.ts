/**
 * Conversion of the tiny synthetic model, in every source format, to the bit-plane file: the
 * stored tensors match the source exactly (ternary values, β, norms, f16 rounding, int8 head),
 * every format generates the same tokens, and failed conversions leave nothing behind.
 */
import * as fs from 'fs';
import * as path from 'path';
import { allocAligned, TernaryMatrix } from '../src/kernels';
import { BitNetModel } from '../src/engine/model';
import { convertModel, ConvertProgress, CONVERTER_VERSION, ensureConverted, f32ToF16Block, quantizeRowInt8 } from '../src/engine/convert';
import { BitplaneHeader, int8HeadCols, LM_HEAD_INT8, LM_HEAD_ROW_SCALE, readBitplaneHeader, TOKENIZER_BLOB, TOKENIZER_CONFIG_BLOB } from '../src/formats/bitplane-file';
import { f32ToF16 } from '../src/formats/float16';
import { GgufFile } from '../src/formats/gguf';
import { openModel } from '../src/formats/model-reader';
import { SYNTH_FORMATS, SynthFormat } from '../src/synth/generate';
import { loadHfTokenizer, readGgufTokenizerMetadata, Tokenizer } from '../src/tokenizer';
import { hfTokenizerFilesFromGguf } from '../src/tokenizer/hf-json';
import { modelFileError, rewriteHfFolder, scratchDir, tinyModel, writeFile } from './helpers/model-files';

const tiny = tinyModel();
const dir = scratchDir('convert');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function folderFiles(folder: string): string[] {
  return fs.readdirSync(folder).sort();
}

function readEntry(file: string, header: BitplaneHeader, name: string): Uint8Array {
  const e = header.tensors.find((t) => t.name === name);
  if (!e) throw new Error(`no entry ${name}`);
  const bytes = allocAligned(e.byteLength);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, bytes, 0, e.byteLength, e.offset);
  } finally {
    fs.closeSync(fd);
  }
  return bytes;
}

/** Independent int8 head reference: absmax/127 per row, ties to even, written the slow obvious way. */
function referenceInt8Row(row: Float32Array): { q: number[]; scale: number } {
  const absmax = row.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  const scale = Math.fround(absmax / 127);
  if (scale === 0) return { q: Array.from(row, () => 0), scale };
  const q = Array.from(row, (x) => {
    const v = x / scale;
    const floor = Math.floor(v);
    const r = v - floor > 0.5 || (v - floor === 0.5 && floor % 2 !== 0) ? floor + 1 : floor;
    return Math.max(-127, Math.min(127, r)) + 0; // -0 + 0 is +0, as Int8Array stores it
  });
  return { q, scale };
}

const PROMPT = 'The quick brown fox jumps';
const greedy = { temperature: 0, maxTokens: 16, stopAtEos: false } as const;
const converted = new Map<SynthFormat, string>();

describe.each(SYNTH_FORMATS.map((f) => [f]))('converting %s', (format) => {
  const input = tiny.paths[format]!;
  const output = path.join(dir, `${format}.bitnet`);
  const progress: ConvertProgress[] = [];

  beforeAll(() => {
    convertModel(input, output, { onProgress: (p) => progress.push(p) });
    converted.set(format, output);
  });

  test('tensors equal the source: ternary values and β, norms, f16 embedding, int8 head', () => {
    const header = readBitplaneHeader(output);
    expect(progress.map((p) => p.done)).toEqual(header.tensors.map((_, i) => i + 1));
    expect(progress.every((p) => p.total === header.tensors.length)).toBe(true);
    const source = openModel(input);
    try {
      expect(header.config).toEqual(source.config);
      for (const spec of source.tensors) {
        const entry = header.tensors.find((t) => t.name === spec.hfName)!;
        const stored = readEntry(output, header, spec.hfName);
        if (spec.kind === 'ternary') {
          const expected = source.readTernary(spec);
          const planes = new TernaryMatrix(stored, entry.shape[0], entry.shape[1], entry.scale!);
          expect(Buffer.from(planes.unpack()).equals(Buffer.from(expected.values.buffer, expected.values.byteOffset, expected.values.byteLength))).toBe(true);
          expect(entry.scale).toBe(expected.scale);
        } else if (spec.kind === 'norm') {
          expect(entry.kind).toBe('f32');
          expect(new Float32Array(stored.buffer, stored.byteOffset, stored.byteLength / 4)).toEqual(source.readFloat(spec));
        } else {
          expect(entry.kind).toBe('f16');
          const values = source.readFloat(spec);
          const half = new Uint16Array(stored.buffer, stored.byteOffset, stored.byteLength / 2);
          expect(Array.from(half)).toEqual(Array.from(values, f32ToF16));
        }
      }
      const headSpec = source.tensors.find((s) => s.role === (source.config.tiedEmbeddings ? 'embed' : 'lm_head'))!;
      const head = source.readFloat(headSpec);
      const [vocab, hidden] = headSpec.shape;
      const cols = int8HeadCols(hidden);
      const qBytes = readEntry(output, header, LM_HEAD_INT8);
      const q = new Int8Array(qBytes.buffer, qBytes.byteOffset, qBytes.byteLength);
      const scaleBytes = readEntry(output, header, LM_HEAD_ROW_SCALE);
      const scales = new Float32Array(scaleBytes.buffer, scaleBytes.byteOffset, vocab);
      for (let r = 0; r < vocab; r++) {
        const expected = referenceInt8Row(head.subarray(r * hidden, (r + 1) * hidden));
        expect(scales[r]).toBe(expected.scale);
        expect(Array.from(q.subarray(r * cols, r * cols + hidden))).toEqual(expected.q);
        expect(q.subarray(r * cols + hidden, (r + 1) * cols).every((v) => v === 0)).toBe(true);
      }
    } finally {
      source.close();
    }
  });

  test('stores the tokenizer as HF JSON blobs, and the real chat template only', () => {
    const header = readBitplaneHeader(output);
    const json = JSON.parse(Buffer.from(readEntry(output, header, TOKENIZER_BLOB)).toString('utf8'));
    const config = JSON.parse(Buffer.from(readEntry(output, header, TOKENIZER_CONFIG_BLOB)).toString('utf8'));
    const tokenizer = Tokenizer.fromHfJson(json, config);
    const reference = loadHfTokenizer(tiny.paths.hf!);
    for (const text of [PROMPT, ' the  theater\n\nis in 2024!', 'café ünïcode <|eot_id|>']) expect(tokenizer.encode(text)).toEqual(reference.encode(text));
    expect(tokenizer.bosId).toBe(reference.bosId);
    if (format.startsWith('gguf')) {
      const gguf = GgufFile.open(tiny.paths[format]!);
      const embedded = gguf.get('tokenizer.chat_template');
      gguf.close();
      expect(header.chatTemplate).toBe(typeof embedded === 'string' && !embedded.includes('BITNET') ? embedded : null);
    } else {
      expect(header.chatTemplate).toBe(reference.chatTemplate);
    }
  });
});

describe('generation from converted files', () => {
  test('every source format generates the same greedy tokens', async () => {
    const tokens = new Map<SynthFormat, number[]>();
    for (const format of SYNTH_FORMATS) {
      const model = await BitNetModel.load(converted.get(format)!, { threads: 2, verify: true });
      expect(model.lmHead).toBe('q4');
      tokens.set(format, (await model.createSession({ contextSize: 64 }).generate(PROMPT, greedy).result).tokens);
    }
    const reference = tokens.get('hf')!;
    expect(reference.length).toBe(greedy.maxTokens);
    for (const format of SYNTH_FORMATS) expect({ format, tokens: tokens.get(format) }).toEqual({ format, tokens: reference });
  });

  test('int8 head vs f16 head: top-1 agreement and largest logit difference', async () => {
    const f16File = path.join(dir, 'hf-f16.bitnet');
    convertModel(tiny.paths.hf!, f16File, { lmHead: 'f16' });
    expect(readBitplaneHeader(f16File).tensors.some((t) => t.name === LM_HEAD_INT8)).toBe(false);
    const int8Model = await BitNetModel.load(converted.get('hf')!, { threads: 2 });
    const f16Model = await BitNetModel.load(f16File, { threads: 2 });
    expect(f16Model.lmHead).toBe('f16');
    const text = 'The quick brown fox jumps over the lazy dog while the theater is in session, and at the start of it all, a bear is sitting on the fence.';
    const ids = int8Model.tokenizer.encode(text);
    const vocab = int8Model.vocab;
    const a = await int8Model.createSession({ contextSize: 256 }).evaluate(ids, { allLogits: true });
    const b = await f16Model.createSession({ contextSize: 256 }).evaluate(ids, { allLogits: true });
    let agree = 0;
    let maxDiff = 0;
    let maxAbs = 0;
    for (let t = 0; t < ids.length; t++) {
      const rowA = a.subarray(t * vocab, (t + 1) * vocab);
      const rowB = b.subarray(t * vocab, (t + 1) * vocab);
      const argmax = (row: Float32Array) => row.reduce((best, v, i) => (v > row[best] ? i : best), 0);
      if (argmax(rowA) === argmax(rowB)) agree++;
      for (let i = 0; i < vocab; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(rowA[i] - rowB[i]));
        maxAbs = Math.max(maxAbs, Math.abs(rowB[i]));
      }
    }
    console.log(`int8 vs f16 LM head on the tiny model: greedy top-1 agrees at ${agree}/${ids.length} positions; max |logit diff| ${maxDiff.toFixed(5)} (max |logit| ${maxAbs.toFixed(3)})`);
    expect(agree / ids.length).toBeGreaterThanOrEqual(0.8);
    expect(maxDiff).toBeLessThan(0.05 * maxAbs);
  });
});

describe('failures leave nothing behind', () => {
  test('a truncated GGUF is refused before anything is written', () => {
    const folder = scratchDir('convert-trunc');
    const bytes = fs.readFileSync(tiny.paths['gguf-i2_s']!);
    const input = writeFile(folder, 'cut.gguf', bytes.subarray(0, Math.floor(bytes.length * 0.7)));
    modelFileError(() => convertModel(input, path.join(folder, 'out.bitnet')));
    expect(folderFiles(folder)).toEqual(['cut.gguf']);
    fs.rmSync(folder, { recursive: true });
  });

  test('a tensor that fails to decode mid-conversion leaves no output and no temp file', () => {
    const folder = scratchDir('convert-corrupt');
    // Code 3 is invalid in HF packed ternary weights; make the last layer's down_proj all 3s.
    const last = `model.layers.${tiny.config.layers - 1}.mlp.down_proj.weight`;
    const input = rewriteHfFolder(tiny.paths.hf!, path.join(folder, 'model'), (name, bytes) => (name === last ? new Uint8Array(bytes.length).fill(0xff) : bytes));
    const error = modelFileError(() => convertModel(input, path.join(folder, 'out.bitnet')));
    expect(error.message).toContain(last);
    expect(folderFiles(folder)).toEqual(['model']);
    fs.rmSync(folder, { recursive: true });
  });

  test('an f16 overflow fails clearly instead of writing Inf', () => {
    const values = Float32Array.from([1, -65504, 65519.99, 65520, 3]);
    const out = new Uint16Array(values.length);
    const stats = { underflows: 0, subnormals: 0 };
    expect(f32ToF16Block(values, out, stats)).toBe(3);
    expect(Array.from(out.subarray(0, 3))).toEqual([f32ToF16(1), f32ToF16(-65504), f32ToF16(65519.99)]);
  });

  test('an output path in a missing folder fails clearly', () => {
    expect(() => convertModel(tiny.paths.hf!, path.join(dir, 'no-such-folder', 'out.bitnet'))).toThrow(/output folder .*no-such-folder does not exist/);
  });

  test('a flipped tensor byte fails verify with a checksum error; header damage is named', async () => {
    const file = converted.get('hf')!;
    const header = readBitplaneHeader(file);
    const victim = header.tensors.find((t) => t.kind === 'ternary-planes')!;
    const bytes = fs.readFileSync(file);
    bytes[victim.offset + 3] ^= 0x01;
    const flipped = writeFile(dir, 'flipped.bitnet', bytes);
    await expect(BitNetModel.load(flipped, { verify: true })).rejects.toThrow(`tensor '${victim.name}': checksum mismatch`);
    const badMagic = Buffer.from(fs.readFileSync(file));
    badMagic[0] ^= 0xff;
    await expect(BitNetModel.load(writeFile(dir, 'magic.bitnet', badMagic))).rejects.toThrow(/not a bitnet-gen model file; convert it first/);
    const cut = fs.readFileSync(file).subarray(0, header.tensors[3].offset);
    await expect(BitNetModel.load(writeFile(dir, 'cut.bitnet', cut))).rejects.toThrow(/truncated or corrupt/);
  });
});

describe('f16 and int8 helpers', () => {
  test('f32ToF16Block matches float16.ts f32ToF16 and counts underflows and subnormals', () => {
    const special = [0, -0, 1, -1, 65504, 6.1e-5, 2 ** -14, 2 ** -15, 2 ** -24, 2 ** -25, 2 ** -25 * 1.0001, 2 ** -26, 1e-30, -3e-8, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2047.5, 2048.5, 0.1, -123.456];
    const random = Array.from({ length: 4000 }, (_, i) => Math.sin(i * 12.9898) * 10 ** ((i % 13) - 8));
    const values = Float32Array.from([...special, ...random]);
    const out = new Uint16Array(values.length);
    const stats = { underflows: 0, subnormals: 0 };
    expect(f32ToF16Block(values, out, stats)).toBe(-1);
    expect(Array.from(out)).toEqual(Array.from(values, f32ToF16));
    const expectedUnderflows = Array.from(values).filter((v, i) => v !== 0 && (out[i] & 0x7fff) === 0).length;
    const expectedSubnormals = Array.from(out).filter((h) => (h & 0x7fff) !== 0 && (h & 0x7fff) < 0x400).length;
    expect(expectedUnderflows).toBeGreaterThan(0);
    expect(stats).toEqual({ underflows: expectedUnderflows, subnormals: expectedSubnormals });
  });

  test('int8 rows: ties to even, clamp at ±127, zero rows get scale 0', () => {
    const zero = new Int8Array(4);
    expect(quantizeRowInt8(new Float32Array(4), zero)).toBe(0);
    expect(Array.from(zero)).toEqual([0, 0, 0, 0]);
    const row = Float32Array.from([127, -127, 2.5, 3.5, -2.5, 0.49]);
    const q = new Int8Array(row.length);
    expect(quantizeRowInt8(row, q)).toBe(1);
    expect(Array.from(q)).toEqual([127, -127, 2, 4, -2, 0]);
    const sample = Float32Array.from({ length: 300 }, (_, i) => Math.cos(i * 7.1) * (i % 7));
    const got = new Int8Array(sample.length);
    const scale = quantizeRowInt8(sample, got);
    expect({ scale, q: Array.from(got) }).toEqual(referenceInt8Row(sample));
  });
});

describe('ensureConverted', () => {
  test('converts once, reuses a valid cached file, and re-converts when the key changes', () => {
    const cacheDir = scratchDir('convert-cache');
    const input = tiny.paths['gguf-tq2_0']!;
    const first = ensureConverted(input, { cacheDir });
    expect(path.dirname(first)).toBe(cacheDir);
    expect(path.basename(first)).toMatch(/^model-tq2_0-[0-9a-f]{16}\.bitnet$/);
    const mtime = fs.statSync(first).mtimeMs;
    expect(ensureConverted(input, { cacheDir })).toBe(first);
    expect(fs.statSync(first).mtimeMs).toBe(mtime);
    const f16 = ensureConverted(input, { cacheDir, lmHead: 'f16' });
    expect(f16).not.toBe(first);
    // A damaged cache entry is replaced rather than returned.
    fs.truncateSync(first, 100);
    expect(ensureConverted(input, { cacheDir })).toBe(first);
    expect(readBitplaneHeader(first).tensors.length).toBeGreaterThan(0);
    // Touching a source file changes the key.
    const copy = path.join(cacheDir, 'copy.gguf');
    fs.copyFileSync(input, copy);
    const before = ensureConverted(copy, { cacheDir });
    const later = new Date(Date.now() + 5000);
    fs.utimesSync(copy, later, later);
    expect(ensureConverted(copy, { cacheDir })).not.toBe(before);
    expect(folderFiles(cacheDir).every((name) => !name.includes('.tmp-'))).toBe(true);
    expect(CONVERTER_VERSION).toBeGreaterThanOrEqual(1);
    fs.rmSync(cacheDir, { recursive: true });
  });

  test('defaults to $BITNET_GEN_CACHE', () => {
    const cacheDir = scratchDir('convert-env');
    const saved = process.env.BITNET_GEN_CACHE;
    process.env.BITNET_GEN_CACHE = cacheDir;
    try {
      expect(path.dirname(ensureConverted(tiny.paths.hf!))).toBe(cacheDir);
    } finally {
      if (saved === undefined) delete process.env.BITNET_GEN_CACHE;
      else process.env.BITNET_GEN_CACHE = saved;
      fs.rmSync(cacheDir, { recursive: true });
    }
  });
});

test('hfTokenizerFilesFromGguf names BOS/EOS by content and rejects ids outside the vocabulary', () => {
  const gguf = GgufFile.open(tiny.paths['gguf-i2_s']!);
  const metadata = readGgufTokenizerMetadata(gguf);
  gguf.close();
  const files = hfTokenizerFilesFromGguf(metadata, 'T');
  expect(files.tokenizerConfig.bos_token).toBe(metadata.tokens[metadata.bosId!]);
  expect(files.tokenizerConfig.chat_template).toBe('T');
  expect(() => hfTokenizerFilesFromGguf({ ...metadata, eosId: metadata.tokens.length })).toThrow(/EOS token id .* outside/);
});
