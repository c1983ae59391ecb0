/**
 * Token sampling over one step's logits. The filter order follows llama.cpp's
 * default chain (penalties -> top-k -> top-p -> min-p -> temperature -> draw),
 * so the same settings mean the same thing as in llama.cpp and bitnet.cpp.
 */

/** Sampling settings. Every field is optional; defaults are llama.cpp's. */
export interface SamplingOptions {
  /** Softmax temperature; 0 means greedy (argmax). Default 0.8. */
  temperature?: number;
  /** Keep only the k most likely tokens; 0 disables. Default 40. */
  topK?: number;
  /** Keep the smallest set of tokens whose probability sums to at least p; 1 disables. Default 0.95. */
  topP?: number;
  /** Drop tokens less likely than minP times the most likely one; 0 disables. Default 0.05. */
  minP?: number;
  /** Divide positive (multiply negative) logits of recently seen tokens by this; 1 disables. Default 1. */
  repeatPenalty?: number;
  /** Subtract count * frequencyPenalty from each recently seen token's logit. Default 0. */
  frequencyPenalty?: number;
  /** Subtract presencePenalty from each recently seen token's logit. Default 0. */
  presencePenalty?: number;
  /** How many of the latest tokens the penalties look at. Default 64. */
  penaltyLastN?: number;
  /** Seed of the random generator; the same seed and settings give the same tokens. Default: random. */
  seed?: number;
}

export type ResolvedSampling = Required<SamplingOptions>;

export const DEFAULT_SAMPLING: Readonly<Omit<ResolvedSampling, 'seed'>> = Object.freeze({
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  repeatPenalty: 1,
  frequencyPenalty: 0,
  presencePenalty: 0,
  penaltyLastN: 64,
});

function checkNumber(name: string, v: number, min: number, max: number, integer = false): void {
  if (typeof v !== 'number' || Number.isNaN(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new RangeError(`${name} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got ${String(v)}`);
  }
}

/** Fills in defaults and validates ranges; throws RangeError naming the bad option. */
export function resolveSampling(opts: SamplingOptions = {}): ResolvedSampling {
  const r: ResolvedSampling = {
    ...DEFAULT_SAMPLING,
    seed: Math.floor(Math.random() * 0x100000000),
    ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
  };
  checkNumber('temperature', r.temperature, 0, 100);
  checkNumber('topK', r.topK, 0, 1e9, true);
  checkNumber('topP', r.topP, 0, 1);
  checkNumber('minP', r.minP, 0, 1);
  checkNumber('repeatPenalty', r.repeatPenalty, 0.01, 100);
  checkNumber('frequencyPenalty', r.frequencyPenalty, -100, 100);
  checkNumber('presencePenalty', r.presencePenalty, -100, 100);
  checkNumber('penaltyLastN', r.penaltyLastN, 0, 1e9, true);
  checkNumber('seed', r.seed, 0, 0xffffffff, true);
  return r;
}

/** xoshiro128** : small, fast, and reproducible across platforms and Node versions. */
export class Rng {
  private s: Uint32Array;
  constructor(seed: number) {
    // splitmix32 expands the 32-bit seed into the 128-bit state.
    this.s = new Uint32Array(4);
    let z = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      z = (z + 0x9e3779b9) >>> 0;
      let t = z;
      t = Math.imul(t ^ (t >>> 16), 0x85ebca6b);
      t = Math.imul(t ^ (t >>> 13), 0xc2b2ae35);
      this.s[i] = (t ^ (t >>> 16)) >>> 0;
    }
  }
  /** A float in [0, 1). */
  next(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result / 0x100000000;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Index of the largest value; the lowest index wins ties. */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** Applies repetition, frequency and presence penalties in place to `logits`. */
export function applyPenalties(logits: Float32Array, history: ArrayLike<number>, s: ResolvedSampling): void {
  if (s.repeatPenalty === 1 && s.frequencyPenalty === 0 && s.presencePenalty === 0) return;
  const counts = new Map<number, number>();
  for (let i = Math.max(0, history.length - s.penaltyLastN); i < history.length; i++) {
    counts.set(history[i], (counts.get(history[i]) ?? 0) + 1);
  }
  for (const [tok, count] of counts) {
    if (tok < 0 || tok >= logits.length) continue;
    let l = logits[tok];
    l = l > 0 ? l / s.repeatPenalty : l * s.repeatPenalty;
    logits[tok] = l - count * s.frequencyPenalty - s.presencePenalty;
  }
}

/**
 * The ids of the k largest logits, largest first (ties: lower id first): the signature of the
 * `topK` argument of {@link sampleToken}.
 */
export type TopKFn = (logits: Float32Array, k: number) => ArrayLike<number>;

/** {@link TopKFn} in JavaScript: one pass over the vocabulary (0.2-0.3 ms for 128256 logits). */
export function topKIndices(logits: Float32Array, k: number): number[] {
  if (k >= logits.length) {
    return Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
  }
  // A sorted window of the best k seen so far, in typed arrays: this loop runs
  // over the whole vocabulary every step, and most tokens fail its first comparison.
  const ids = new Int32Array(k);
  const vals = new Float64Array(k);
  let n = 0;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i];
    if (n === k && v <= vals[k - 1]) continue;
    let pos = n === k ? k - 1 : n++;
    for (; pos > 0 && vals[pos - 1] < v; pos--) {
      vals[pos] = vals[pos - 1];
      ids[pos] = ids[pos - 1];
    }
    vals[pos] = v;
    ids[pos] = i;
  }
  return Array.from(ids.subarray(0, n));
}

/**
 * Picks the next token. `logits` may be modified (penalties are applied in place).
 * `history` is the sequence so far (prompt and generated tokens). `topK` finds the
 * `s.topK` best logits when 0 < s.topK < logits.length (default: {@link topKIndices};
 * a session passes the native one, 5x faster).
 */
export function sampleToken(logits: Float32Array, history: ArrayLike<number>, s: ResolvedSampling, rng: Rng,
                            topK: TopKFn = topKIndices): number {
  applyPenalties(logits, history, s);
  if (s.temperature === 0) return argmax(logits);
  let ids = s.topK > 0 && s.topK < logits.length ? Array.from(topK(logits, s.topK)) : topKIndices(logits, logits.length);
  // Probabilities at temperature 1 decide top-p and min-p, as in llama.cpp.
  const maxLogit = logits[ids[0]];
  let probs = ids.map((id) => Math.exp(logits[id] - maxLogit));
  const total = probs.reduce((a, b) => a + b, 0);
  probs = probs.map((p) => p / total);
  if (s.topP < 1) {
    let cum = 0;
    let keep = ids.length;
    for (let i = 0; i < ids.length; i++) {
      cum += probs[i];
      if (cum >= s.topP) {
        keep = i + 1;
        break;
      }
    }
    ids = ids.slice(0, keep);
    probs = probs.slice(0, keep);
  }
  if (s.minP > 0) {
    const floor = probs[0] * s.minP;
    const firstBelow = probs.findIndex((p) => p < floor);
    if (firstBelow > 0) ids = ids.slice(0, firstBelow);
  }
  const weights = ids.map((id) => Math.exp((logits[id] - maxLogit) / s.temperature));
  const sum = weights.reduce((a, b) => a + b, 0);
  let r = rng.next() * sum;
  for (let i = 0; i < ids.length; i++) {
    r -= weights[i];
    if (r < 0) return ids[i];
  }
  return ids[ids.length - 1];
}
