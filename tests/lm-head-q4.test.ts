/**
 * The 4-bit LM head (convert --lm-head q4) on the tiny synthetic model: decode ranks every row
 * with the 4-bit rows and recomputes the best LM_HEAD_EXACT_ROWS from the int8 rows, so greedy
 * tokens and the top logits equal the int8-head model's exactly, while evaluate with allLogits
 * (perplexity) uses the int8 rows for everything.
 */
import * as fs from 'fs';
import * as path from 'path';
import { BitNetModel } from '../src/engine/model';
import { convertModel } from '../src/engine/convert';
import { LM_HEAD_EXACT_ROWS, LM_HEAD_INT8, LM_HEAD_Q4, LM_HEAD_Q4_ROW_SCALE, q4HeadCols, readBitplaneHeader } from '../src/formats/bitplane-file';
import { scratchDir, tinyModel } from './helpers/model-files';

const tiny = tinyModel();
const dir = scratchDir('lm-head-q4');
const files = { q4: path.join(dir, 'q4.bitnet'), int8: path.join(dir, 'int8.bitnet') };
let q4: BitNetModel;
let int8: BitNetModel;

beforeAll(async () => {
  convertModel(tiny.paths.hf!, files.q4, { lmHead: 'q4' });
  convertModel(tiny.paths.hf!, files.int8, { lmHead: 'int8' });
  q4 = await BitNetModel.load(files.q4, { threads: 2, verify: true });
  int8 = await BitNetModel.load(files.int8, { threads: 2 });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const PROMPT = 'The quick brown fox jumps over the lazy dog';
const STEPS = 64;

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** Decode logits (one token at a time) for each of `tokens` after the prompt. */
async function decodeLogits(model: BitNetModel, tokens: number[]): Promise<Float32Array[]> {
  const session = model.createSession({ contextSize: 256 });
  const out: Float32Array[] = [];
  for (const t of tokens) out.push(await session.evaluate([t]));
  return out;
}

test('the file holds the 4-bit head beside the int8 head; bytes per token count 4-bit rows + the re-scored int8 rows', () => {
  const header = readBitplaneHeader(files.q4);
  const { vocab, hidden } = q4.config;
  expect(header.tensors.find((t) => t.name === LM_HEAD_Q4)).toMatchObject({ kind: 'q4', shape: [vocab, q4HeadCols(hidden)] });
  expect(header.tensors.some((t) => t.name === LM_HEAD_INT8)).toBe(true);
  expect(q4.lmHead).toBe('q4');
  const entry = (name: string) => header.tensors.find((t) => t.name === name)!;
  const int8Row = entry(LM_HEAD_INT8).shape[1] + 4;
  const headQ4 = entry(LM_HEAD_Q4).byteLength + entry(LM_HEAD_Q4_ROW_SCALE).byteLength + LM_HEAD_EXACT_ROWS * int8Row;
  expect(int8.weightBytesPerToken - q4.weightBytesPerToken).toBe(vocab * int8Row - headQ4);
});

test(`greedy generation equals the int8 head's over ${STEPS} steps`, async () => {
  const greedy = { temperature: 0, maxTokens: STEPS, stopAtEos: false } as const;
  const a = (await q4.createSession({ contextSize: 256 }).generate(PROMPT, greedy).result).tokens;
  const b = (await int8.createSession({ contextSize: 256 }).generate(PROMPT, greedy).result).tokens;
  expect(a.length).toBe(STEPS);
  expect(a).toEqual(b);
});

test('decode logits: the top rows are the int8 values bit for bit, the rest the 4-bit approximation', async () => {
  const tokens = q4.tokenizer.encode(`${PROMPT}, and then some more text to decode.`);
  const approx = await decodeLogits(q4, tokens);
  const exact = await decodeLogits(int8, tokens);
  for (let i = 0; i < tokens.length; i++) {
    const a = approx[i];
    const e = exact[i];
    const same: number[] = [];
    for (let r = 0; r < a.length; r++) if (Object.is(a[r], e[r])) same.push(r);
    // The re-scored rows (a 4-bit value may coincide with its int8 value by chance, rarely).
    expect(same.length).toBeGreaterThanOrEqual(LM_HEAD_EXACT_ROWS);
    expect(same.length).toBeLessThan(LM_HEAD_EXACT_ROWS + 8);
    // The exact rows are the 4-bit head's best: the largest logits, argmax included.
    expect(argmax(a)).toBe(argmax(e));
    const sorted = [...e].sort((x, y) => y - x);
    for (let k = 0; k < 8; k++) expect(same.map((r) => e[r])).toContain(sorted[k]);
  }
});

test('evaluate with allLogits uses the int8 rows for every row: equal to the int8 model', async () => {
  const tokens = q4.tokenizer.encode(`${PROMPT}. Perplexity needs every logit exact.`);
  const a = await q4.createSession({ contextSize: 256 }).evaluate(tokens, { allLogits: true });
  const b = await int8.createSession({ contextSize: 256 }).evaluate(tokens, { allLogits: true });
  expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
});

test('prefill of the last prompt token equals its decode, and 1 vs 2 threads agree, bit for bit', async () => {
  const tokens = q4.tokenizer.encode(PROMPT);
  const prefill = await q4.createSession({ contextSize: 256 }).evaluate(tokens);
  const stepwise = await q4.createSession({ contextSize: 256 });
  await stepwise.evaluate(tokens.slice(0, -1));
  const decode = await stepwise.evaluate(tokens.slice(-1));
  expect(Buffer.from(prefill.buffer).equals(Buffer.from(decode.buffer))).toBe(true);
  const single = await BitNetModel.load(files.q4, { threads: 1 });
  const one = await single.createSession({ contextSize: 256 }).evaluate(tokens);
  expect(Buffer.from(one.buffer).equals(Buffer.from(prefill.buffer))).toBe(true);
});
