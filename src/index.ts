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
export type { RuntimeOptions, TernaryTarget, QuantizedActivations, AttentionShape } from './kernels';
