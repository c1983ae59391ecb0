/**
 * The native forward pass (NativeModel / NativeSession) on random tiny models
 * against the plain TypeScript reference in tests/reference/forward.ts.
 */
import { native } from '../src/native';
import type { NativeModelSpec, NativeSession } from '../src/native';
import { Runtime, TernaryMatrix, runnableIsas } from '../src/kernels';
import { f16ToF32, f32ToF16 } from '../src/formats/float16';
import { ReferenceSession, RefModel, RefTernary } from './reference/forward';

const dims = { hidden: 96, intermediate: 160, layers: 2, heads: 4, kvHeads: 2, headDim: 24, vocab: 80, ropeTheta: 10000, rmsEps: 1e-5 };

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 0x100000000;
  };
}

function randomModel(activation: 'relu2' | 'silu', seed = 1): { spec: NativeModelSpec; ref: RefModel } {
  const rnd = lcg(seed);
  const floats = (n: number, lo: number, hi: number) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rnd());
  const ternary = (rows: number, cols: number): [TernaryMatrix, RefTernary] => {
    const w = Int8Array.from({ length: rows * cols }, () => Math.floor(rnd() * 3) - 1);
    const scale = Math.fround(0.5 + rnd());
    return [TernaryMatrix.fromValues(w, rows, cols, scale), { w, rows, cols, scale }];
  };
  const subNorms = activation === 'relu2';
  const qd = dims.heads * dims.headDim, kvd = dims.kvHeads * dims.headDim;
  const embF16 = Uint16Array.from(floats(dims.vocab * dims.hidden, -1, 1), f32ToF16);
  const embedding = Float32Array.from(embF16, f16ToF32);
  const finalNorm = floats(dims.hidden, 0.5, 1.5);
  const spec: NativeModelSpec = {
    dims: { ...dims, activation }, maxContext: 128, embedding: embF16, finalNorm, layers: [], head: { f16: embF16 },
  };
  const ref: RefModel = { ...dims, eps: dims.rmsEps, activation, embedding, finalNorm, layers: [], lmHead: embedding };
  for (let l = 0; l < dims.layers; l++) {
    const [q, rq] = ternary(qd, dims.hidden), [k, rk] = ternary(kvd, dims.hidden), [v, rv] = ternary(kvd, dims.hidden);
    const [o, ro] = ternary(dims.hidden, qd), [gate, rg] = ternary(dims.intermediate, dims.hidden);
    const [up, ru] = ternary(dims.intermediate, dims.hidden), [down, rd] = ternary(dims.hidden, dims.intermediate);
    const attnNorm = floats(dims.hidden, 0.5, 1.5), ffnNorm = floats(dims.hidden, 0.5, 1.5);
    const attnSubNorm = subNorms ? floats(qd, 0.5, 1.5) : undefined;
    const ffnSubNorm = subNorms ? floats(dims.intermediate, 0.5, 1.5) : undefined;
    spec.layers.push({ attnNorm, q, k, v, o, attnSubNorm, ffnNorm, gate, up, down, ffnSubNorm });
    ref.layers.push({ attnNorm, q: rq, k: rk, v: rv, o: ro, attnSubNorm, ffnNorm, gate: rg, up: ru, down: rd, ffnSubNorm });
  }
  return { spec, ref };
}

function argmax(x: ArrayLike<number>): number {
  let b = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[b]) b = i;
  return b;
}

async function step(session: NativeSession, rt: Runtime, tokens: number[], all = false): Promise<Float32Array> {
  const logits = new Float32Array((all ? tokens.length : 1) * dims.vocab);
  await session.forward(rt.native, Int32Array.from(tokens), logits, all);
  return logits;
}

describe('native forward pass', () => {
  for (const activation of ['relu2', 'silu'] as const) {
    test(`${activation}: logits match the reference and greedy tokens identical over 64 steps`, async () => {
      const { spec, ref } = randomModel(activation);
      for (const isa of runnableIsas()) {
        const rt = new Runtime({ isa, threads: 2 });
        const session = new native.NativeSession(new native.NativeModel(spec), 96);
        const reference = new ReferenceSession(ref);
        let token = 1;
        const errors: number[] = [];
        for (let i = 0; i < 64; i++) {
          const got = await step(session, rt, [token]);
          const want = reference.step(token);
          const scale = Math.max(...Array.from(want, Math.abs));
          let maxErr = 0;
          for (let j = 0; j < dims.vocab; j++) maxErr = Math.max(maxErr, Math.abs(got[j] - want[j]));
          errors.push(maxErr / scale);
          expect(argmax(got)).toBe(argmax(want));
          token = argmax(got);
        }
        // f32 (native) and f64 (reference) agree to ~1e-7 until some x*s lands within rounding
        // of a .5 int8 boundary and one activation level flips (~1e-2 locally). Such flips must
        // stay rare and small.
        errors.sort((a, b) => a - b);
        expect({ isa, median: errors[errors.length >> 1] < 1e-5, max: errors[errors.length - 1] < 5e-2 })
          .toEqual({ isa, median: true, max: true });
      }
    });
  }

  test('prefill equals token-by-token decode bit for bit, for 1 and 2 threads', async () => {
    const { spec } = randomModel('relu2', 2);
    const model = new native.NativeModel(spec);
    const prompt = [3, 14, 15, 9, 26, 5, 35, 8, 9, 79, 0];
    const results: Float32Array[] = [];
    for (const threads of [1, 2]) {
      const rt = new Runtime({ threads });
      const batch = new native.NativeSession(model, 32);
      results.push(await step(batch, rt, prompt, true));
      const single = new native.NativeSession(model, 32);
      const stepwise = new Float32Array(prompt.length * dims.vocab);
      for (let i = 0; i < prompt.length; i++) stepwise.set(await step(single, rt, [prompt[i]]), i * dims.vocab);
      results.push(stepwise);
    }
    for (const r of results.slice(1)) expect(Buffer.from(r.buffer).equals(Buffer.from(results[0].buffer))).toBe(true);
  });

  test('sessions on one model run concurrently without touching each other', async () => {
    const { spec } = randomModel('relu2', 3);
    const model = new native.NativeModel(spec);
    const rt = new Runtime({ threads: 2 });
    const solo = new native.NativeSession(model, 32);
    const a1 = await step(solo, rt, [1, 2, 3]);
    const x = new native.NativeSession(model, 32), y = new native.NativeSession(model, 32);
    const [ax, ay] = await Promise.all([step(x, rt, [1, 2, 3]), step(y, rt, [7, 7, 7, 7])]);
    expect(Array.from(ax)).toEqual(Array.from(a1));
    expect(Array.from(ay)).not.toEqual(Array.from(a1));
    expect(x.position).toBe(3);
    expect(y.position).toBe(4);
  });

  test('truncate rewinds the cache so a shared prefix is reused', async () => {
    const { spec } = randomModel('relu2', 4);
    const model = new native.NativeModel(spec);
    const rt = new Runtime({ threads: 1 });
    const s = new native.NativeSession(model, 32);
    await step(s, rt, [5, 6, 7, 8]);
    s.truncate(2);
    const again = await step(s, rt, [9]);
    const fresh = await step(new native.NativeSession(model, 32), rt, [5, 6, 9]);
    expect(Array.from(again)).toEqual(Array.from(fresh));
  });

  test('bad calls fail with errors naming the problem, and leave the session usable', async () => {
    const { spec } = randomModel('relu2', 5);
    const model = new native.NativeModel(spec);
    const rt = new Runtime({ threads: 1 });
    const s = new native.NativeSession(model, 4);
    await step(s, rt, [1, 2]);
    expect(() => s.forward(rt.native, Int32Array.of(1, 2, 3), new Float32Array(dims.vocab))).toThrow(
      'forward: tokens holds 3 tokens but only 2 positions are left in the context of 4');
    expect(() => s.forward(rt.native, Int32Array.of(80), new Float32Array(dims.vocab))).toThrow(
      'forward: tokens[0] is 80, outside the vocabulary of 80');
    expect(() => s.forward(rt.native, Int32Array.of(1), new Float32Array(3))).toThrow(/forward: logits must be/);
    const pending = s.forward(rt.native, Int32Array.of(1), new Float32Array(dims.vocab));
    expect(() => s.forward(rt.native, Int32Array.of(1), new Float32Array(dims.vocab))).toThrow(/busy/);
    const nativeMs = await pending;
    expect(nativeMs).toBeGreaterThan(0);
    expect(s.position).toBe(3);
    expect(() => new native.NativeSession(model, 129)).toThrow(/context must be an integer in \[1, 128\]/);
    const broken = { ...spec, layers: spec.layers.map((l, i) => (i === 1 ? { ...l, down: l.up } : l)) };
    expect(() => new native.NativeModel(broken)).toThrow(/layer 1 down_proj is 160x96, expected 96x160/);
    expect(() => new native.NativeModel({ ...spec, finalNorm: new Float32Array(3) })).toThrow(/spec.finalNorm must be/);
  });
});
