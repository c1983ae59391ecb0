/** bitnet-gen: BitNet b1.58 ternary LLM inference on CPUs. */
export {
  layout,
  runnableIsas,
  activeIsa,
  cpuFeatures,
  defaultThreadCount,
  paddedLength,
  packTernary,
  allocAligned,
  TernaryMatrix,
  Runtime,
} from './kernels';
export type { RuntimeOptions, TernaryTarget, QuantizedActivations, AttentionShape, OffCpuThread } from './kernels';

// Models and generation.
export { BitNetModel } from './engine/model';
export type { LoadOptions, SessionOptions } from './engine/model';
export { Session, GenerationStream } from './engine/session';
export type { GenerateOptions, GenerationChunk, GenerationResult, GenerationTimings, StopReason } from './engine/session';
export { convertModel, ensureConverted } from './engine/convert';
export { demoModelPath, DEMO_MODEL_NAME } from './engine/demo-model';
export { DEFAULT_SAMPLING } from './generation/sampler';
export type { SamplingOptions } from './generation/sampler';

// Tokenizer and chat formatting.
export * from './tokenizer';
export * from './chat';

// Model files.
export { openModel } from './formats/model-reader';
export type { ModelSource } from './formats/model-reader';
export { ModelFileError } from './formats/errors';
export { readBitplaneHeader, verifyBitplaneChecksums } from './formats/bitplane-file';
export type { ModelConfig, Activation } from './model/architecture';

// Hugging Face hub.
export * from './hub';
