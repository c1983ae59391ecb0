/**
 * Throughput measurements shared by `bitnet-gen bench` and the model benchmark (bench/model-bench.ts),
 * done the way llama-bench does them: pp = one batch of N tokens into an empty cache, tg = N
 * tokens fed one at a time into an empty cache, both on random token ids (the first one BOS).
 */
import { Rng } from '../generation/sampler';
import { outsideNativeShare } from '../engine/session';
import type { Session } from '../engine/session';

/** Mean and sample standard deviation (0 for a single value). */
export function meanAndStddev(values: readonly number[]): { mean: number; stddev: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.length > 1 ? values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1) : 0;
  return { mean, stddev: Math.sqrt(variance) };
}

/** The two llama-bench tests: prompt processing and text generation. */
export type BenchTestKind = 'pp' | 'tg';

/** llama-bench's name of a test: "pp512", "tg128". */
export function benchTestName(kind: BenchTestKind, tokens: number): string {
  return `${kind}${tokens}`;
}

/**
 * `count` random token ids below `vocab`, the first one `bosId`, as llama-bench feeds them.
 * @param seed PRNG seed. Default 42.
 */
export function randomBenchTokens(count: number, bosId: number, vocab: number, seed = 42): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, i) => (i === 0 ? bosId : Math.floor(rng.next() * vocab)));
}

/**
 * Runs one test on `session` from an empty cache and returns its tokens per second: pp evaluates
 * `tokens` as one batch, tg evaluates them one at a time; each evaluation computes the last
 * token's logits, as a generation step does.
 */
export async function measureSessionTest(session: Session, kind: BenchTestKind, tokens: readonly number[]): Promise<number> {
  session.reset();
  const started = performance.now();
  if (kind === 'pp') await session.evaluate(tokens);
  else for (const token of tokens) await session.evaluate([token]);
  return tokens.length / ((performance.now() - started) / 1000);
}

/** What {@link measureGeneration} reports. */
export interface GenerationMeasurement {
  tokensPerSecond: number;
  /** Share of the generation's wall time spent outside the native forward passes. */
  outsideNativeShare: number;
}

/**
 * Generates `count` tokens after a BOS with the default sampling (the path `bitnet-gen "prompt"`
 * takes: sampling, stop checks and detokenizing in JS between native steps) from an empty cache.
 * @param seed sampling seed. Default 1.
 */
export async function measureGeneration(session: Session, bosId: number, count: number, seed = 1): Promise<GenerationMeasurement> {
  session.reset();
  const { timings } = await session.generate([bosId], { maxTokens: count, stopAtEos: false, seed }).result;
  // No forward pass ran (count <= 1): everything was outside.
  return { tokensPerSecond: timings.tokensPerSecond, outsideNativeShare: outsideNativeShare(timings) ?? 1 };
}

/** A markdown table as llama-bench prints it: columns from `rightAlignFrom` on are right-aligned. */
export function formatMarkdownTable(header: readonly string[], rows: readonly (readonly string[])[], rightAlignFrom: number): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (cells: readonly string[]) => `| ${cells.map((c, i) => (i >= rightAlignFrom ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i >= rightAlignFrom ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [fmt(header), rule, ...rows.map(fmt)].join('\n');
}

export function formatHugePageShare(share: number): string {
  return `${(100 * share).toFixed(1)} % of the streamed weights in 2 MB pages`;
}
