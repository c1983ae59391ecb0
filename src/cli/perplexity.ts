/**
 * `bitnet-gen perplexity MODEL FILE`: perplexity over a text file as llama-perplexity computes
 * it: the tokens are cut into windows of --ctx tokens, each window starts with BOS in place of
 * its first token, is evaluated in one forward pass with the logits of every position, and only
 * the second half of each window is scored (the first half is context).
 */
import * as fs from 'fs';
import { Command } from 'commander';
import { BitNetModel } from '../engine/model';
import { CliError, write } from './io';
import type { CliIo } from './io';
import { integerIn, isaOption } from './options';
import { resolveModel } from './model-source';

/** Default of --ctx (llama-perplexity's). */
export const DEFAULT_PERPLEXITY_CTX = 512;

/** Perplexity of a text, with llama-perplexity's error estimate. */
export interface PerplexityResult {
  perplexity: number;
  /** One standard error of the perplexity. */
  error: number;
  /** Perplexity after each window (cumulative). */
  perChunk: number[];
  tokens: number;
  scoredTokens: number;
  ctx: number;
}

/** -log softmax(row)[target], computed stably in f64. */
export function negativeLogLikelihood(logits: Float32Array, offset: number, vocab: number, target: number): number {
  let max = -Infinity;
  for (let i = offset; i < offset + vocab; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = offset; i < offset + vocab; i++) sum += Math.exp(logits[i] - max);
  return Math.log(sum) + max - logits[offset + target];
}

/** Computes perplexity over `text`; `onChunk` sees the running value after each window. */
export async function perplexity(model: BitNetModel, text: string, ctx: number, maxChunks: number,
                                 onChunk?: (chunk: number, chunks: number, ppl: number) => void): Promise<PerplexityResult> {
  const tokens = model.tokenizer.encode(text, { addBos: false });
  const chunks = Math.min(Math.floor(tokens.length / ctx), maxChunks);
  if (chunks === 0) throw new CliError(`the text has ${tokens.length} tokens, fewer than one window of --ctx ${ctx}; use a smaller --ctx or a longer text`);
  const session = model.createSession({ contextSize: ctx });
  const first = Math.floor(ctx / 2);
  let nll = 0;
  let nll2 = 0;
  let count = 0;
  const perChunk: number[] = [];
  for (let c = 0; c < chunks; c++) {
    const window = tokens.slice(c * ctx, (c + 1) * ctx);
    if (model.tokenizer.addBosByDefault) window[0] = model.tokenizer.bosId;
    session.reset();
    const logits = await session.evaluate(window, { allLogits: true });
    for (let j = first; j < ctx - 1; j++) {
      const v = negativeLogLikelihood(logits, j * model.vocab, model.vocab, window[j + 1]);
      nll += v;
      nll2 += v * v;
      count++;
    }
    perChunk.push(Math.exp(nll / count));
    onChunk?.(c + 1, chunks, perChunk[c]);
  }
  const mean = nll / count;
  const variance = count > 1 ? (nll2 / count - mean * mean) / (count - 1) : 0;
  const ppl = Math.exp(mean);
  return { perplexity: ppl, error: ppl * Math.sqrt(Math.max(variance, 0)), perChunk, tokens: tokens.length, scoredTokens: count, ctx };
}

interface PerplexityCliOptions {
  ctx: number;
  chunks?: number;
  threads?: number;
  isa: string;
  json: boolean;
  verbose: boolean;
}

/** Runs `perplexity`. */
export async function runPerplexity(spec: string, textFile: string, options: PerplexityCliOptions, io: CliIo): Promise<void> {
  let text: string;
  try {
    text = fs.readFileSync(textFile, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read ${textFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const file = await resolveModel(spec, io);
  const model = await BitNetModel.load(file, { threads: options.threads, isa: options.isa, maxContext: options.ctx });
  const result = await perplexity(model, text, options.ctx, options.chunks ?? Infinity, (chunk, chunks, ppl) => {
    if (!options.json) io.stdout.write(`[${chunk}/${chunks}] ${ppl.toFixed(4)}\n`);
  });
  await write(io.stdout, options.json
    ? `${JSON.stringify(result)}\n`
    : `PPL = ${result.perplexity.toFixed(4)} +/- ${result.error.toFixed(5)} (${result.scoredTokens} tokens scored in windows of ${result.ctx})\n`);
}

/** Adds the `perplexity` command. */
export function addPerplexityCommand(program: Command, io: CliIo): void {
  program.command('perplexity')
    .description('perplexity of a model over a text file, as llama-perplexity computes it')
    .argument('<model>', 'bit-plane model file, Hugging Face model folder, .gguf file, or hub repo id')
    .argument('<file>', 'UTF-8 text file (e.g. wiki.test.raw)')
    .option('-c, --ctx <n>', 'window size in tokens; the second half of each window is scored', integerIn(4), DEFAULT_PERPLEXITY_CTX)
    .option('--chunks <n>', 'score at most this many windows (default: all)', integerIn(1))
    .option('-t, --threads <n>', 'worker threads (default: BITNET_THREADS, else the CPUs available)', integerIn(1, 1024))
    .addOption(isaOption())
    .option('--json', 'print one JSON object', false)
    .option('-v, --verbose', 'stack traces on errors', false)
    .action((spec: string, textFile: string, options: PerplexityCliOptions) => runPerplexity(spec, textFile, options, io));
}
