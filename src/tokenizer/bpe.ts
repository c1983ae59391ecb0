
/** A merge rule: the two byte-level token strings that combine into their concatenation. */
export type MergePair = readonly [left: string, right: string];

const MAX_CACHED_PIECE_LENGTH = 64;
const MAX_CACHE_ENTRIES = 1 << 16;
/** Heap entries pack (rank, position) into one exact double: rank * 2^32 + position, so ranks must stay below 2^21. */
const POSITION_RANGE = 2 ** 32;
const MAX_MERGES = 2 ** 21;

/** Smallest power-of-two slot count (at least 1024) that keeps the load factor at most 2/3. */
function tableSize(entries: number): number {
  let size = 1024;
  while (size * 2 < entries * 3) size *= 2;
  return size;
}

/** Whether `n` is a valid hash-table slot count. */
export function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/** Ints per slot of a pair-rank table: left id (-1 when empty), right id, rank. */
const PAIR_SLOT_INTS = 3;

function pairHash(left: number, right: number): number {
  return (Math.imul(left, 0x9e3779b1) ^ Math.imul(right + 0x7f4a7c15, 0x85ebca77)) >>> 0;
}

/**
 * The slots of a {@link PairRankTable} over merge triples (see {@link BytePairEncoder}); the
 * compiled tokenizer stores them so that loading does not rebuild the table.
 */
export function buildPairRankSlots(merges: Int32Array): Int32Array {
  const mergeCount = merges.length / 3;
  const size = tableSize(mergeCount);
  const slots = new Int32Array(size * PAIR_SLOT_INTS).fill(-1);
  const mask = size - 1;
  for (let rank = 0; rank < mergeCount; rank++) {
    const left = merges[rank * 3];
    const right = merges[rank * 3 + 1];
    let slot = pairHash(left, right) & mask;
    for (;;) {
      const base = slot * PAIR_SLOT_INTS;
      const storedLeft = slots[base];
      if (storedLeft === -1) {
        slots[base] = left;
        slots[base + 1] = right;
        slots[base + 2] = rank;
        break;
      }
      // Keeps the first (lowest) rank when a pair is listed twice, as HF tokenizers does.
      if (storedLeft === left && slots[base + 1] === right) break;
      slot = (slot + 1) & mask;
    }
  }
  return slots;
}

/**
 * Open-addressing hash table from a token-id pair to its merge rank. A Map keyed by
 * `left * 2^k + right` would hash heap-allocated doubles; this keeps the hot lookup in int32.
 * Each slot is (left, right, rank) side by side, so a probe touches one cache line.
 */
class PairRankTable {
  private readonly mask: number;

  /** @param slots from {@link buildPairRankSlots}. */
  constructor(private readonly slots: Int32Array) {
    const size = slots.length / PAIR_SLOT_INTS;
    if (!isPowerOfTwo(size)) throw new Error(`pair-rank table of ${slots.length} ints is not a power-of-two number of slots`);
    this.mask = size - 1;
  }

  /** @returns the rank, or -1 when the pair never merges (including when `left` is -1). */
  get(left: number, right: number): number {
    const slots = this.slots;
    let slot = pairHash(left, right) & this.mask;
    // Bounded by the table size so that a corrupt table without empty slots cannot hang.
    for (let probe = 0; probe <= this.mask; probe++) {
      const base = slot * PAIR_SLOT_INTS;
      const storedLeft = slots[base];
      if (storedLeft === -1) return -1;
      if (storedLeft === left && slots[base + 1] === right) return slots[base + 2];
      slot = (slot + 1) & this.mask;
    }
    return -1;
  }
}

function bytesHash(bytes: Uint8Array, start: number, length: number): number {
  let hash = 0x811c9dc5;
  for (let i = start; i < start + length; i++) hash = Math.imul(hash ^ bytes[i], 0x01000193);
  return hash >>> 0;
}

function sameBytes(tokenBytes: Uint8Array, tokenOffsets: Int32Array, id: number, bytes: Uint8Array, start: number, length: number): boolean {
  const tokenStart = tokenOffsets[id];
  if (tokenOffsets[id + 1] - tokenStart !== length) return false;
  for (let i = 0; i < length; i++) if (tokenBytes[tokenStart + i] !== bytes[start + i]) return false;
  return true;
}

/**
 * The slots of a {@link TokenBytesIndex} (token id, -1 when empty) over every id with bytes; the
 * compiled tokenizer stores them so that loading does not rebuild the index.
 */
export function buildTokenIndexSlots(tokenBytes: Uint8Array, tokenOffsets: Int32Array): Int32Array {
  const tokenCount = tokenOffsets.length - 1;
  const size = tableSize(tokenCount);
  const slots = new Int32Array(size).fill(-1);
  const mask = size - 1;
  for (let id = 0; id < tokenCount; id++) {
    const start = tokenOffsets[id];
    const length = tokenOffsets[id + 1] - start;
    if (length === 0) continue;
    let slot = bytesHash(tokenBytes, start, length) & mask;
    // Keeps the first id when two ids share bytes (the compiler rejects that; only a corrupt file has it).
    while (slots[slot] !== -1 && !sameBytes(tokenBytes, tokenOffsets, slots[slot], tokenBytes, start, length)) slot = (slot + 1) & mask;
    if (slots[slot] === -1) slots[slot] = id;
  }
  return slots;
}

/**
 * Open-addressing hash table from a token's bytes to its id, over the flat token bytes of a
 * compiled tokenizer: lookups hash the piece's bytes directly instead of building a string key.
 */
export class TokenBytesIndex {
  private readonly mask: number;

  /**
   * @param tokenBytes the bytes of all tokens, back to back.
   * @param tokenOffsets id i's bytes are `tokenBytes[tokenOffsets[i] .. tokenOffsets[i + 1])`.
   * @param slots from {@link buildTokenIndexSlots} over the same bytes and offsets.
   */
  constructor(
    private readonly tokenBytes: Uint8Array,
    private readonly tokenOffsets: Int32Array,
    private readonly slots: Int32Array,
  ) {
    if (!isPowerOfTwo(slots.length)) throw new Error(`token index of ${slots.length} slots is not a power of two`);
    this.mask = slots.length - 1;
  }

  /** @returns the id of the token whose bytes are `bytes[start .. start + length)`, or undefined. */
  get(bytes: Uint8Array, start: number, length: number): number | undefined {
    let slot = bytesHash(bytes, start, length) & this.mask;
    // Bounded by the table size so that a corrupt table without empty slots cannot hang.
    for (let probe = 0; probe <= this.mask; probe++) {
      const id = this.slots[slot];
      if (id === -1) return undefined;
      if (sameBytes(this.tokenBytes, this.tokenOffsets, id, bytes, start, length)) return id;
      slot = (slot + 1) & this.mask;
    }
    return undefined;
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
  private readonly cache = new Map<string, readonly number[]>();
  private utf8 = new Uint8Array(256);
  private symbolIds = new Int32Array(256);
  private nextSymbol = new Int32Array(256);
  private prevSymbol = new Int32Array(256);
  private readonly heap: number[] = [];

  /**
   * @param tokens the ordinary (non-added) tokens by their bytes.
   * @param merges merge rules as (left id, right id, merged id) triples in priority order (triple index = rank);
   *   the ids must be valid, which the builders in compiled.ts ensure.
   * @param pairRankSlots {@link buildPairRankSlots} of `merges`.
   * @param ignoreMerges when true, a piece that is itself a token is emitted whole without merging.
   */
  constructor(
    private readonly tokens: TokenBytesIndex,
    private readonly merges: Int32Array,
    pairRankSlots: Int32Array,
    private readonly ignoreMerges: boolean,
  ) {
    const single = new Uint8Array(1);
    for (let byte = 0; byte < 256; byte++) {
      single[0] = byte;
      const id = tokens.get(single, 0, 1);
      if (id === undefined) throw new Error(`BPE vocabulary lacks the token for byte 0x${byte.toString(16)}`);
      this.byteIds[byte] = id;
    }
    const mergeCount = merges.length / 3;
    if (mergeCount > MAX_MERGES) throw new Error(`${mergeCount} merge rules exceed the supported ${MAX_MERGES}`);
    this.pairRanks = new PairRankTable(pairRankSlots);
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
      const whole = this.tokens.get(bytes, 0, length);
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
      ids[position] = this.merges[rank * 3 + 2];
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
