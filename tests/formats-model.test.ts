import * as fs from 'fs';
import * as path from 'path';
import { GgmlType, GgufValueType } from '../src/formats/gguf';
import { f32ToBf16Bytes } from '../src/formats/float16';
import { openModel, ModelSource } from '../src/formats/model-reader';
import { configFromHf, modelTensors, presetConfig, TensorSpec } from '../src/model/architecture';
import { syntheticFloat, syntheticTernary } from '../src/synth/weights';
import { SYNTH_FORMATS, SynthFormat } from '../src/synth/generate';
import { modelFileError, rewriteGguf, rewriteHfFolder, scratchDir, tinyModel } from './helpers/model-files';

const model = tinyModel();
const dir = scratchDir('model');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function withModel<T>(target: string, use: (source: ModelSource) => T): T {
  const source = openModel(target);
  try {
    return use(source);
  } finally {
    source.close();
  }
}

describe('every format of the synthetic model decodes to the same model', () => {
  const reference = openModel(model.paths.hf!);
  afterAll(() => reference.close());
  const expected = new Map<string, { scale: number; bytes: Buffer }>();
  const expectedFor = (spec: TensorSpec): { scale: number; bytes: Buffer } => {
    if (!expected.has(spec.hfName)) {
      if (spec.kind === 'ternary') {
        const { values, scale } = syntheticTernary(spec, model.seed).matrix;
        expected.set(spec.hfName, { scale, bytes: Buffer.from(values.buffer) });
      } else expected.set(spec.hfName, { scale: 0, bytes: Buffer.from(syntheticFloat(spec, model.seed).buffer) });
    }
    return expected.get(spec.hfName)!;
  };

  test.each(SYNTH_FORMATS.map((f) => [f]))('%s', (format: SynthFormat) => {
    withModel(model.paths[format]!, (source) => {
      expect({ ...source.config, rmsEps: Math.fround(source.config.rmsEps) }).toEqual({ ...model.config, rmsEps: Math.fround(model.config.rmsEps) });
      expect(source.tensors.map((t) => t.hfName)).toEqual(reference.tensors.map((t) => t.hfName));
      for (const spec of source.tensors) {
        const want = expectedFor(spec);
        if (spec.kind === 'ternary') {
          const got = source.readTernary(spec);
          expect([spec.hfName, got.scale]).toEqual([spec.hfName, want.scale]);
          expect([spec.hfName, Buffer.from(got.values.buffer).equals(want.bytes)]).toEqual([spec.hfName, true]);
        } else {
          expect([spec.hfName, Buffer.from(source.readFloat(spec).buffer).equals(want.bytes)]).toEqual([spec.hfName, true]);
        }
      }
    });
  });
});

test('the tensor list follows the architecture: 11 per layer with sub-norms, tied head', () => {
  const specs = modelTensors(model.config);
  expect(specs.length).toBe(2 + 11 * model.config.layers);
  expect(specs.find((s) => s.role === 'k' && s.layer === 1)).toMatchObject({ hfName: 'model.layers.1.self_attn.k_proj.weight', ggufName: 'blk.1.attn_k.weight', shape: [64, 256] });
  expect(modelTensors({ ...model.config, subNorms: false, tiedEmbeddings: false }).length).toBe(3 + 9 * model.config.layers);
});

describe('hostile HF folders', () => {
  test('a config that does not match the tensor shapes names the tensor', () => {
    const folder = path.join(dir, 'hf-shape');
    fs.cpSync(model.paths.hf!, folder, { recursive: true });
    const config = JSON.parse(fs.readFileSync(path.join(folder, 'config.json'), 'utf8'));
    fs.writeFileSync(path.join(folder, 'config.json'), JSON.stringify({ ...config, intermediate_size: 1024 }));
    const error = modelFileError(() => openModel(folder));
    expect(error.tensor).toBe('model.layers.0.mlp.gate_proj.weight');
    expect(error.message).toMatch(/packed shape \[192,256\] does not match \[256,256\]/);
  });

  test.each([NaN, Infinity, -1])('weight_scale %p is rejected naming the scale tensor', (bad) => {
    const folder = rewriteHfFolder(model.paths.hf!, path.join(dir, `hf-scale-${bad}`), (name, bytes) => (name === 'model.layers.1.self_attn.o_proj.weight_scale' ? f32ToBf16Bytes([bad]) : bytes));
    withModel(folder, (source) => {
      const spec = source.tensors.find((s) => s.role === 'o' && s.layer === 1)!;
      const error = modelFileError(() => source.readTernary(spec));
      expect(error.tensor).toBe('model.layers.1.self_attn.o_proj.weight_scale');
      expect(error.message).toMatch(/not finite|not a finite positive number/);
    });
  });

  test('an unsupported architecture names config.json', () => {
    const folder = path.join(dir, 'hf-arch');
    fs.cpSync(model.paths.hf!, folder, { recursive: true });
    fs.writeFileSync(path.join(folder, 'config.json'), JSON.stringify({ architectures: ['GPT2LMHeadModel'] }));
    expect(modelFileError(() => openModel(folder)).message).toMatch(/config\.json: unsupported architecture 'GPT2LMHeadModel'/);
  });
});

describe('hostile GGUF files', () => {
  test('metadata that does not match the tensor dims names the tensor', () => {
    const file = rewriteGguf(model.paths['gguf-i2_s']!, path.join(dir, 'ffn.gguf'), {
      metadata: (key, value) => (key === 'bitnet-b1.58.feed_forward_length' ? { type: GgufValueType.U32, value: 1024 } : value),
    });
    const error = modelFileError(() => openModel(file));
    expect(error.tensor).toBe('blk.0.ffn_gate.weight');
    expect(error.message).toMatch(/dims \{256,768\} do not match \{256,1024\}/);
  });

  test('a missing tensor is named', () => {
    const file = rewriteGguf(model.paths['gguf-tq2_0']!, path.join(dir, 'missing.gguf'), { dropTensor: (name) => name === 'blk.1.ffn_down.weight' });
    expect(modelFileError(() => openModel(file)).message).toMatch(/tensor 'blk\.1\.ffn_down\.weight': tensor missing/);
  });

  test.each([NaN, -Infinity])('an I2_S scale of %p is rejected on read', (bad) => {
    const file = rewriteGguf(model.paths['gguf-i2_s']!, path.join(dir, `i2s-${bad}.gguf`), {
      tensorBytes: (name, bytes) => {
        if (name !== 'blk.0.attn_v.weight') return bytes;
        const copy = bytes.slice();
        new DataView(copy.buffer).setFloat32(copy.length - 32, bad, true);
        return copy;
      },
    });
    withModel(file, (source) => {
      const error = modelFileError(() => source.readTernary(source.tensors.find((s) => s.ggufName === 'blk.0.attn_v.weight')!));
      expect(error.message).toMatch(/tensor 'blk\.0\.attn_v\.weight': scale .* is not a finite/);
    });
  });

  test('an upstream per-tensor .scale is multiplied into β', () => {
    const file = rewriteGguf(model.paths['gguf-tq2_0']!, path.join(dir, 'scaled.gguf'), {
      extraTensors: [{ name: 'blk.0.attn_q.scale', dims: [1], type: GgmlType.F32, bytes: () => new Uint8Array(Float32Array.of(2).buffer) }],
    });
    withModel(file, (source) => {
      const spec = source.tensors.find((s) => s.ggufName === 'blk.0.attn_q.weight')!;
      expect(source.readTernary(spec).scale).toBe(2 * syntheticTernary(spec, model.seed).matrix.scale);
    });
  });

  test('TQ1_0 blocks with different scales are not a per-tensor ternary weight', () => {
    const file = rewriteGguf(model.paths['gguf-tq1_0']!, path.join(dir, 'tq1-d.gguf'), {
      tensorBytes: (name, bytes) => {
        if (name !== 'blk.1.attn_q.weight') return bytes;
        const copy = bytes.slice();
        copy[54 * 3 + 52] ^= 4;
        return copy;
      },
    });
    withModel(file, (source) => {
      const error = modelFileError(() => source.readTernary(source.tensors.find((s) => s.ggufName === 'blk.1.attn_q.weight')!));
      expect(error.message).toMatch(/block 3 has scale .* not a per-tensor ternary weight/);
    });
  });

  test('without hidden_activation, bitnet.cpp archs are ReLU² only for the Llama 3 vocabulary; overrides win', () => {
    const file = rewriteGguf(model.paths['gguf-i2_s']!, path.join(dir, 'no-act.gguf'), { metadata: (key, value) => (key.endsWith('.hidden_activation') ? undefined : value) });
    expect(withModel(file, (s) => s.config.activation)).toBe('silu');
    const forced = openModel(file, { activation: 'relu2' });
    expect(forced.config.activation).toBe('relu2');
    forced.close();
  });
});

describe('configuration', () => {
  const base = {
    architectures: ['BitNetForCausalLM'],
    hidden_size: 2560,
    intermediate_size: 6912,
    num_hidden_layers: 30,
    num_attention_heads: 20,
    num_key_value_heads: 5,
    vocab_size: 128256,
    max_position_embeddings: 4096,
    rope_theta: 500000.0,
    rms_norm_eps: 1e-5,
    hidden_act: 'relu2',
    tie_word_embeddings: true,
    bos_token_id: 128000,
    eos_token_id: 128001,
  };

  test('the 2B4T config.json gives the 2b4t preset (with generation_config eos ids)', () => {
    expect(configFromHf(base, 'config.json', {}, { eos_token_id: [128001, 128009] })).toEqual(presetConfig('2b4t'));
  });

  test('Llama-style BitNet checkpoints are SiLU without sub-norms; overrides win', () => {
    const llama = { ...base, architectures: ['LlamaForCausalLM'], hidden_act: 'silu', tie_word_embeddings: false, quantization_config: { quant_method: 'bitnet' } };
    const config = configFromHf(llama, 'config.json');
    expect(config).toMatchObject({ activation: 'silu', subNorms: false, tiedEmbeddings: false });
    expect(modelTensors(config).map((t) => t.role)).toContain('lm_head');
    expect(configFromHf(llama, 'config.json', { activation: 'relu2', subNorms: true })).toMatchObject({ activation: 'relu2', subNorms: true });
    expect(() => configFromHf({ ...llama, quantization_config: undefined }, 'config.json')).toThrow(/not a ternary model/);
  });

  test.each([
    [{ hidden_act: 'gelu' }, /unsupported hidden_act 'gelu'/],
    [{ num_key_value_heads: 3 }, /heads \(20\) is not a multiple of kvHeads \(3\)/],
    [{ hidden_size: -1 }, /'hidden_size' missing or not a positive integer/],
    [{ bos_token_id: 999999 }, /special token id 999999 outside the vocabulary/],
    [{ rope_scaling: { type: 'llama3' } }, /rope_scaling is not supported/],
  ])('rejects %p', (patch, pattern) => {
    expect(() => configFromHf({ ...base, ...patch }, 'config.json')).toThrow(pattern);
  });

  test('linear_class bitlinear means weight_scale is 1/β', () => {
    const folder = path.join(dir, 'hf-bitlinear');
    fs.cpSync(model.paths.hf!, folder, { recursive: true });
    const config = JSON.parse(fs.readFileSync(path.join(folder, 'config.json'), 'utf8'));
    fs.writeFileSync(path.join(folder, 'config.json'), JSON.stringify({ ...config, quantization_config: { quant_method: 'bitnet', linear_class: 'bitlinear' } }));
    withModel(folder, (source) => {
      const spec = source.tensors.find((s) => s.role === 'down')!;
      expect(source.readTernary(spec).scale).toBe(Math.fround(1 / syntheticTernary(spec, model.seed).matrix.scale));
    });
  });
});

describe('readFloatRows', () => {
  test.each(['hf', 'gguf-i2_s'] as const)('%s: a row range equals the same rows of readFloat, and out-of-range rows fail', (format) => {
    const source = openModel(model.paths[format]!);
    try {
      const embed = source.tensors.find((t) => t.role === 'embed')!;
      const cols = embed.shape[1];
      const all = source.readFloat(embed);
      expect(Array.from(source.readFloatRows(embed, 3, 2))).toEqual(Array.from(all.subarray(3 * cols, 5 * cols)));
      expect(() => source.readFloatRows(embed, embed.shape[0] - 1, 2)).toThrow(/outside the tensor/);
    } finally {
      source.close();
    }
  });
});
