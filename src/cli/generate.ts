/** The default command: `bitnet-gen "prompt"` streams the model's answer to stdout. */
import { Command } from 'commander';
import { DEFAULT_SAMPLING } from '../generation/sampler';
import { outsideNativeShare } from '../engine/session';
import type { GenerateOptions, GenerationResult } from '../engine/session';
import { CliError, readAll, terminalSafe, write } from './io';
import type { CliIo } from './io';
import { addModelOptions, collect, integerIn, loadModel, numberIn } from './options';
import type { ModelOptions } from './options';

/** Default of --max-tokens. */
export const DEFAULT_MAX_TOKENS = 256;

/** Sampling and stopping options shared by the default command and `chat`. */
export interface SamplingCliOptions {
  system?: string;
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repeatPenalty: number;
  seed?: number;
  stop?: string[];
  ignoreEos: boolean;
}

/** Adds the sampling options (with llama.cpp's defaults) to a command. */
export function addSamplingOptions(command: Command): Command {
  return command
    .option('-s, --system <text>', 'system message (chat mode only)')
    .option('-n, --max-tokens <n>', 'most tokens to generate', integerIn(0), DEFAULT_MAX_TOKENS)
    .option('--temperature <t>', 'sampling temperature; 0 = greedy', numberIn(0, 100), DEFAULT_SAMPLING.temperature)
    .option('--top-k <k>', 'keep the k most likely tokens; 0 = off', integerIn(0), DEFAULT_SAMPLING.topK)
    .option('--top-p <p>', 'nucleus sampling threshold; 1 = off', numberIn(0, 1), DEFAULT_SAMPLING.topP)
    .option('--min-p <p>', 'drop tokens below p x the top probability; 0 = off', numberIn(0, 1), DEFAULT_SAMPLING.minP)
    .option('--repeat-penalty <r>', 'penalty on recently seen tokens; 1 = off', numberIn(0.01, 100), DEFAULT_SAMPLING.repeatPenalty)
    .option('--seed <n>', 'random seed (default: random; printed with --verbose and --json)', integerIn(0, 0xffffffff))
    .option('--stop <text>', 'stop before this text (repeatable)', collect)
    .option('--ignore-eos', 'keep generating past end-of-sequence tokens (for benchmarks)', false);
}

/** The engine's generation options from the CLI's. */
export function generateOptions(options: SamplingCliOptions, signal?: AbortSignal): GenerateOptions {
  return {
    maxTokens: options.maxTokens,
    temperature: options.temperature,
    topK: options.topK,
    topP: options.topP,
    minP: options.minP,
    repeatPenalty: options.repeatPenalty,
    seed: options.seed,
    stop: options.stop,
    stopAtEos: !options.ignoreEos,
    signal,
  };
}

/** One line of timings, as --verbose prints them. */
export function timingsLine(result: GenerationResult): string {
  const t = result.timings;
  const outside = outsideNativeShare(t);
  return `prompt: ${t.promptTokens} tokens (${t.reusedTokens} reused) in ${t.promptMs.toFixed(1)} ms, ${t.promptTokensPerSecond.toFixed(2)} tok/s | ` +
    `generated: ${t.generatedTokens} tokens in ${t.generateMs.toFixed(1)} ms, ${t.tokensPerSecond.toFixed(2)} tok/s ` +
    `(${outside === undefined ? 'n/a' : `${(100 * outside).toFixed(1)} %`} outside native code) | ` +
    `stop: ${result.stopReason} | seed: ${result.seed}`;
}

interface GenerateCliOptions extends ModelOptions, SamplingCliOptions {
  json?: boolean;
  raw?: boolean;
}

async function readPrompt(prompt: string | undefined, io: CliIo): Promise<string> {
  if (prompt === '-' || (prompt === undefined && !io.stdin.isTTY)) return readAll(io.stdin);
  if (prompt === undefined) throw new CliError('no prompt: pass one as an argument, or pipe it on stdin (see --help)');
  return prompt;
}

/** Runs the default command. */
export async function runGenerate(promptArg: string | undefined, options: GenerateCliOptions, io: CliIo): Promise<void> {
  const prompt = await readPrompt(promptArg, io);
  if (prompt.trim() === '') throw new CliError('the prompt is empty');
  if (options.system !== undefined && options.raw) throw new CliError('--system needs chat mode; leave out --raw');
  const model = await loadModel(options, io);
  const session = model.createSession({ contextSize: options.ctx });
  if (options.verbose) {
    await write(io.stderr, `model: ${model.path} (${model.runtime.isa}, ${model.runtime.threads} threads, context ${session.contextSize})\n`);
  }
  const abort = new AbortController();
  const onInterrupt = () => abort.abort();
  process.once('SIGINT', onInterrupt);
  try {
    const sampling = generateOptions(options, abort.signal);
    const stream = options.raw ? session.generate(prompt, sampling) : session.chat(prompt, { ...sampling, system: options.system });
    if (options.json) {
      const result = await stream.result;
      await write(io.stdout, `${JSON.stringify({ text: result.text, tokens: result.tokens, stopReason: result.stopReason, timings: result.timings, seed: result.seed })}\n`);
      return;
    }
    const show = io.stdout.isTTY ? terminalSafe : (text: string) => text;
    for await (const chunk of stream) if (chunk.text) await write(io.stdout, show(chunk.text));
    const result = await stream.result;
    await write(io.stdout, '\n');
    if (options.verbose) await write(io.stderr, `${timingsLine(result)}\n`);
  } finally {
    process.removeListener('SIGINT', onInterrupt);
  }
}

/** Sets up the root command as the generation command. */
export function configureGenerate(program: Command, io: CliIo): Command {
  addSamplingOptions(addModelOptions(program))
    .argument('[prompt]', "the prompt; '-' or none with piped stdin reads it from stdin")
    .option('--raw', 'plain completion of the prompt, without the chat template', false)
    .option('--json', 'print one JSON object {text, tokens, stopReason, timings, seed} instead of streaming', false)
    .action((prompt: string | undefined, options: GenerateCliOptions) => runGenerate(prompt, options, io));
  return program;
}
