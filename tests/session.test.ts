/**
 * The public generation API (BitNetModel, Session, GenerationStream) on the
 * tiny synthetic model converted to a bit-plane file.
 */
import * as os from 'os';
import * as path from 'path';
import * as fs from 'fs';
import { BitNetModel } from '../src/engine/model';
import { native } from '../src/native';
import type { GenerationChunk, GenerationStream } from '../src/engine/session';
import { ensureConverted } from '../src/engine/convert';
import { tinyModel } from './helpers/model-files';

let model: BitNetModel;

beforeAll(async () => {
  process.env.BITNET_GEN_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'bitnet-session-cache-'));
  const source = tinyModel().paths.hf!;
  model = await BitNetModel.load(ensureConverted(source, { lmHead: 'int8' }), { threads: 2 });
});

async function collect(stream: GenerationStream): Promise<{ chunks: GenerationChunk[]; text: string }> {
  const chunks: GenerationChunk[] = [];
  for await (const c of stream) chunks.push(c);
  return { chunks, text: chunks.map((c) => c.text).join('') };
}

const greedy = { temperature: 0, maxTokens: 24 } as const;

describe('Session.generate', () => {
  test('greedy generation is deterministic and the stream adds up to the result', async () => {
    const a = model.createSession({ contextSize: 256 });
    const stream = a.generate('The quick brown fox', greedy);
    const { chunks, text } = await collect(stream);
    const result = await stream.result;
    expect(result.text).toBe(text);
    expect(result.tokens).toEqual(chunks.map((c) => c.token));
    expect(result.tokens.length).toBeGreaterThan(0);
    const again = await model.createSession({ contextSize: 256 }).generate('The quick brown fox', greedy).result;
    expect(again.tokens).toEqual(result.tokens);
    expect(again.text).toBe(result.text);
  });

  test('a repeated prompt reuses the cached prefix and gives the same tokens', async () => {
    const s = model.createSession({ contextSize: 256 });
    const first = await s.generate('Once upon a time', greedy).result;
    const second = await s.generate('Once upon a time', greedy).result;
    const promptLength = first.timings.promptTokens;
    expect(second.timings.reusedTokens).toBe(promptLength - 1);
    expect(second.timings.promptTokens).toBe(1);
    expect(second.tokens).toEqual(first.tokens);
  });

  test('the same seed gives the same sampled text; maxTokens is respected', async () => {
    const opts = { temperature: 1.2, topK: 0, topP: 1, minP: 0, maxTokens: 20, stopAtEos: false, seed: 1234 };
    const a = await model.createSession().generate('Hello', opts).result;
    const b = await model.createSession().generate('Hello', opts).result;
    const c = await model.createSession().generate('Hello', { ...opts, seed: 99 }).result;
    expect(a.tokens).toEqual(b.tokens);
    expect(a.seed).toBe(1234);
    expect(a.tokens.length).toBe(20);
    expect(a.stopReason).toBe('max-tokens');
    expect(c.tokens).not.toEqual(a.tokens);
  });

  test('a stop string ends generation before it', async () => {
    const full = await model.createSession().generate('A B C', { ...greedy, maxTokens: 40, stopAtEos: false }).result;
    expect(full.text.length).toBeGreaterThan(6);
    const stop = full.text.slice(4, 7);
    const cut = await model.createSession().generate('A B C', { ...greedy, maxTokens: 40, stopAtEos: false, stop: [stop] }).result;
    expect(cut.stopReason).toBe('stop-string');
    expect(cut.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
  });

  test('an AbortSignal stops generation within one token', async () => {
    const controller = new AbortController();
    const stream = model.createSession().generate('Abort me', { temperature: 0, maxTokens: 200, stopAtEos: false, signal: controller.signal });
    let seen = 0;
    for await (const _ of stream) {
      if (++seen === 3) controller.abort();
    }
    const result = await stream.result;
    expect(result.stopReason).toBe('aborted');
    expect(result.tokens.length).toBe(3);
  });

  test('leaving the loop early ends the generation and still gives a result', async () => {
    const s = model.createSession();
    const stream = s.generate('Break out', { temperature: 0, maxTokens: 200, stopAtEos: false });
    for await (const _ of stream) break;
    const result = await stream.result;
    expect(result.stopReason).toBe('aborted');
    expect(result.tokens.length).toBeLessThanOrEqual(2);
    // The session is free again.
    await s.generate('again', { ...greedy, maxTokens: 2 }).result;
  });

  test('context limits: a too-long prompt is a clear error; a full cache ends with context-full', async () => {
    const s = model.createSession({ contextSize: 8 });
    const long = 'word '.repeat(50);
    await expect(s.generate(long, greedy).result).rejects.toThrow(/the prompt has \d+ tokens but the context holds 8/);
    const r = await s.generate('hi', { temperature: 0, maxTokens: 100, stopAtEos: false }).result;
    expect(r.stopReason).toBe('context-full');
    expect(s.position).toBe(8);
  });

  test('one generation at a time per session; sessions of one model run concurrently', async () => {
    const s = model.createSession();
    const running = s.generate('busy', { ...greedy, maxTokens: 16, stopAtEos: false });
    const iterator = running[Symbol.asyncIterator]();
    await iterator.next();
    await expect(s.generate('second', greedy).result).rejects.toThrow(/already generating/);
    while (!(await iterator.next()).done) { /* finish */ }

    const prompts = ['alpha beta', 'gamma delta epsilon', 'zeta'];
    const alone = [];
    for (const p of prompts) alone.push((await model.createSession().generate(p, greedy).result).tokens);
    const together = await Promise.all(prompts.map((p) => model.createSession().generate(p, greedy).result));
    expect(together.map((r) => r.tokens)).toEqual(alone);
  });

  test('the event loop keeps running during generation', async () => {
    const s = model.createSession({ contextSize: 256 });
    let last = performance.now();
    let worstGap = 0;
    let ticks = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      worstGap = Math.max(worstGap, now - last);
      last = now;
      ticks++;
    }, 2);
    const start = performance.now();
    await s.generate('Keep the loop alive', { temperature: 0, maxTokens: 240, stopAtEos: false }).result;
    const elapsed = performance.now() - start;
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(elapsed / 20);
    expect(worstGap).toBeLessThan(20);
  });
});

describe('Session.chat', () => {
  test('turns build a history and reuse the cache of earlier turns', async () => {
    const s = model.createSession();
    const first = await s.chat('Hello there', { ...greedy, system: 'You are terse.' }).result;
    expect(s.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant']);
    expect(s.messages[2].content).toBe(first.text);
    const second = await s.chat('And then?', greedy).result;
    // Everything but the new turn comes from the cache: the first prompt and the sampled answer
    // (whose last token is evaluated only when generation went on past it, i.e. ended at EOS).
    const answerCached = first.tokens.length - (first.stopReason === 'eos' ? 0 : 1);
    expect(second.timings.reusedTokens).toBe(first.timings.promptTokens + answerCached);
    expect(s.messages).toHaveLength(5);
    s.reset();
    expect(s.messages).toHaveLength(0);
    expect(s.position).toBe(0);
  });

  test('a context that cannot fit in memory is refused before anything is allocated', async () => {
    await expect(BitNetModel.load(model.path, { threads: 1, maxContext: 2 ** 40 })).rejects.toThrow(
      /^not enough memory: a maximum context of 1099511627776 tokens needs [\d.]+ GiB, more than this machine's [\d.]+ GiB; use a smaller maxContext \(--ctx\)$/);
  });

  test('a context larger than the model allows is a clear error', () => {
    expect(() => model.createSession({ contextSize: 100000 })).toThrow(
      `contextSize must be an integer in [1, ${model.config.maxPositions}], got 100000`);
  });

  test('weights read into memory (noMmap) give the same logits as the mapped file', async () => {
    const copy = await BitNetModel.load(model.path, { threads: 2, noMmap: true });
    const ids = model.tokenizer.encode('same weights');
    const a = await model.createSession().evaluate(ids, { allLogits: true });
    const b = await copy.createSession().evaluate(ids, { allLogits: true });
    expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
  });

  test('hugePageShare: the share of the streamed weights in 2 MB pages, mapped or copied', async () => {
    const copy = await BitNetModel.load(model.path, { threads: 1, noMmap: true });
    for (const share of [model.hugePageShare(), copy.hugePageShare()]) {
      if (share === null) continue;  // the OS cannot tell (Linux before 6.7)
      expect(share).toBeGreaterThanOrEqual(0);
      expect(share).toBeLessThanOrEqual(1);
    }
    // The native count behind it: whole 2 MB pages, within the range asked for.
    const buffer = new ArrayBuffer(4 << 20);
    const bytes = native.hugePageBytes(buffer, 100, 3 << 20);
    if (bytes !== null) expect(bytes).toBeLessThanOrEqual(3 << 20);
    expect(native.hugePageBytes(buffer, 4 << 20)).toBe(0);
    expect(() => native.hugePageBytes(new Uint8Array(8) as never)).toThrow(new TypeError('hugePageBytes: buffer must be an ArrayBuffer'));
    expect(() => native.hugePageBytes(buffer, 5 << 20)).toThrow(new RangeError(`hugePageBytes: offset must be an integer in [0, ${4 << 20}] (got ${5 << 20})`));
    expect(() => native.hugePageBytes(buffer, 0, 5 << 20)).toThrow(new RangeError(`hugePageBytes: length must be an integer in [0, ${4 << 20}] (got ${5 << 20})`));
  });

  test('mapFile checks its streamed ranges and names the file it cannot map', async () => {
    expect(() => native.mapFile(model.path, false, [[0, 1, 2]] as never)).toThrow(new RangeError('mapFile: streamed[0] must be an [offset, length] pair'));
    expect(() => native.mapFile(model.path, false, [[0, -1]])).toThrow(new RangeError('mapFile: streamed[0][1] must be an integer in [0, 9007199254740991] (got -1)'));
    expect(() => native.mapFile(model.path, false, 'all' as never)).toThrow(new TypeError('mapFile: streamed must be an array'));
    // Ranges past the end of the file are ignored; the file's bytes are the same either way.
    const mapped = await native.mapFile(model.path, false, [[0, 1 << 30], [1 << 30, 5]]);
    expect(Buffer.from(mapped).equals(fs.readFileSync(model.path))).toBe(true);
    const missing = path.join(os.tmpdir(), 'bitnet-gen-no-such-model.bitnet');
    await expect(native.mapFile(missing)).rejects.toThrow(`mapFile: cannot map ${missing}: open: No such file or directory`);
  });

  test('evaluate returns the logits of every token for perplexity', async () => {
    const s = model.createSession();
    const ids = model.tokenizer.encode('perplexity check');
    const all = await s.evaluate(ids, { allLogits: true });
    expect(all.length).toBe(ids.length * model.vocab);
    const t = model.createSession();
    const last = await t.evaluate(ids);
    expect(Array.from(last)).toEqual(Array.from(all.subarray((ids.length - 1) * model.vocab)));
  });
});
