import { Index as UsearchIndex } from 'usearch';

/**
 * Size (live vectors) from which a tenant's dense search goes through an HNSW graph (usearch) instead of an exact
 * scan. At 20,000 384-dimension vectors the exact scan costs ~13.5 CPU ms per query and the graph 1.5–2.5, but the
 * graph is built in one blocking native call on the first search past the threshold (15–150 s for 20,000 on the
 * loaded shared machine), so it is not lowered further (lib/retrieval/README.md, `npm run bench -- dense`).
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
  private matrix: Float32Array;
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
    this.matrix = new Float32Array(0);
  }

  get size(): number {
    return this.slotOf.size;
  }

  get usesAnn(): boolean {
    return this.ann !== undefined;
  }

  has(id: string): boolean {
    return this.slotOf.has(id);
  }

  /** The stored (unit-length) vector of `id`. */
  get(id: string): Float32Array | undefined {
    const slot = this.slotOf.get(id);
    return slot === undefined ? undefined : this.matrix.subarray(slot * this.dimensions, (slot + 1) * this.dimensions);
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
   * Exact search regardless of size: the reference the approximate index is measured against. A scan of the one
   * row-major matrix with four independent accumulators (V8 does not vectorise, but four chains of multiply-adds
   * keep the FPU busy instead of waiting on one running sum: about twice as fast as a single accumulator) and a
   * bounded min-heap in reused typed arrays, so a query allocates nothing but its result.
   */
  searchExact(unitQuery: Float32Array, k: number): DenseMatch[] {
    const dims = this.dimensions;
    const matrix = this.matrix;
    const live = this.live;
    const want = Math.min(k, this.size);
    if (this.heapScore.length < want) {
      this.heapScore = new Float32Array(want);
      this.heapSlot = new Int32Array(want);
    }
    const heapScore = this.heapScore;
    const heapSlot = this.heapSlot;
    const tail = dims - (dims % 4);
    let filled = 0;
    for (let slot = 0; slot < this.rows; slot++) {
      if (live[slot] === 0) continue;
      const base = slot * dims;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let d = 0;
      for (; d < tail; d += 4) {
        s0 += matrix[base + d]! * unitQuery[d]!;
        s1 += matrix[base + d + 1]! * unitQuery[d + 1]!;
        s2 += matrix[base + d + 2]! * unitQuery[d + 2]!;
        s3 += matrix[base + d + 3]! * unitQuery[d + 3]!;
      }
      for (; d < dims; d++) s0 += matrix[base + d]! * unitQuery[d]!;
      const dot = s0 + s1 + s2 + s3;
      if (filled < want) {
        let i = filled++;
        while (i > 0) {
          const parent = (i - 1) >> 1;
          if (heapScore[parent]! <= dot) break;
          heapScore[i] = heapScore[parent]!;
          heapSlot[i] = heapSlot[parent]!;
          i = parent;
        }
        heapScore[i] = dot;
        heapSlot[i] = slot;
      } else if (dot > heapScore[0]!) {
        let i = 0;
        for (;;) {
          const left = 2 * i + 1;
          if (left >= want) break;
          const right = left + 1;
          const child = right < want && heapScore[right]! < heapScore[left]! ? right : left;
          if (heapScore[child]! >= dot) break;
          heapScore[i] = heapScore[child]!;
          heapSlot[i] = heapSlot[child]!;
          i = child;
        }
        heapScore[i] = dot;
        heapSlot[i] = slot;
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
    if (rows <= this.capacity) return;
    const capacity = Math.max(rows, Math.ceil(this.capacity * 1.5), 64);
    const grown = new Float32Array(capacity * this.dimensions);
    grown.set(this.matrix);
    this.matrix = grown;
    const live = new Uint8Array(capacity);
    live.set(this.live);
    this.live = live;
    this.capacity = capacity;
  }
}
