import { argmax, resolveSampling, Rng, sampleToken, applyPenalties } from '../src/generation/sampler';
import { StopStringMatcher } from '../src/generation/stop';
import { Runtime } from '../src/index';

function logitsOf(values: number[]): Float32Array {
  return Float32Array.from(values);
}

describe('resolveSampling', () => {
  it('fills llama.cpp defaults and keeps given values', () => {
    const s = resolveSampling({ temperature: 0, seed: 7 });
    expect(s).toMatchObject({ temperature: 0, topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1, seed: 7 });
  });
  it('rejects out-of-range options by name', () => {
    expect(() => resolveSampling({ topP: 1.5 })).toThrow(/topP/);
    expect(() => resolveSampling({ topK: 2.5 })).toThrow(/topK/);
    expect(() => resolveSampling({ temperature: -1 })).toThrow(/temperature/);
    expect(() => resolveSampling({ seed: -3 })).toThrow(/seed/);
  });
});

describe('Rng', () => {
  it('is reproducible per seed and differs across seeds', () => {
    const a = new Rng(123), b = new Rng(123), c = new Rng(124);
    const sa = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(sa);
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(sa);
    for (const v of sa) expect(v >= 0 && v < 1).toBe(true);
  });
  it('is roughly uniform', () => {
    const r = new Rng(1);
    let sum = 0;
    for (let i = 0; i < 20000; i++) sum += r.next();
    expect(Math.abs(sum / 20000 - 0.5)).toBeLessThan(0.01);
  });
});

describe('sampleToken', () => {
  it('is argmax at temperature 0', () => {
    const s = resolveSampling({ temperature: 0 });
    expect(sampleToken(logitsOf([0.1, 3, 2.9, -1]), [], s, new Rng(1))).toBe(1);
    expect(argmax([1, 5, 5])).toBe(1);
  });
  it('never picks a token outside top-k', () => {
    const s = resolveSampling({ temperature: 5, topK: 2, topP: 1, minP: 0, seed: 1 });
    const rng = new Rng(9);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) seen.add(sampleToken(logitsOf([1, 4, 3.5, 3.9, 0]), [], s, rng));
    expect([...seen].sort()).toEqual([1, 3]);
  });
  it('top-k over a large vocabulary keeps the k best, the lower id first among ties', () => {
    const vocab = 5000;
    const k = 12;
    const rngFill = new Rng(3);
    // Few distinct values, so the k-th place is shared by many tokens.
    const values = Array.from({ length: vocab }, () => Math.floor(rngFill.next() * 40) / 4);
    const expected = values
      .map((v, id) => ({ v, id }))
      .sort((a, b) => b.v - a.v || a.id - b.id)
      .slice(0, k)
      .map((e) => e.id)
      .sort((a, b) => a - b);
    const s = resolveSampling({ temperature: 100, topK: k, topP: 1, minP: 0 });
    const rng = new Rng(11);
    const seen = new Set<number>();
    for (let i = 0; i < 3000; i++) seen.add(sampleToken(logitsOf(values), [], s, rng));
    expect([...seen].sort((a, b) => a - b)).toEqual(expected);
  });
  it('top-p keeps the smallest prefix reaching p', () => {
    // probabilities ~ [0.665, 0.245, 0.09]: p = 0.6 keeps only the first.
    const s = resolveSampling({ temperature: 1, topK: 0, topP: 0.6, minP: 0 });
    const rng = new Rng(3);
    for (let i = 0; i < 200; i++) expect(sampleToken(logitsOf([2, 1, 0]), [], s, rng)).toBe(0);
  });
  it('min-p drops tokens far below the best', () => {
    const s = resolveSampling({ temperature: 1, topK: 0, topP: 1, minP: 0.5 });
    const rng = new Rng(4);
    const seen = new Set<number>();
    for (let i = 0; i < 300; i++) seen.add(sampleToken(logitsOf([2, 1.6, 0, -3]), [], s, rng));
    expect([...seen].sort()).toEqual([0, 1]);
  });
  it('samples in proportion to softmax(logits / T)', () => {
    const s = resolveSampling({ temperature: 1, topK: 0, topP: 1, minP: 0 });
    const rng = new Rng(5);
    const counts = [0, 0];
    for (let i = 0; i < 20000; i++) counts[sampleToken(logitsOf([Math.log(3), 0]), [], s, rng)]++;
    expect(counts[0] / 20000).toBeCloseTo(0.75, 1);
  });
  it('same seed gives the same sequence', () => {
    const s = resolveSampling({ temperature: 1.2, seed: 77 });
    const run = () => {
      const rng = new Rng(s.seed);
      return Array.from({ length: 30 }, (_, i) => sampleToken(logitsOf([1, 2, 3, 2, 1, i % 3]), [], s, rng));
    };
    expect(run()).toEqual(run());
  });
  it('picks the same tokens with the native top-k as with the JavaScript one', () => {
    const rt = new Runtime({ threads: 1 });
    const fill = new Rng(5);
    const s = resolveSampling({ seed: 9 });
    const [jsRng, nativeRng] = [new Rng(s.seed), new Rng(s.seed)];
    for (let step = 0; step < 200; step++) {
      const values = Array.from({ length: 3000 }, () => Math.floor(fill.next() * 200) / 16);
      const js = sampleToken(logitsOf(values), [], s, jsRng);
      expect(sampleToken(logitsOf(values), [], s, nativeRng, (l, k) => rt.topK(l, k))).toBe(js);
    }
  });
});

describe('penalties', () => {
  it('applies repetition, frequency and presence penalties to recent tokens only', () => {
    const s = resolveSampling({ repeatPenalty: 2, frequencyPenalty: 0.5, presencePenalty: 1, penaltyLastN: 3 });
    const l = logitsOf([4, -4, 4, 4]);
    applyPenalties(l, [3, 0, 1, 0], s); // last 3: 0, 1, 0
    expect(Array.from(l)).toEqual([4 / 2 - 2 * 0.5 - 1, -4 * 2 - 0.5 - 1, 4, 4]);
  });
});

describe('StopStringMatcher', () => {
  it('holds back possible prefixes and cuts at the stop string', () => {
    const m = new StopStringMatcher(['</s>', 'STOP']);
    expect(m.push('Hello <')).toEqual({ text: 'Hello ', stopped: false });
    expect(m.push('/')).toEqual({ text: '', stopped: false });
    expect(m.push('b>')).toEqual({ text: '</b>', stopped: false });
    expect(m.push(' and ST')).toEqual({ text: ' and ', stopped: false });
    expect(m.push('OP more')).toEqual({ text: '', stopped: true });
  });
  it('flushes held text when generation ends without a stop', () => {
    const m = new StopStringMatcher(['\n\nUser:']);
    expect(m.push('done\n')).toEqual({ text: 'done', stopped: false });
    expect(m.flush()).toBe('\n');
  });
  it('never splits a surrogate pair', () => {
    const m = new StopStringMatcher(['😀x']);
    const r = m.push('a😀');
    expect(r.text).toBe('a');
    expect(m.push('y').text).toBe('😀y');
  });
  it('rejects empty stop strings', () => {
    expect(() => new StopStringMatcher([''])).toThrow(RangeError);
  });
});
