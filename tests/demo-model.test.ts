/**
 * The bundled demo model (assets/demo-model, trained by scripts/train-demo-model.py) checked
 * against the training script's own numbers, which CI cannot recompute (no PyTorch there):
 * - our tokenizer gives the script's token ids for the held-out text;
 * - our engine's perplexity over that text (same windows, same BOS handling) is within 1 % of
 *   the script's quantized PyTorch forward over the exported weights;
 * - greedy generation is identical on every ISA this machine runs and for 1 and 2 threads.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { perplexity } from '../src/cli/perplexity';
import { BitNetModel } from '../src/engine/model';
import { DEMO_MODEL_SOURCE, demoModelPath } from '../src/engine/demo-model';
import { runnableIsas } from '../src/kernels';
import { loadHfTokenizer } from '../src/tokenizer/hf-files';
import { scratchDir } from './helpers/model-files';
import { cli } from './cli-io';

interface DemoEvaluation {
  heldoutFile: string;
  heldoutSha256: string;
  tokens: number;
  tokenIdsSha256: string;
  ctx: number;
  windows: number;
  scoredTokens: number;
  perplexity: number;
}

const fixtures = path.join(__dirname, 'fixtures');
const evaluation = JSON.parse(fs.readFileSync(path.join(fixtures, 'demo-model-eval.json'), 'utf8')) as DemoEvaluation;
const heldout = fs.readFileSync(path.join(fixtures, evaluation.heldoutFile), 'utf8');
const sha256 = (text: string) => crypto.createHash('sha256').update(text).digest('hex');

/**
 * Greedy raw completion of GOLDEN_PROMPT, 32 tokens; its first 24 tokens are also the training
 * script's own greedy sample (PyTorch forward). Update it when the model is retrained.
 */
const GOLDEN_PROMPT = 'And God said';
const GOLDEN_TEXT = ' unto him, What is the LORD God of Israel, and I will not be a covenant of the LORD.\nAnd the LORD said unto Moses, Why the';

let demoFile: string;

beforeAll(() => {
  // The conversion goes to a scratch cache, not the user's.
  process.env.BITNET_GEN_CACHE = scratchDir('demo-cache');
  demoFile = demoModelPath();
});

afterAll(() => {
  fs.rmSync(process.env.BITNET_GEN_CACHE!, { recursive: true, force: true });
  delete process.env.BITNET_GEN_CACHE;
});

test('the held-out text is the one the script evaluated, and our tokenizer gives the script\'s ids', () => {
  expect(sha256(heldout)).toBe(evaluation.heldoutSha256);
  const ids = loadHfTokenizer(DEMO_MODEL_SOURCE).encode(heldout, { addBos: false });
  expect({ tokens: ids.length, sha256: sha256(ids.join(',')) }).toEqual({ tokens: evaluation.tokens, sha256: evaluation.tokenIdsSha256 });
});

test('perplexity over the held-out text is within 1 % of the PyTorch forward\'s', async () => {
  const model = await BitNetModel.load(demoFile, { threads: 2, maxContext: evaluation.ctx });
  const ours = await perplexity(model, heldout, evaluation.ctx, Infinity);
  expect({ windows: ours.perChunk.length, scored: ours.scoredTokens }).toEqual({ windows: evaluation.windows, scored: evaluation.scoredTokens });
  const ratio = ours.perplexity / evaluation.perplexity;
  // Printed so that the numbers can be quoted (jest shows console output on failure and with --verbose).
  console.log(`demo held-out perplexity: ours ${ours.perplexity.toFixed(4)}, PyTorch ${evaluation.perplexity.toFixed(4)}, ratio ${ratio.toFixed(5)}`);
  expect(Math.abs(ratio - 1)).toBeLessThan(0.01);
});

test('greedy generation is the golden text on every ISA, with 1 and 2 threads', async () => {
  const texts: string[] = [];
  for (const isa of runnableIsas()) {
    for (const threads of [1, 2]) {
      const model = await BitNetModel.load(demoFile, { isa, threads });
      const result = await model.createSession().generate(GOLDEN_PROMPT, { maxTokens: 32, temperature: 0 }).result;
      texts.push(`${isa}/${threads}: ${result.tokens.length} ${result.text}`);
    }
  }
  expect(texts).toEqual(runnableIsas().flatMap((isa) => [1, 2].map((threads) => `${isa}/${threads}: 32 ${GOLDEN_TEXT}`)));
});

test('`bitnet-gen --model demo` answers a chat prompt with English words', async () => {
  const run = await cli(['--model', 'demo', '-n', '24', '--temperature', '0', '-t', '2', 'In the beginning']);
  expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
  expect(run.stdout).toMatch(/^\s*[A-Za-z]+( [A-Za-z,;:.]+){2,}/);
});
