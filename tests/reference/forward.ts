/**
 * A plain float reference of the BitNet b1.58 forward pass, written straight
 * from BITNET_REFERENCE.md section 1.3 with naive loops in float64. It shares
 * no code with the native path, so agreement between the two is evidence.
 * Slow by design: tiny models only.
 */

export interface RefTernary {
  /** Logical row-major weights in {-1, 0, 1}, rows x cols. */
  w: Int8Array;
  rows: number;
  cols: number;
  /** Per-tensor weight scale beta: y = beta * (W . q) / s. */
  scale: number;
}

export interface RefLayer {
  attnNorm: Float32Array;
  q: RefTernary;
  k: RefTernary;
  v: RefTernary;
  o: RefTernary;
  attnSubNorm?: Float32Array;
  ffnNorm: Float32Array;
  gate: RefTernary;
  up: RefTernary;
  down: RefTernary;
  ffnSubNorm?: Float32Array;
}

export interface RefModel {
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  ropeTheta: number;
  eps: number;
  activation: 'relu2' | 'silu';
  /** vocab x hidden. */
  embedding: Float32Array;
  finalNorm: Float32Array;
  layers: RefLayer[];
  /** vocab x hidden (the embedding when tied). */
  lmHead: Float32Array;
  /** Round K and V through f16 as a cache of f16 would. Default true. */
  f16Cache?: boolean;
}

function rmsnorm(x: Float64Array, g: Float32Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * inv * g[i]);
}

function bitlinear(m: RefTernary, x: Float64Array): Float64Array {
  let absmax = 1e-5;
  for (const v of x) absmax = Math.max(absmax, Math.abs(Math.fround(v)));
  const s = 127 / absmax;
  const q = Array.from(x, (v) => Math.max(-128, Math.min(127, roundHalfEven(Math.fround(v) * s))));
  const y = new Float64Array(m.rows);
  for (let r = 0; r < m.rows; r++) {
    let acc = 0;
    for (let c = 0; c < m.cols; c++) acc += m.w[r * m.cols + c] * q[c];
    y[r] = (acc / s) * m.scale;
  }
  return y;
}

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const diff = v - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

const f16Scratch = new Float32Array(1);
/** Rounds to the nearest f16 value (round half to even), as an f16 KV cache stores it. */
function roundToF16(v: number): number {
  f16Scratch[0] = v;
  const x = f16Scratch[0];
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  if (a >= 65520) return Math.sign(x) * Infinity;
  const e = Math.max(Math.floor(Math.log2(a)), -14);
  const ulp = 2 ** (e - 10);
  return Math.sign(x) * roundHalfEven(a / ulp) * ulp;
}

/** One sequence's state: call step() with each token in order. */
export class ReferenceSession {
  private readonly k: Float64Array[][] = [];
  private readonly v: Float64Array[][] = [];
  private pos = 0;

  constructor(private readonly m: RefModel) {
    for (let l = 0; l < m.layers.length; l++) {
      this.k.push([]);
      this.v.push([]);
    }
  }

  /** Logits (vocab) after feeding `token` at the next position. */
  step(token: number): Float64Array {
    const m = this.m;
    const pos = this.pos++;
    let h: Float64Array = Float64Array.from(m.embedding.subarray(token * m.hidden, (token + 1) * m.hidden));
    const half = m.headDim / 2;
    const rope = (x: Float64Array, heads: number) => {
      for (let hd = 0; hd < heads; hd++) {
        for (let j = 0; j < half; j++) {
          const angle = pos * Math.pow(m.ropeTheta, (-2 * j) / m.headDim);
          const a = x[hd * m.headDim + j], b = x[hd * m.headDim + j + half];
          x[hd * m.headDim + j] = a * Math.cos(angle) - b * Math.sin(angle);
          x[hd * m.headDim + j + half] = b * Math.cos(angle) + a * Math.sin(angle);
        }
      }
    };
    const cache = m.f16Cache ?? true;
    const group = m.heads / m.kvHeads;
    m.layers.forEach((L, l) => {
      const a = rmsnorm(h, L.attnNorm, m.eps);
      const q = bitlinear(L.q, a), k = bitlinear(L.k, a), v = bitlinear(L.v, a);
      rope(q, m.heads);
      rope(k, m.kvHeads);
      this.k[l].push(cache ? k.map(roundToF16) : k);
      this.v[l].push(cache ? v.map(roundToF16) : v);
      const att = new Float64Array(m.heads * m.headDim);
      for (let hd = 0; hd < m.heads; hd++) {
        const kvh = Math.floor(hd / group);
        const scores = this.k[l].map((kt) => {
          let s = 0;
          for (let j = 0; j < m.headDim; j++) s += q[hd * m.headDim + j] * kt[kvh * m.headDim + j];
          return s / Math.sqrt(m.headDim);
        });
        const mx = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - mx));
        const sum = e.reduce((x, y) => x + y, 0);
        this.v[l].forEach((vt, t) => {
          for (let j = 0; j < m.headDim; j++) att[hd * m.headDim + j] += (e[t] / sum) * vt[kvh * m.headDim + j];
        });
      }
      const o = bitlinear(L.o, L.attnSubNorm ? rmsnorm(att, L.attnSubNorm, m.eps) : att);
      h = h.map((x, i) => x + o[i]);
      const b = rmsnorm(h, L.ffnNorm, m.eps);
      const g = bitlinear(L.gate, b), u = bitlinear(L.up, b);
      const f = g.map((gi, i) => (m.activation === 'relu2' ? (gi > 0 ? gi * gi : 0) : gi / (1 + Math.exp(-gi))) * u[i]);
      const d = bitlinear(L.down, L.ffnSubNorm ? rmsnorm(f, L.ffnSubNorm, m.eps) : f);
      h = h.map((x, i) => x + d[i]);
    });
    h = rmsnorm(h, m.finalNorm, m.eps);
    const logits = new Float64Array(m.vocab);
    for (let r = 0; r < m.vocab; r++) {
      let s = 0;
      for (let c = 0; c < m.hidden; c++) s += m.lmHead[r * m.hidden + c] * h[c];
      logits[r] = s;
    }
    return logits;
  }
}
