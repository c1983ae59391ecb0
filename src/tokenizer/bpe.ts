import { BYTE_TO_CHAR, bytesToTokenString } from './byte-unicode';

/** A merge rule: the two byte-level token strings that combine into their concatenation. */
export type MergePair = readonly [left: string, right: string];

const MAX_CACHED_PIECE_LENGTH = 64;
const MAX_CACHE_ENTRIES = 1 << 16;
/** Heap entries pack (rank, position) into one exact double: rank * 2^32 + position, so ranks must stay below 2^21. */
const POSITION_RANGE = 2 ** 32;
const MAX_MERGES = 2 ** 21;

/**
 * Open-addressing hash table from a token-id pair to its merge rank. A Map keyed by
 * `left * 2^k + right` would hash heap-allocated doubles; this keeps the hot lookup in int32.
 */
class PairRankTable {
  private readonly lefts: Int32Array;
  private readonly rights: Int32Array;
  private readonly ranks: Int32Array;
  private readonly mask: number;

  constructor(capacityHint: number) {
    let size = 1024;
    while (size < capacityHint * 2) size *= 2;
    this.lefts = new Int32Array(size).fill(-1);
    this.rights = new Int32Array(size);
    this.ranks = new Int32Array(size);
    this.mask = size - 1;
  }

  private static hash(left: number, right: number): number {
    return (Math.imul(left, 0x9e3779b1) ^ Math.imul(right + 0x7f4a7c15, 0x85ebca77)) >>> 0;
  }

  /** Keeps the first (lowest) rank when a pair is listed twice, as HF tokenizers does. */
  insertIfAbsent(left: number, right: number, rank: number): void {
    let slot = PairRankTable.hash(left, right) & this.mask;
    while (this.lefts[slot] !== -1) {
      if (this.lefts[slot] === left && this.rights[slot] === right) return;
      slot = (slot + 1) & this.mask;
    }
    this.lefts[slot] = left;
    this.rights[slot] = right;
    this.ranks[slot] = rank;
  }

  /** @returns the rank, or -1 when the pair never merges (including when `left` is -1). */
  get(left: number, right: number): number {
    let slot = PairRankTable.hash(left, right) & this.mask;
    for (;;) {
      const storedLeft = this.lefts[slot];
      if (storedLeft === -1) return -1;
      if (storedLeft === left && this.rights[slot] === right) return this.ranks[slot];
      slot = (slot + 1) & this.mask;
    }
  }
}

/**
 * Byte-level BPE over UTF-8 bytes: repeatedly merges the adjacent pair with the lowest merge
 * rank (leftmost first among equal ranks) until no adjacent pair merges. A min-heap of
 * candidate pairs over a linked list of symbols keeps long pieces O(n log n); results for
 * short pieces are cached.
 */
export class BytePairEncoder {
  private readonly byteIds = new Int32Array(256);
  private readonly pairRanks: PairRankTable;
  private readonly mergedIdByRank: Int32Array;
  private readonly cache = new Map<string, readonly number[]>();
  private utf8 = new Uint8Array(256);
  private symbolIds = new Int32Array(256);
  private nextSymbol = new Int32Array(256);
  private prevSymbol = new Int32Array(256);
  private readonly heap: number[] = [];

  /**
   * @param vocab byte-level token string -> id, ordinary (non-added) tokens only.
   * @param merges merge rules in priority order (index = rank).
   * @param ignoreMerges when true, a piece that is itself a token is emitted whole without merging.
   */
  constructor(
    private readonly vocab: ReadonlyMap<string, number>,
    merges: readonly MergePair[],
    private readonly ignoreMerges: boolean,
  ) {
    for (let byte = 0; byte < 256; byte++) {
      const id = vocab.get(BYTE_TO_CHAR[byte]);
      if (id === undefined) throw new Error(`BPE vocabulary lacks the token for byte 0x${byte.toString(16)}`);
      this.byteIds[byte] = id;
    }
    if (merges.length > MAX_MERGES) throw new Error(`${merges.length} merge rules exceed the supported ${MAX_MERGES}`);
    this.pairRanks = new PairRankTable(merges.length);
    this.mergedIdByRank = new Int32Array(merges.length);
    merges.forEach(([left, right], rank) => {
      const leftId = vocab.get(left);
      const rightId = vocab.get(right);
      const mergedId = vocab.get(left + right);
      if (leftId === undefined || rightId === undefined || mergedId === undefined) {
        throw new Error(`merge rule ${rank} ("${left} ${right}") refers to a token missing from the vocabulary`);
      }
      this.mergedIdByRank[rank] = mergedId;
      this.pairRanks.insertIfAbsent(leftId, rightId, rank);
    });
  }

  /** Appends the ids of one pre-tokenized piece to `out`. */
  encodePiece(piece: string, out: number[]): void {
    const cacheable = piece.length <= MAX_CACHED_PIECE_LENGTH;
    if (cacheable) {
      const cached = this.cache.get(piece);
      if (cached !== undefined) {
        for (let i = 0; i < cached.length; i++) out.push(cached[i]);
        return;
      }
    }
    const start = out.length;
    this.encodeBytes(this.writeUtf8(piece), out);
    if (cacheable) {
      if (this.cache.size >= MAX_CACHE_ENTRIES) this.cache.clear();
      this.cache.set(piece, out.slice(start));
    }
  }

  /** Writes the UTF-8 of `text` into the scratch buffer (lone surrogates become U+FFFD, as TextEncoder does). */
  private writeUtf8(text: string): number {
    if (this.utf8.length < text.length * 3) this.utf8 = new Uint8Array(text.length * 3);
    const buffer = this.utf8;
    let length = 0;
    for (let i = 0; i < text.length; i++) {
      let code = text.charCodeAt(i);
      if (code < 0x80) {
        buffer[length++] = code;
        continue;
      }
      if (code < 0x800) {
        buffer[length++] = 0xc0 | (code >> 6);
        buffer[length++] = 0x80 | (code & 0x3f);
        continue;
      }
      if (code >= 0xd800 && code <= 0xdfff) {
        const low = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
        if (code <= 0xdbff && low >= 0xdc00 && low <= 0xdfff) {
          code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
          i++;
          buffer[length++] = 0xf0 | (code >> 18);
          buffer[length++] = 0x80 | ((code >> 12) & 0x3f);
          buffer[length++] = 0x80 | ((code >> 6) & 0x3f);
          buffer[length++] = 0x80 | (code & 0x3f);
          continue;
        }
        code = 0xfffd;
      }
      buffer[length++] = 0xe0 | (code >> 12);
      buffer[length++] = 0x80 | ((code >> 6) & 0x3f);
      buffer[length++] = 0x80 | (code & 0x3f);
    }
    return length;
  }

  private encodeBytes(length: number, out: number[]): void {
    const bytes = this.utf8;
    if (length === 1) {
      out.push(this.byteIds[bytes[0]]);
      return;
    }
    if (this.ignoreMerges) {
      const whole = this.vocab.get(bytesToTokenString(bytes.subarray(0, length)));
      if (whole !== undefined) {
        out.push(whole);
        return;
      }
    }
    if (this.symbolIds.length < length) {
      this.symbolIds = new Int32Array(length);
      this.nextSymbol = new Int32Array(length);
      this.prevSymbol = new Int32Array(length);
    }
    const ids = this.symbolIds;
    const next = this.nextSymbol;
    const prev = this.prevSymbol;
    const heap = this.heap;
    heap.length = 0;
    for (let i = 0; i < length; i++) {
      ids[i] = this.byteIds[bytes[i]];
      next[i] = i + 1 < length ? i + 1 : -1;
      prev[i] = i - 1;
    }
    for (let i = 0; i + 1 < length; i++) {
      const rank = this.pairRanks.get(ids[i], ids[i + 1]);
      if (rank >= 0) heapPush(heap, rank * POSITION_RANGE + i);
    }
    while (heap.length > 0) {
      const entry = heapPop(heap);
      const rank = Math.floor(entry / POSITION_RANGE);
      const position = entry - rank * POSITION_RANGE;
      const right = next[position];
      // Stale entries: a symbol merged away has id -1, and a changed pair has a different rank.
      if (right < 0 || this.pairRanks.get(ids[position], ids[right]) !== rank) continue;
      ids[position] = this.mergedIdByRank[rank];
      ids[right] = -1;
      const afterRight = next[right];
      next[position] = afterRight;
      if (afterRight >= 0) {
        prev[afterRight] = position;
        const rightRank = this.pairRanks.get(ids[position], ids[afterRight]);
        if (rightRank >= 0) heapPush(heap, rightRank * POSITION_RANGE + position);
      }
      const left = prev[position];
      if (left >= 0) {
        const leftRank = this.pairRanks.get(ids[left], ids[position]);
        if (leftRank >= 0) heapPush(heap, leftRank * POSITION_RANGE + left);
      }
    }
    for (let i = 0; i >= 0; i = next[i]) out.push(ids[i]);
  }
}

function heapPush(heap: number[], value: number): void {
  let index = heap.length;
  heap.push(value);
  while (index > 0) {
    const parent = (index - 1) >> 1;
    if (heap[parent] <= value) break;
    heap[index] = heap[parent];
    index = parent;
  }
  heap[index] = value;
}

function heapPop(heap: number[]): number {
  const top = heap[0];
  const last = heap.pop() as number;
  const size = heap.length;
  if (size > 0) {
    let index = 0;
    for (;;) {
      let child = 2 * index + 1;
      if (child >= size) break;
      if (child + 1 < size && heap[child + 1] < heap[child]) child++;
      if (heap[child] >= last) break;
      heap[index] = heap[child];
      index = child;
    }
    heap[index] = last;
  }
  return top;
}
