import { Index as UsearchIndex } from 'usearch';
import { createMemory, dotKernel, type DotsFunction } from './dot-kernel.js';

/**
 * Size (live vectors) from which a tenant's dense search goes through an HNSW graph (usearch) instead of an exact
 * scan. At 20,000 384-dimension vectors the SIMD exact scan costs ~3.3 CPU ms per query (13.5 with the scalar loop it
 * replaced) and the graph 1.5–2.5, but the graph is built in one blocking native call on the first search past the
 * threshold (15–150 s for 20,000 on the loaded shared machine), so it is not lowered (lib/retrieval/README.md,
 * `npm run bench -- dense`).
 */
export const DEFAULT_ANN_THRESHOLD = 20_000;

export interface DenseIndexOptions {
  /** @default DEFAULT_ANN_THRESHOLD */
  annThreshold?: number;
  /** HNSW neighbours per node. @default 16 */
  connectivity?: number;
  /** HNSW candidate list while building; larger builds slower and a better graph. @default 128 */
  expansionAdd?: number;
  /** HNSW candidate list while searching; larger is slower and more exact. @default 128 */
  expansionSearch?: number;
}

/** How the exact scan computes its dot products: the SIMD kernel (default) or the scalar JavaScript loop it replaces. */
export type ExactScan = 'simd' | 'scalar';

// Rows scored per kernel call: their float64 scores (8 KB) stay in the L1 cache for the selection that follows.
const SCAN_BLOCK = 1024;
const PAGE = 65_536;

export interface DenseMatch {
  id: string;
  /** Cosine similarity. */
  score: number;
}

/** Why a vector cannot be used; the caller names the document. */
export function vectorProblem(vector: ArrayLike<number>, dimensions: number): string | undefined {
  if (vector.length !== dimensions) return `has ${vector.length} dimensions, expected ${dimensions}`;
  let norm = 0;
  for (let i = 0; i < vector.length; i++) {
    const value = vector[i]!;
    if (!Number.isFinite(value)) return 'contains NaN or infinite values';
    norm += value * value;
  }
  return norm === 0 ? 'is all zeros' : undefined;
}

/** A unit-length float32 copy, so cosine similarity is a dot product. */
export function normalised(vector: ArrayLike<number>): Float32Array {
  const copy = Float32Array.from(vector);
  let norm = 0;
  for (let i = 0; i < copy.length; i++) norm += copy[i]! * copy[i]!;
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let i = 0; i < copy.length; i++) copy[i]! *= scale;
  return copy;
}

/**
 * One tenant's chunk vectors: a growable row-major Float32Array (slot = row), exact cosine by a scan of it, and,
 * from `annThreshold` live vectors, an HNSW graph kept in step on every put and remove. Freed rows are reused so
 * memory tracks the live corpus. The graph is built lazily on the first search past the threshold, because bulk
 * loading a snapshot and then building once is much faster than growing the graph row by row.
 */
export class DenseIndex {
  // The vectors live in WebAssembly memory, laid out as [query as float64 | one block's scores | matrix], so the SIMD
  // kernel reads them in place. Growing the memory detaches the old views, so they are rebuilt in ensureCapacity.
  private readonly memory = createMemory(1);
  private readonly kernel: DotsFunction | undefined;
  private readonly queryOffset = 0;
  private readonly scoresOffset: number;
  private readonly matrixOffset: number;
  private queryView!: Float64Array;
  private scores!: Float64Array;
  private matrix!: Float32Array;
  private capacity = 0;
  private rows = 0;
  private readonly slotOf = new Map<string, number>();
  private idOf: (string | undefined)[] = [];
  private readonly free: number[] = [];
  // 1 for a row holding a live vector: the scan tests a byte instead of loading a string slot.
  private live = new Uint8Array(0);
  private heapScore = new Float32Array(0);
  private heapSlot = new Int32Array(0);
  private ann: UsearchIndex | undefined;
  private readonly annThreshold: number;

  constructor(
    readonly dimensions: number,
    private readonly options: DenseIndexOptions = {},
  ) {
    this.annThreshold = options.annThreshold ?? DEFAULT_ANN_THRESHOLD;
    this.kernel = dotKernel(this.memory);
    this.scoresOffset = align16(dimensions * 8);
    this.matrixOffset = this.scoresOffset + SCAN_BLOCK * 8;
    this.ensureCapacity(0);
  }

  get size(): number {
    return this.slotOf.size;
  }

  /** How searchExact computes by default: 'scalar' only where WebAssembly SIMD is unavailable. */
  get exactScan(): ExactScan {
    return this.kernel ? 'simd' : 'scalar';
  }

  get usesAnn(): boolean {
    return this.ann !== undefined;
  }

  has(id: string): boolean {
    return this.slotOf.has(id);
  }

  /** A copy of the stored (unit-length) vector of `id` (a copy: a later put may move the memory it lives in). */
  get(id: string): Float32Array | undefined {
    const slot = this.slotOf.get(id);
    return slot === undefined ? undefined : this.row(slot).slice();
  }

  /** Stores `vector` (normalised) for `id`, replacing any previous one. Check it with `vectorProblem` first. */
  put(id: string, vector: ArrayLike<number>): void {
    this.remove(id);
    const slot = this.free.pop() ?? this.rows++;
    this.ensureCapacity(slot + 1);
    this.matrix.set(normalised(vector), slot * this.dimensions);
    this.slotOf.set(id, slot);
    this.idOf[slot] = id;
    this.live[slot] = 1;
    this.ann?.add(BigInt(slot), this.row(slot));
  }

  remove(id: string): boolean {
    const slot = this.slotOf.get(id);
    if (slot === undefined) return false;
    this.slotOf.delete(id);
    this.idOf[slot] = undefined;
    this.live[slot] = 0;
    this.free.push(slot);
    this.ann?.remove(BigInt(slot));
    if (this.ann && this.size < this.annThreshold / 2) this.ann = undefined;
    return true;
  }

  /** The `k` most similar stored vectors, best first. */
  search(query: ArrayLike<number>, k: number): DenseMatch[] {
    if (k <= 0 || this.size === 0) return [];
    const unit = normalised(query);
    if (!this.ann && this.size >= this.annThreshold) this.buildAnn();
    return this.ann ? this.searchAnn(unit, k) : this.searchExact(unit, k);
  }

  /**
   * Exact search regardless of size: the reference the approximate index is measured against. Scores a block of rows
   * at a time with the SIMD kernel (dot-kernel.ts; `scan: 'scalar'` runs the JavaScript loop it reproduces bit for
   * bit), then keeps the best `k` in a bounded min-heap in reused typed arrays, so a query allocates nothing but its
   * result.
   */
  searchExact(unitQuery: Float32Array, k: number, scan: ExactScan = 'simd'): DenseMatch[] {
    const dims = this.dimensions;
    const live = this.live;
    const want = Math.min(k, this.size);
    if (this.heapScore.length < want) {
      this.heapScore = new Float32Array(want);
      this.heapSlot = new Int32Array(want);
    }
    const heapScore = this.heapScore;
    const heapSlot = this.heapSlot;
    const scores = this.scores;
    const kernel = scan === 'simd' ? this.kernel : undefined;
    if (kernel) this.queryView.set(unitQuery);
    let filled = 0;
    for (let first = 0; first < this.rows; first += SCAN_BLOCK) {
      const count = Math.min(SCAN_BLOCK, this.rows - first);
      if (kernel) {
        kernel(this.matrixOffset + first * dims * 4, this.queryOffset, this.scoresOffset, count, dims);
      } else {
        scalarDots(this.matrix, unitQuery, scores, first, count, dims);
      }
      for (let i = 0; i < count; i++) {
        const slot = first + i;
        if (live[slot] === 0) continue;
        const dot = scores[i]!;
        if (filled < want) {
          let at = filled++;
          while (at > 0) {
            const parent = (at - 1) >> 1;
            if (heapScore[parent]! <= dot) break;
            heapScore[at] = heapScore[parent]!;
            heapSlot[at] = heapSlot[parent]!;
            at = parent;
          }
          heapScore[at] = dot;
          heapSlot[at] = slot;
        } else if (dot > heapScore[0]!) {
          let at = 0;
          for (;;) {
            const left = 2 * at + 1;
            if (left >= want) break;
            const right = left + 1;
            const child = right < want && heapScore[right]! < heapScore[left]! ? right : left;
            if (heapScore[child]! >= dot) break;
            heapScore[at] = heapScore[child]!;
            heapSlot[at] = heapSlot[child]!;
            at = child;
          }
          heapScore[at] = dot;
          heapSlot[at] = slot;
        }
      }
    }
    const matches: DenseMatch[] = [];
    for (let i = 0; i < filled; i++) matches.push({ id: this.idOf[heapSlot[i]!]!, score: heapScore[i]! });
    return matches.sort((x, y) => y.score - x.score);
  }

  /**
   * The approximate top `k` for a unit query, asking the graph for `candidates` (≥ k) and keeping the best k: the
   * graph's search list is at least the number of results asked for, so this widens the search per query without
   * rebuilding (the bench sweeps it). Builds the graph first if there is none.
   */
  searchAnn(unitQuery: Float32Array, k: number, candidates = k): DenseMatch[] {
    if (!this.ann) this.buildAnn();
    const found = this.ann!.search(unitQuery, Math.min(Math.max(k, candidates), this.size), 0);
    const matches: DenseMatch[] = [];
    for (let i = 0; i < found.keys.length && matches.length < k; i++) {
      const id = this.idOf[Number(found.keys[i]!)];
      // usearch's cosine distance is 1 - similarity.
      if (id !== undefined) matches.push({ id, score: 1 - found.distances[i]! });
    }
    return matches;
  }

  /** Builds the HNSW graph over every live row in one multi-threaded batch. */
  buildAnn(): void {
    const ann = new UsearchIndex({
      dimensions: this.dimensions,
      metric: 'cos' as never,
      quantization: 'f32' as never,
      connectivity: this.options.connectivity ?? 16,
      expansion_add: this.options.expansionAdd ?? 128,
      expansion_search: this.options.expansionSearch ?? 128,
      multi: false,
    });
    const live = [...this.slotOf.values()].sort((a, b) => a - b);
    const batch = 65_536;
    for (let start = 0; start < live.length; start += batch) {
      const slots = live.slice(start, start + batch);
      const keys = BigUint64Array.from(slots, (slot) => BigInt(slot));
      const vectors = new Float32Array(slots.length * this.dimensions);
      slots.forEach((slot, i) => vectors.set(this.row(slot), i * this.dimensions));
      ann.add(keys, vectors, 0);
    }
    this.ann = ann;
  }

  private row(slot: number): Float32Array {
    return this.matrix.subarray(slot * this.dimensions, (slot + 1) * this.dimensions);
  }

  private ensureCapacity(rows: number): void {
    if (rows <= this.capacity && this.matrix) return;
    const capacity = rows <= this.capacity ? this.capacity : Math.max(rows, Math.ceil(this.capacity * 1.5), 64);
    const bytes = this.matrixOffset + capacity * this.dimensions * 4;
    const pages = Math.ceil(bytes / PAGE) - this.memory.buffer.byteLength / PAGE;
    if (pages > 0) {
      try {
        this.memory.grow(pages);
      } catch (error) {
        throw new Error(
          `dense index cannot grow to ${capacity} vectors of ${this.dimensions} dimensions (${Math.ceil(bytes / 2 ** 20)} MB; WebAssembly memory is limited to 4 GB)`,
          { cause: error },
        );
      }
    }
    const buffer = this.memory.buffer;
    this.queryView = new Float64Array(buffer, this.queryOffset, this.dimensions);
    this.scores = new Float64Array(buffer, this.scoresOffset, SCAN_BLOCK);
    this.matrix = new Float32Array(buffer, this.matrixOffset, capacity * this.dimensions);
    const live = new Uint8Array(capacity);
    live.set(this.live);
    this.live = live;
    this.capacity = capacity;
  }
}

const align16 = (bytes: number) => Math.ceil(bytes / 16) * 16;

/**
 * The scalar scan the kernel replaces (kept as its reference and as the fallback without WebAssembly SIMD): four
 * independent sums per row, one per dimension modulo 4, so the FPU works on four chains instead of waiting on one.
 */
function scalarDots(
  matrix: Float32Array,
  query: Float32Array,
  out: Float64Array,
  first: number,
  count: number,
  dims: number,
): void {
  const tail = dims - (dims % 4);
  for (let i = 0; i < count; i++) {
    const base = (first + i) * dims;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let d = 0;
    for (; d < tail; d += 4) {
      s0 += matrix[base + d]! * query[d]!;
      s1 += matrix[base + d + 1]! * query[d + 1]!;
      s2 += matrix[base + d + 2]! * query[d + 2]!;
      s3 += matrix[base + d + 3]! * query[d + 3]!;
    }
    for (; d < dims; d++) s0 += matrix[base + d]! * query[d]!;
    out[i] = s0 + s1 + s2 + s3;
  }
}
