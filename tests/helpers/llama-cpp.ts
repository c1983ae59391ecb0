/**
 * Runs llama.cpp (through the node-llama-cpp package and its prebuilt CPU binary) on token ids
 * and returns its next-token log-probabilities: node-llama-cpp 3.21 exposes the full softmax
 * (`generateNext.probabilities`; raw logits only from 3.22, which this registry lacks for
 * macOS/Windows, see docs/llama-cpp-comparison.md). Log-probabilities are the logits minus
 * their log-sum-exp, so they compare with ours after the same shift. node-llama-cpp is ESM with top-level await, which neither jest's
 * CommonJS runtime nor require() can load, so it runs in a child Node process that prints JSON.
 * The child runs a script file, not `node -e`: node-llama-cpp tests its binary in a fork(), which
 * inherits execArgv and would re-run an `-e` script instead of its own.
 */
import { execFile, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { pathToFileURL } from 'url';

/** What llama.cpp computed after the prompt and after each fed token. */
export interface LlamaCppRun {
  /** Architecture string llama.cpp read from the GGUF. */
  architecture: string;
  /**
   * logProbs[i]: natural-log probabilities over the vocabulary of the token after
   * prompt + fed[0..i), from llama.cpp's f32 softmax (-Infinity where it underflowed to 0).
   */
  logProbs: Float64Array[];
}

/** Options of {@link runLlamaCpp}. */
export interface LlamaCppRunOptions {
  /** GGUF file to load. */
  model: string;
  /** Prompt token ids, evaluated as one batch. */
  prompt: readonly number[];
  /**
   * Tokens fed one at a time after the prompt; null feeds llama.cpp's own greedy choice (its
   * most probable token, lowest id on ties). Default: none.
   */
  feed?: readonly (number | null)[];
  /** CPU threads. Default 2. */
  threads?: number;
}

/** Argmax, lowest index on ties (the same rule for both engines' logits). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

// The child: argv[2] is node-llama-cpp's entry URL, argv[3] the options as JSON (no `model`
// means: only check that the binary loads). Prints one JSON line.
const RUNNER = String.raw`
const options = JSON.parse(process.argv[3]);
const report = (value) => process.stdout.write(JSON.stringify(value) + '\n');
let llama;
try {
  const { getLlama } = await import(process.argv[2]);
  // build: 'never' = prebuilt binaries only, never a compile from source.
  llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error', maxThreads: options.threads });
} catch (error) {
  report({ unavailable: String((error && error.stack) || error) });
  process.exit(0);
}
if (options.model === undefined) {
  report({ release: llama.llamaCppRelease.release });
  process.exit(0);
}
const model = await llama.loadModel({ modelPath: options.model, gpuLayers: 0 });
const architecture = model.fileInfo.metadata.general.architecture;
const vocab = model.fileInfo.metadata[architecture].vocab_size;
const context = await model.createContext({ contextSize: options.prompt.length + options.feed.length + 8, threads: options.threads });
const sequence = context.getSequence();
// The default sampler options are greedy, and with them node-llama-cpp reports the softmax of the
// raw logits over the whole vocabulary (temperature, top-k/p and min-p would reshape it).
const evaluate = async (tokens) => {
  const input = tokens.map((token, i) => (i === tokens.length - 1 ? [token, { generateNext: { probabilities: true } }] : token));
  const sparse = (await sequence.controlledEvaluate(input))[tokens.length - 1].next.probabilities;
  if (sparse.size !== vocab) throw new Error('llama.cpp returned ' + sparse.size + ' probabilities, expected ' + vocab);
  const dense = new Array(vocab);
  for (const [token, probability] of sparse) dense[token] = probability;
  return dense;
};
const probabilities = [await evaluate(options.prompt)];
for (const fed of options.feed) {
  const last = probabilities[probabilities.length - 1];
  let token = fed;
  if (token === null) {
    token = 0;
    for (let i = 1; i < last.length; i++) if (last[i] > last[token]) token = i;
  }
  probabilities.push(await evaluate([token]));
}
report({ architecture, probabilities });
await llama.dispose();
`;

interface RunnerOutput {
  unavailable?: string;
  release?: string;
  architecture?: string;
  probabilities?: number[][];
}

/** Calls `use` with the node-llama-cpp entry URL and a runner script path, or returns null when the package is missing. */
function withRunner<T>(use: (entry: string, runner: string) => T): T | null {
  let entry: string;
  try {
    entry = pathToFileURL(require.resolve('node-llama-cpp')).href;
  } catch {
    return null;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llama-cpp-runner-'));
  const runner = path.join(dir, 'runner.mjs');
  fs.writeFileSync(runner, RUNNER);
  const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
  try {
    const result = use(entry, runner);
    if (result instanceof Promise) return result.finally(cleanup) as T;
    cleanup();
    return result;
  } catch (error) {
    cleanup();
    throw error;
  }
}

function parseOutput(stdout: string, stderr: string): RunnerOutput {
  try {
    return JSON.parse(stdout.trim().split('\n').pop() ?? '') as RunnerOutput;
  } catch (error) {
    throw new Error(`llama.cpp runner printed no result (${(error as Error).message}):\n${stdout}\n${stderr}`);
  }
}

/** Where node-llama-cpp's prebuilt CPU binary loads: the llama.cpp release it bundles. */
export interface LlamaCppAvailable {
  available: true;
  release: string;
}

/** Why node-llama-cpp cannot run here (package not installed, or no usable prebuilt binary). */
export interface LlamaCppUnavailable {
  available: false;
  reason: string;
}

/** Synchronously checks that node-llama-cpp's prebuilt CPU binary loads on this machine (about 1 s). */
export function probeLlamaCpp(): LlamaCppAvailable | LlamaCppUnavailable {
  const outcome = withRunner((entry, runner) => {
    const child = spawnSync(process.execPath, [runner, entry, JSON.stringify({ threads: 1 })], { encoding: 'utf8' });
    if (child.status !== 0) return { unavailable: `runner exited with ${child.status ?? child.signal}: ${child.stderr}` };
    return parseOutput(child.stdout, child.stderr);
  });
  if (outcome === null) return { available: false, reason: 'node-llama-cpp is not installed' };
  if (outcome.unavailable !== undefined || outcome.release === undefined) return { available: false, reason: outcome.unavailable ?? 'no release reported' };
  return { available: true, release: outcome.release };
}

/**
 * Evaluates `options.prompt`, then `options.feed` one token at a time, in llama.cpp (CPU, prebuilt
 * binary) and returns its log-probabilities after each step. Throws if node-llama-cpp cannot run or the
 * model fails to load or evaluate; check {@link probeLlamaCpp} first.
 */
export async function runLlamaCpp(options: LlamaCppRunOptions): Promise<LlamaCppRun> {
  const args = { threads: 2, feed: [], ...options, model: path.resolve(options.model) };
  const output = await withRunner((entry, runner) => new Promise<RunnerOutput>((resolve, reject) => {
    execFile(process.execPath, [runner, entry, JSON.stringify(args)], { maxBuffer: 256 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`llama.cpp runner failed (${error.message.split('\n')[0]}):\n${stderr}`));
      else {
        try {
          resolve(parseOutput(stdout, stderr));
        } catch (parseError) {
          reject(parseError);
        }
      }
    });
  }));
  if (output === null) throw new Error('node-llama-cpp is not installed');
  if (output.unavailable !== undefined) throw new Error(`node-llama-cpp cannot run here: ${output.unavailable}`);
  return { architecture: output.architecture ?? '', logProbs: (output.probabilities ?? []).map((p) => Float64Array.from(p, Math.log)) };
}
