/**
 * Our engine against an implementation nobody here wrote: llama.cpp, through node-llama-cpp's
 * prebuilt CPU binary, on the synthetic tiny model written as GGUF TQ2_0 with upstream's `bitnet`
 * architecture. Token ids go in directly on both sides (no tokenizers).
 *
 * The bundled llama.cpp hard-codes SiLU for `bitnet` and ignores `bitnet.hidden_activation`
 * (docs/llama-cpp-comparison.md has the source lines), so the agreement checks run our engine
 * with the activation overridden to SiLU, and a separate check shows the file's ReLU² departs.
 *
 * Metric (node-llama-cpp 3.21 reports probabilities, not logits): relative log-probability
 * error = max |ours - llama.cpp| / (max - min of llama.cpp's) over the log-probabilities of the
 * tokens llama.cpp gives p >= 1e-30 (well inside f32's normal range), at the prompt and at each of
 * STEPS steps fed with llama.cpp's greedy tokens (teacher forcing, so one early disagreement does
 * not decide every later step).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ensureSyntheticModel } from '../src/synth/generate';
import { presetConfig } from '../src/model/architecture';
import type { Activation } from '../src/model/architecture';
import { convertModel } from '../src/engine/convert';
import { BitNetModel } from '../src/engine/model';
import { native } from '../src/native';
import { argmax, probeLlamaCpp, runLlamaCpp } from './helpers/llama-cpp';
import type { LlamaCppRun } from './helpers/llama-cpp';

const llamaCpp = probeLlamaCpp();
if (!llamaCpp.available) console.warn(`llama.cpp comparison skipped: node-llama-cpp cannot load here: ${llamaCpp.reason}`);
const describeWithLlamaCpp = llamaCpp.available ? describe : describe.skip;

/** BOS + the bytes of "Hello, world" in the synthetic tokenizer. */
const PROMPT = [281, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100];
const STEPS = 32;
const SEEDS = [1, 2];

/** Our logits after the prompt and after each fed token (null = our own greedy token). */
async function runOurs(model: BitNetModel, feed: readonly (number | null)[]): Promise<Float32Array[]> {
  const session = new native.NativeSession(model.nativeModel, PROMPT.length + feed.length + 8);
  const step = async (tokens: readonly number[]) => {
    const logits = new Float32Array(model.vocab);
    await session.forward(model.runtime.native, Int32Array.from(tokens), logits);
    return logits;
  };
  const logits = [await step(PROMPT)];
  for (const token of feed) logits.push(await step([token ?? argmax(logits[logits.length - 1])]));
  return logits;
}

const LOG_PROB_FLOOR = Math.log(1e-30);

function logSoftmax(logits: Float32Array): Float64Array {
  const max = Math.max(...logits);
  const logSum = Math.log(logits.reduce((sum, l) => sum + Math.exp(l - max), 0)) + max;
  return Float64Array.from(logits, (l) => l - logSum);
}

function relativeError(oursLogits: Float32Array, theirLogProbs: Float64Array): number {
  const ours = logSoftmax(oursLogits);
  let error = 0, lowest = 0, highest = -Infinity;
  theirLogProbs.forEach((theirs, i) => {
    if (theirs < LOG_PROB_FLOOR) return;
    error = Math.max(error, Math.abs(ours[i] - theirs));
    lowest = Math.min(lowest, theirs);
    highest = Math.max(highest, theirs);
  });
  return error / (highest - lowest);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

function topK(scores: Float64Array, k: number): number[] {
  return Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a] || a - b).slice(0, k);
}

/** The leading run of `a` equal to `b`. */
function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

describeWithLlamaCpp(`llama.cpp ${llamaCpp.available ? llamaCpp.release : ''} (node-llama-cpp, CPU) on a tiny bitnet TQ2_0 GGUF`, () => {
  let workDir: string;
  const ggufs = new Map<number, string>();
  const greedy = new Map<number, LlamaCppRun>();
  const ours = new Map<string, BitNetModel>();

  beforeAll(async () => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'llama-cpp-compare-'));
    for (const seed of SEEDS) {
      const gguf = ensureSyntheticModel({ preset: 'tiny', seed, formats: ['gguf-tq2_0'] }).paths['gguf-tq2_0']!;
      ggufs.set(seed, gguf);
      greedy.set(seed, await runLlamaCpp({ model: gguf, prompt: PROMPT, feed: new Array<null>(STEPS).fill(null) }));
      for (const activation of ['silu', 'relu2'] as const) {
        const file = path.join(workDir, `tiny-${seed}-${activation}.bitnet`);
        convertModel(gguf, file, { lmHead: 'f16', overrides: { activation } });
        ours.set(`${seed}-${activation}`, await BitNetModel.load(file, { threads: 2 }));
      }
    }
  });
  afterAll(() => fs.rmSync(workDir, { recursive: true, force: true }));

  const oursFor = (seed: number, activation: Activation) => ours.get(`${seed}-${activation}`)!;
  const llamaTokens = (seed: number) => greedy.get(seed)!.logProbs.map(argmax);

  test('the bundled llama.cpp ignores bitnet.hidden_activation: the relu2 and silu files give identical probabilities', async () => {
    const seed = SEEDS[0];
    const relu2File = ggufs.get(seed)!;
    const siluFile = ensureSyntheticModel({ config: { ...presetConfig('tiny'), activation: 'silu' }, seed, formats: ['gguf-tq2_0'] }).paths['gguf-tq2_0']!;
    // Same tensors, only the metadata key differs; our reader takes the activation from it.
    const loadWithoutOverride = (gguf: string, name: string) => BitNetModel.load(convertModel(gguf, path.join(workDir, name), { lmHead: 'f16' }).output, { threads: 2 });
    const relu2Ours = await loadWithoutOverride(relu2File, 'key-relu2.bitnet');
    const siluOurs = await loadWithoutOverride(siluFile, 'key-silu.bitnet');
    expect([relu2Ours.config.activation, siluOurs.config.activation]).toEqual(['relu2', 'silu']);

    const feed = llamaTokens(seed).slice(0, STEPS);
    const fromRelu2 = greedy.get(seed)!;
    const fromSilu = await runLlamaCpp({ model: siluFile, prompt: PROMPT, feed });
    expect(fromRelu2.architecture).toBe('bitnet');
    expect(fromSilu.logProbs.map((l) => Array.from(l))).toEqual(fromRelu2.logProbs.map((l) => Array.from(l)));

    // The same experiment does detect the key in an engine that reads it.
    const oursRelu2 = await runOurs(relu2Ours, feed), oursSilu = await runOurs(siluOurs, feed);
    expect(median(oursRelu2.map((l, i) => relativeError(l, logSoftmax(oursSilu[i]))))).toBeGreaterThan(0.1);
  });

  test.each(SEEDS)('seed %i, SiLU on both sides: log-probabilities and greedy tokens track llama.cpp within its Q8_K/f16 numerics', async (seed) => {
    const theirs = greedy.get(seed)!.logProbs;
    const tokens = llamaTokens(seed);
    const model = oursFor(seed, 'silu');
    const forced = await runOurs(model, tokens.slice(0, STEPS));
    const errors = forced.map((l, i) => relativeError(l, theirs[i]));
    const agree = forced.filter((l, i) => argmax(l) === tokens[i]).length;
    const inTop3 = forced.filter((l, i) => topK(theirs[i], 3).includes(argmax(l))).length;
    const free = (await runOurs(model, new Array<null>(STEPS).fill(null))).map(argmax);
    const measured = { medianError: median(errors), maxError: Math.max(...errors), agree, inTop3, identicalPrefix: commonPrefix(free, tokens) };
    console.log(`seed ${seed} vs llama.cpp over ${STEPS + 1} steps: ${JSON.stringify(measured)}`);
    // Bounds from 8 measured runs (seeds 1-4 x two prompts): median error 0.012-0.021, top-1
    // agreement 29-32/33, our top-1 in llama.cpp's top-3 31-33/33, identical free-running
    // prefix 5-26 tokens. llama.cpp quantizes activations to Q8_K (absmax per 256-block, not
    // BitNet's per token) and rounds the attention query and the LM-head input to f16; a plain
    // reference doing exactly that matched llama.cpp to a median error of 2e-5 (see the doc).
    // These random untrained models amplify each int8 rounding flip, hence percent-level gaps.
    expect(measured.medianError).toBeLessThan(0.04);
    expect(measured.agree).toBeGreaterThanOrEqual(28);
    expect(measured.inTop3).toBeGreaterThanOrEqual(30);
    expect(measured.identicalPrefix).toBeGreaterThanOrEqual(5);
  });

  test("with the file's ReLU², ours departs from llama.cpp (its bitnet graph runs SiLU)", async () => {
    const seed = SEEDS[0];
    const tokens = llamaTokens(seed);
    const forced = await runOurs(oursFor(seed, 'relu2'), tokens.slice(0, STEPS));
    const errors = forced.map((l, i) => relativeError(l, greedy.get(seed)!.logProbs[i]));
    const agree = forced.filter((l, i) => argmax(l) === tokens[i]).length;
    console.log(`seed ${seed}, ours ReLU² vs llama.cpp: ${JSON.stringify({ medianError: median(errors), agree })}`);
    // Measured on seeds 1-4: median error 0.27-0.47 (SiLU: at most 0.021), top-1 agreement 4-8/33.
    expect(median(errors)).toBeGreaterThan(0.15);
    expect(agree).toBeLessThan(STEPS / 2);
  });
});
