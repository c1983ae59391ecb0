import * as fs from 'fs';
import * as path from 'path';
import { Tokenizer } from '@huggingface/tokenizers';
import { bf16ToF32, f32ToBf16 } from '../src/formats/float16';
import { ternarizeAbsmean } from '../src/formats/ternary-codecs';
import { modelTensors, presetConfig, SYNTHETIC_VOCAB } from '../src/model/architecture';
import { ensureSyntheticModel } from '../src/synth/generate';
import { ggufTokenizer, syntheticTokenizerJson } from '../src/synth/tokenizer';
import { syntheticTernary } from '../src/synth/weights';
import { scratchDir } from './helpers/model-files';

const dir = scratchDir('synth');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function filesOf(root: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const walk = (folder: string): void => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) walk(full);
      else files.set(path.relative(root, full), fs.readFileSync(full));
    }
  };
  walk(root);
  return files;
}

test('generation is deterministic per seed and leaves no temporary files', () => {
  const formats = ['hf', 'gguf-i2_s', 'gguf-tq1_0'] as const;
  const a = ensureSyntheticModel({ preset: 'tiny', seed: 3, formats, cacheRoot: path.join(dir, 'a') });
  const b = ensureSyntheticModel({ preset: 'tiny', seed: 3, formats, cacheRoot: path.join(dir, 'b') });
  const c = ensureSyntheticModel({ preset: 'tiny', seed: 4, formats: ['gguf-i2_s'], cacheRoot: path.join(dir, 'c') });
  const filesA = filesOf(a.dir);
  const filesB = filesOf(b.dir);
  expect([...filesA.keys()].sort()).toEqual(['hf/config.json', 'hf/generation_config.json', 'hf/model.safetensors', 'hf/tokenizer.json', 'hf/tokenizer_config.json', 'model-i2_s.gguf', 'model-tq1_0.gguf']);
  for (const [name, bytes] of filesA) expect(bytes.equals(filesB.get(name)!)).toBe(true);
  expect(filesA.get('model-i2_s.gguf')!.equals(fs.readFileSync(c.paths['gguf-i2_s']!))).toBe(false);
});

test('the cache is reused: a second call rewrites nothing', () => {
  const first = ensureSyntheticModel({ preset: 'tiny', seed: 5, formats: ['gguf-tq2_0'], cacheRoot: dir });
  expect(path.basename(first.dir)).toMatch(/^tiny-5-v\d+$/);
  const before = fs.statSync(first.paths['gguf-tq2_0']!).mtimeMs;
  const second = ensureSyntheticModel({ preset: 'tiny', seed: 5, formats: ['gguf-tq2_0'], cacheRoot: dir });
  expect(fs.statSync(second.paths['gguf-tq2_0']!).mtimeMs).toBe(before);
  const custom = ensureSyntheticModel({ config: { ...presetConfig('tiny'), layers: 1 }, seed: 5, formats: ['gguf-tq2_0'], cacheRoot: dir });
  expect(path.basename(custom.dir)).toMatch(/^custom-[0-9a-f]{12}-5-v\d+$/);
});

test('master weights are exact in bf16 and ternarize back to the same matrix and β', () => {
  for (const spec of modelTensors(presetConfig('tiny')).filter((s) => s.kind === 'ternary')) {
    const { matrix, master } = syntheticTernary(spec, 9);
    const weights = master();
    expect(weights.every((w) => bf16ToF32(f32ToBf16(w)) === w)).toBe(true);
    const back = ternarizeAbsmean(weights, matrix.rows, matrix.cols, { file: 'synthetic', tensor: spec.hfName });
    expect(back.scale).toBe(matrix.scale);
    expect(Buffer.from(back.values.buffer).equals(Buffer.from(matrix.values.buffer))).toBe(true);
    const zeros = matrix.values.filter((v) => v === 0).length / matrix.values.length;
    expect(zeros).toBeGreaterThan(0.2);
    expect(zeros).toBeLessThan(0.4);
  }
});

test('the synthetic tokenizer is a loadable byte-level BPE with Llama 3 specials at the end', () => {
  const json = syntheticTokenizerJson();
  const config = presetConfig('tiny');
  const tokens = ggufTokenizer(json, SYNTHETIC_VOCAB).tokens;
  expect(tokens.length).toBe(config.vocab);
  expect(tokens[config.bosTokenId!]).toBe('<|begin_of_text|>');
  expect(tokens[config.eosTokenIds[0]]).toBe('<|end_of_text|>');
  expect(tokens[config.eosTokenIds[1]]).toBe('<|eot_id|>');
  expect(tokens[220 - 0]).toBe('Ġ');
  const tokenizer = new Tokenizer(json, { add_bos_token: false });
  const ids = tokenizer.encode(' the thing', { add_special_tokens: false }).ids;
  expect(ids.map((id) => tokens[id])).toEqual(['Ġthe', 'Ġt', 'h', 'ing']);
  expect(tokenizer.decode(ids)).toBe(' the thing');
});
