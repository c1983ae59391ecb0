/**
 * The BitNet b1.58 model family, described once. Every reader, converter and the synthetic
 * generator derive tensor names, shapes and kinds from here; nothing else hard-codes them.
 */
import type { WeightScaleMeaning } from '../formats/ternary-codecs';

/** FFN gate activation: squared ReLU (2B4T family) or SiLU (1bitLLM, Llama-style BitNet). */
export type Activation = 'relu2' | 'silu';

/**
 * How q/k rows are laid out within a head. HF checkpoints and bitnet-arch GGUFs keep the
 * HF "rotate-half" layout; llama-arch GGUFs were permuted for interleaved (adjacent-pair) RoPE.
 */
export type RopeLayout = 'rotate-half' | 'interleaved';

/** Everything an engine needs to know about a model's shape and numerics. */
export interface ModelConfig {
  /** Residual width (HF hidden_size, GGUF embedding_length). */
  hidden: number;
  /** FFN width (HF intermediate_size, GGUF feed_forward_length). */
  intermediate: number;
  /** Number of decoder layers. */
  layers: number;
  /** Query heads. */
  heads: number;
  /** Key/value heads (GQA); divides `heads`. */
  kvHeads: number;
  /** Per-head width; q rows = heads*headDim, k/v rows = kvHeads*headDim. */
  headDim: number;
  /** Vocabulary size = embedding rows. */
  vocab: number;
  /** Trained context length. */
  maxPositions: number;
  /** RoPE base frequency. */
  ropeTheta: number;
  /** RoPE pairing convention of the stored q/k weights. */
  ropeLayout: RopeLayout;
  /** RMSNorm epsilon. */
  rmsEps: number;
  /** FFN gate activation. */
  activation: Activation;
  /** Whether attn_sub_norm / ffn_sub_norm exist (2B4T and 1bitLLM yes, Llama-style no). */
  subNorms: boolean;
  /** LM head is the token embedding (no separate output tensor). */
  tiedEmbeddings: boolean;
  /** Beginning-of-sequence token id, or null when the model file does not say. */
  bosTokenId: number | null;
  /** Token ids that end generation (EOS and end-of-turn). */
  eosTokenIds: number[];
}

/** Logical role of a tensor, independent of any file format's naming. */
export type TensorRole =
  | 'embed'
  | 'final_norm'
  | 'lm_head'
  | 'attn_norm'
  | 'q'
  | 'k'
  | 'v'
  | 'attn_sub_norm'
  | 'o'
  | 'ffn_norm'
  | 'gate'
  | 'up'
  | 'ffn_sub_norm'
  | 'down';

/** What kind of values a tensor holds. */
export type TensorKind = 'ternary' | 'norm' | 'embedding';

/** One tensor of the model: its role, names in each format and logical shape. */
export interface TensorSpec {
  role: TensorRole;
  /** Layer index, or null for global tensors. */
  layer: number | null;
  /** Hugging Face name (with the `.weight` suffix). */
  hfName: string;
  /** Other HF names seen in the wild for the same tensor (1bitLLM sub-norm names). */
  hfAliases: string[];
  /** GGUF name (with the `.weight` suffix). */
  ggufName: string;
  /** Logical PyTorch shape: [out, in] for matrices, [n] for norms. GGUF dims are the reverse. */
  shape: number[];
  kind: TensorKind;
}

interface LayerTensorTemplate {
  role: TensorRole;
  hf: string;
  hfAliases?: string[];
  gguf: string;
  kind: TensorKind;
  shape: (c: ModelConfig) => number[];
  subNorm?: boolean;
}

// Order matches the on-disk order of the official checkpoints' layers.
const LAYER_TENSORS: LayerTensorTemplate[] = [
  { role: 'attn_norm', hf: 'input_layernorm', gguf: 'attn_norm', kind: 'norm', shape: (c) => [c.hidden] },
  { role: 'q', hf: 'self_attn.q_proj', gguf: 'attn_q', kind: 'ternary', shape: (c) => [c.heads * c.headDim, c.hidden] },
  { role: 'k', hf: 'self_attn.k_proj', gguf: 'attn_k', kind: 'ternary', shape: (c) => [c.kvHeads * c.headDim, c.hidden] },
  { role: 'v', hf: 'self_attn.v_proj', gguf: 'attn_v', kind: 'ternary', shape: (c) => [c.kvHeads * c.headDim, c.hidden] },
  {
    role: 'attn_sub_norm',
    hf: 'self_attn.attn_sub_norm',
    hfAliases: ['self_attn.inner_attn_ln'],
    gguf: 'attn_sub_norm',
    kind: 'norm',
    shape: (c) => [c.heads * c.headDim],
    subNorm: true,
  },
  { role: 'o', hf: 'self_attn.o_proj', gguf: 'attn_output', kind: 'ternary', shape: (c) => [c.hidden, c.heads * c.headDim] },
  { role: 'ffn_norm', hf: 'post_attention_layernorm', gguf: 'ffn_norm', kind: 'norm', shape: (c) => [c.hidden] },
  { role: 'gate', hf: 'mlp.gate_proj', gguf: 'ffn_gate', kind: 'ternary', shape: (c) => [c.intermediate, c.hidden] },
  { role: 'up', hf: 'mlp.up_proj', gguf: 'ffn_up', kind: 'ternary', shape: (c) => [c.intermediate, c.hidden] },
  {
    role: 'ffn_sub_norm',
    hf: 'mlp.ffn_sub_norm',
    hfAliases: ['mlp.ffn_layernorm'],
    gguf: 'ffn_sub_norm',
    kind: 'norm',
    shape: (c) => [c.intermediate],
    subNorm: true,
  },
  { role: 'down', hf: 'mlp.down_proj', gguf: 'ffn_down', kind: 'ternary', shape: (c) => [c.hidden, c.intermediate] },
];

/** The tensors of one decoder layer, in file order. */
export function layerTensors(config: ModelConfig, layer: number): TensorSpec[] {
  return LAYER_TENSORS.filter((t) => config.subNorms || !t.subNorm).map((t) => ({
    role: t.role,
    layer,
    hfName: `model.layers.${layer}.${t.hf}.weight`,
    hfAliases: (t.hfAliases ?? []).map((alias) => `model.layers.${layer}.${alias}.weight`),
    ggufName: `blk.${layer}.${t.gguf}.weight`,
    shape: t.shape(config),
    kind: t.kind,
  }));
}

/** Every tensor of the model: embedding, layers in order, final norm, untied LM head last. */
export function modelTensors(config: ModelConfig): TensorSpec[] {
  const tensors: TensorSpec[] = [
    global('embed', 'model.embed_tokens.weight', 'token_embd.weight', [config.vocab, config.hidden], 'embedding'),
  ];
  for (let layer = 0; layer < config.layers; layer++) tensors.push(...layerTensors(config, layer));
  tensors.push(global('final_norm', 'model.norm.weight', 'output_norm.weight', [config.hidden], 'norm'));
  if (!config.tiedEmbeddings) tensors.push(global('lm_head', 'lm_head.weight', 'output.weight', [config.vocab, config.hidden], 'embedding'));
  return tensors;
}

function global(role: TensorRole, hfName: string, ggufName: string, shape: number[], kind: TensorKind): TensorSpec {
  return { role, layer: null, hfName, hfAliases: [], ggufName, shape, kind };
}

/** GGUF dims (ne0 first) of a tensor: the logical shape reversed. */
export function ggufDims(spec: TensorSpec): number[] {
  return [...spec.shape].reverse();
}

/** Number of elements of a logical shape. */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Options that override what a config file implies. */
export interface ConfigOverrides {
  /** Force the FFN activation (default: inferred, see configFromHf / configFromGguf). */
  activation?: Activation;
  /** Force presence/absence of sub-norms (default: inferred from the architecture). */
  subNorms?: boolean;
}

/** Raised when a config describes something this engine cannot represent. */
export class ModelConfigError extends Error {
  constructor(
    readonly source: string,
    problem: string,
  ) {
    super(`${source}: ${problem}`);
    this.name = 'ModelConfigError';
  }
}

/** Architectures whose HF checkpoints are BitNet decoders (sub-norms present). */
const BITNET_HF_ARCHITECTURES = ['BitNetForCausalLM', 'BitnetForCausalLM'];

/**
 * Builds a ModelConfig from a parsed HF config.json.
 *
 * Activation: `hidden_act` ('relu2' or 'silu'); sub-norms: present for BitNet*ForCausalLM,
 * absent for LlamaForCausalLM (which must carry a bitnet quantization_config).
 * Defaults: num_key_value_heads = num_attention_heads, head_dim = hidden/heads,
 * max_position_embeddings 2048, rope_theta 10000, rms_norm_eps 1e-6 (the transformers class
 * defaults), tie_word_embeddings false.
 * EOS ids are the union of config.json's and generation_config.json's eos_token_id.
 * @param json parsed config.json
 * @param source file name used in error messages
 * @param generationConfig parsed generation_config.json, when the model has one
 */
export function configFromHf(json: unknown, source: string, overrides: ConfigOverrides = {}, generationConfig?: unknown): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ModelConfigError(source, 'config is not a JSON object');
  const c = json as Record<string, unknown>;
  const architectures = Array.isArray(c.architectures) ? c.architectures : [];
  const architecture = typeof architectures[0] === 'string' ? architectures[0] : '';
  let subNorms: boolean;
  if (BITNET_HF_ARCHITECTURES.includes(architecture)) subNorms = true;
  else if (architecture === 'LlamaForCausalLM') {
    const quant = c.quantization_config as Record<string, unknown> | undefined;
    if (quant?.quant_method !== 'bitnet') throw new ModelConfigError(source, 'LlamaForCausalLM without a bitnet quantization_config is not a ternary model');
    subNorms = false;
  } else throw new ModelConfigError(source, `unsupported architecture '${architecture || '(missing)'}'`);

  const hidden = positiveInt(c, 'hidden_size', source);
  const heads = positiveInt(c, 'num_attention_heads', source);
  const hiddenAct = c.hidden_act ?? (subNorms ? 'relu2' : 'silu');
  if (hiddenAct !== 'relu2' && hiddenAct !== 'silu') throw new ModelConfigError(source, `unsupported hidden_act '${String(hiddenAct)}'`);
  if (c.rope_scaling !== undefined && c.rope_scaling !== null) throw new ModelConfigError(source, 'rope_scaling is not supported');
  const generationEos = (generationConfig as Record<string, unknown> | undefined)?.eos_token_id;
  const config: ModelConfig = {
    hidden,
    intermediate: positiveInt(c, 'intermediate_size', source),
    layers: positiveInt(c, 'num_hidden_layers', source),
    heads,
    kvHeads: c.num_key_value_heads === undefined ? heads : positiveInt(c, 'num_key_value_heads', source),
    headDim: c.head_dim === undefined || c.head_dim === null ? hidden / heads : positiveInt(c, 'head_dim', source),
    vocab: positiveInt(c, 'vocab_size', source),
    maxPositions: c.max_position_embeddings === undefined ? 2048 : positiveInt(c, 'max_position_embeddings', source),
    ropeTheta: c.rope_theta === undefined ? 10000 : positiveNumber(c, 'rope_theta', source),
    ropeLayout: 'rotate-half',
    rmsEps: c.rms_norm_eps === undefined ? 1e-6 : positiveNumber(c, 'rms_norm_eps', source),
    activation: overrides.activation ?? hiddenAct,
    subNorms: overrides.subNorms ?? subNorms,
    tiedEmbeddings: c.tie_word_embeddings === true,
    bosTokenId: typeof c.bos_token_id === 'number' ? c.bos_token_id : null,
    eosTokenIds: [...new Set([...tokenIds(c.eos_token_id), ...tokenIds(generationEos)])],
  };
  validateConfig(config, source);
  return config;
}

/** How an HF checkpoint's packed ternary linears relate to their weight_scale. */
export interface HfQuantization {
  /** 'multiply': W = Wt * weight_scale (autobitlinear); 'divide': W = Wt / weight_scale (bitlinear). */
  weightScale: WeightScaleMeaning;
}

/**
 * Reads quantization_config: linear_class 'autobitlinear' multiplies by weight_scale, anything
 * else (absent or 'bitlinear') divides (reference 2.4). quantization_mode is not consulted:
 * readers tell packed from master weights by each tensor's dtype.
 */
export function hfQuantization(json: unknown): HfQuantization {
  const quant = ((json as Record<string, unknown>)?.quantization_config ?? {}) as Record<string, unknown>;
  return {
    weightScale: quant.linear_class === 'autobitlinear' ? 'multiply' : 'divide',
  };
}

/** A GGUF metadata lookup, so this module does not depend on the GGUF reader. */
export type MetadataLookup = (key: string) => unknown;

/** GGUF architecture strings this engine reads. */
export const GGUF_ARCHITECTURES = ['bitnet', 'bitnet-25', 'bitnet-b1.58', 'llama'] as const;

/**
 * Builds a ModelConfig from GGUF metadata.
 *
 * Activation: `{arch}.hidden_activation` when present; otherwise by model identity, not by arch
 * string (reference 3f): arch 'llama' is SiLU; bitnet archs with the Llama-3 vocabulary
 * (>= 128000 tokens, the 2B4T family) are ReLU², other bitnet archs (1bitLLM) SiLU.
 * Sub-norms: present iff blk.0.attn_sub_norm.weight exists. Tied: no output.weight tensor.
 * @param lookup metadata value by key (numbers may be number or bigint)
 * @param tensorNames names of all tensors in the file
 * @param source file name used in error messages
 */
export function configFromGguf(lookup: MetadataLookup, tensorNames: ReadonlySet<string>, source: string, overrides: ConfigOverrides = {}): ModelConfig {
  const arch = lookup('general.architecture');
  if (typeof arch !== 'string' || !(GGUF_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new ModelConfigError(source, `unsupported general.architecture '${String(arch)}'`);
  }
  const num = (key: string, fallback?: number): number => {
    const raw = lookup(key);
    if (raw === undefined && fallback !== undefined) return fallback;
    const value = typeof raw === 'bigint' ? Number(raw) : raw;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new ModelConfigError(source, `metadata '${key}' missing or not a positive number`);
    return value;
  };
  const int = (key: string, fallback?: number): number => {
    const value = num(key, fallback);
    if (!Number.isSafeInteger(value)) throw new ModelConfigError(source, `metadata '${key}' is not an integer`);
    return value;
  };
  const keys = ggufConfigKeys(arch);
  const hidden = int(keys.hidden);
  const heads = int(keys.heads);
  const tokens = lookup('tokenizer.ggml.tokens');
  const vocab = int(keys.vocab, Array.isArray(tokens) ? tokens.length : undefined);
  const headDim = int(keys.keyLength, hidden / heads);
  const ropeDims = int(keys.ropeDims, headDim);
  if (ropeDims !== headDim) throw new ModelConfigError(source, `partial rotary (rope.dimension_count ${ropeDims} != head dim ${headDim}) is not supported`);
  const declared = lookup(keys.activation);
  let activation: Activation;
  if (declared !== undefined) {
    if (declared !== 'relu2' && declared !== 'silu') throw new ModelConfigError(source, `unsupported ${keys.activation} '${String(declared)}'`);
    activation = declared;
  } else activation = arch !== 'llama' && vocab >= 128000 ? 'relu2' : 'silu';
  const tokenId = (key: string): number | undefined => {
    const raw = lookup(key);
    return raw === undefined ? undefined : Number(raw);
  };
  const bos = tokenId(GGUF_TOKEN_KEYS.bos);
  const config: ModelConfig = {
    hidden,
    intermediate: int(keys.intermediate),
    layers: int(keys.layers),
    heads,
    kvHeads: int(keys.kvHeads, heads),
    headDim,
    vocab,
    maxPositions: int(keys.maxPositions, 2048),
    ropeTheta: num(keys.ropeTheta, 10000),
    ropeLayout: arch === 'llama' ? 'interleaved' : 'rotate-half',
    rmsEps: num(keys.rmsEps),
    activation: overrides.activation ?? activation,
    subNorms: overrides.subNorms ?? tensorNames.has('blk.0.attn_sub_norm.weight'),
    tiedEmbeddings: !tensorNames.has('output.weight'),
    bosTokenId: bos ?? null,
    eosTokenIds: [tokenId(GGUF_TOKEN_KEYS.eos), tokenId(GGUF_TOKEN_KEYS.eot)].filter((id): id is number => id !== undefined),
  };
  validateConfig(config, source);
  return config;
}

/** GGUF metadata keys of the model shape for architecture `arch` (shared by readers and writers). */
export function ggufConfigKeys(arch: string) {
  return {
    hidden: `${arch}.embedding_length`,
    intermediate: `${arch}.feed_forward_length`,
    layers: `${arch}.block_count`,
    heads: `${arch}.attention.head_count`,
    kvHeads: `${arch}.attention.head_count_kv`,
    keyLength: `${arch}.attention.key_length`,
    ropeDims: `${arch}.rope.dimension_count`,
    vocab: `${arch}.vocab_size`,
    maxPositions: `${arch}.context_length`,
    ropeTheta: `${arch}.rope.freq_base`,
    rmsEps: `${arch}.attention.layer_norm_rms_epsilon`,
    activation: `${arch}.hidden_activation`,
  };
}

/** GGUF keys of the special token ids. */
export const GGUF_TOKEN_KEYS = { bos: 'tokenizer.ggml.bos_token_id', eos: 'tokenizer.ggml.eos_token_id', eot: 'tokenizer.ggml.eot_token_id' };

/**
 * The HF config.json describing `config` (inverse of configFromHf). eos_token_id is the first
 * EOS id, as in the official config; generation_config.json carries the full list.
 * @param quantizationConfig written verbatim as quantization_config
 */
export function hfConfigJson(config: ModelConfig, quantizationConfig: Record<string, unknown>): Record<string, unknown> {
  return {
    architectures: [config.subNorms ? 'BitNetForCausalLM' : 'LlamaForCausalLM'],
    model_type: config.subNorms ? 'bitnet' : 'llama',
    hidden_size: config.hidden,
    intermediate_size: config.intermediate,
    num_hidden_layers: config.layers,
    num_attention_heads: config.heads,
    num_key_value_heads: config.kvHeads,
    ...(config.headDim * config.heads === config.hidden ? {} : { head_dim: config.headDim }),
    vocab_size: config.vocab,
    max_position_embeddings: config.maxPositions,
    rope_theta: config.ropeTheta,
    rms_norm_eps: config.rmsEps,
    hidden_act: config.activation,
    tie_word_embeddings: config.tiedEmbeddings,
    bos_token_id: config.bosTokenId,
    eos_token_id: config.eosTokenIds[0] ?? null,
    attention_bias: false,
    torch_dtype: 'bfloat16',
    quantization_config: quantizationConfig,
  };
}

/** Checks internal consistency; throws ModelConfigError naming the first problem. */
export function validateConfig(c: ModelConfig, source: string): void {
  for (const key of ['hidden', 'intermediate', 'layers', 'heads', 'kvHeads', 'headDim', 'vocab', 'maxPositions'] as const) {
    if (!Number.isSafeInteger(c[key]) || c[key] <= 0) throw new ModelConfigError(source, `${key} must be a positive integer, got ${c[key]}`);
  }
  if (c.heads % c.kvHeads !== 0) throw new ModelConfigError(source, `heads (${c.heads}) is not a multiple of kvHeads (${c.kvHeads})`);
  if (c.headDim % 2 !== 0) throw new ModelConfigError(source, `headDim (${c.headDim}) must be even for RoPE`);
  if (!(c.rmsEps > 0) || !(c.ropeTheta > 0)) throw new ModelConfigError(source, 'rmsEps and ropeTheta must be positive');
  for (const id of [c.bosTokenId, ...c.eosTokenIds]) {
    if (id !== null && (!Number.isSafeInteger(id) || id < 0 || id >= c.vocab)) throw new ModelConfigError(source, `special token id ${id} outside the vocabulary of ${c.vocab}`);
  }
}

/** Named shapes. 'tiny' and 'small' use the synthetic tokenizer's vocabulary size. */
export type PresetName = 'tiny' | 'small' | '2b4t';

/** Vocabulary of the generator's synthetic tokenizer: 256 bytes + 25 merges + 256 specials. */
export const SYNTHETIC_VOCAB = 537;

/**
 * Preset shapes. Every ternary in-dimension is a multiple of 256 so that all formats
 * (TQ1_0/TQ2_0 need 256) can hold them; 'tiny' keeps k/v at 64 rows (not a multiple of 128)
 * and an odd vocabulary so that row padding paths are exercised.
 */
export function presetConfig(name: PresetName): ModelConfig {
  const synthetic = { bosTokenId: SYNTHETIC_VOCAB - 256, eosTokenIds: [SYNTHETIC_VOCAB - 255, SYNTHETIC_VOCAB - 247] };
  const common = { ropeLayout: 'rotate-half' as const, activation: 'relu2' as const, subNorms: true, tiedEmbeddings: true, rmsEps: 1e-5, ropeTheta: 500000 };
  switch (name) {
    case 'tiny':
      return { ...common, ...synthetic, hidden: 256, intermediate: 768, layers: 2, heads: 8, kvHeads: 2, headDim: 32, vocab: SYNTHETIC_VOCAB, maxPositions: 256 };
    case 'small':
      return { ...common, ...synthetic, hidden: 768, intermediate: 2048, layers: 4, heads: 12, kvHeads: 4, headDim: 64, vocab: SYNTHETIC_VOCAB, maxPositions: 1024 };
    case '2b4t':
      return { ...common, hidden: 2560, intermediate: 6912, layers: 30, heads: 20, kvHeads: 5, headDim: 128, vocab: 128256, maxPositions: 4096, bosTokenId: 128000, eosTokenIds: [128001, 128009] };
  }
}

function positiveInt(c: Record<string, unknown>, key: string, source: string): number {
  const v = c[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw new ModelConfigError(source, `'${key}' missing or not a positive integer`);
  return v;
}

function positiveNumber(c: Record<string, unknown>, key: string, source: string): number {
  const v = c[key];
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw new ModelConfigError(source, `'${key}' missing or not a positive number`);
  return v;
}

function tokenIds(value: unknown): number[] {
  if (typeof value === 'number') return [value];
  return Array.isArray(value) ? value.filter((e): e is number => typeof e === 'number') : [];
}
