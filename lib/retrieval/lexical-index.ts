import type { Chunk, DocumentChunks } from '../domain.js';
import type { Analyzer } from './analyzer.js';

/**
 * One tenant's in-memory BM25F index.
 *
 * Writes go to a forward index (per chunk: its unique term ids and per-field term frequencies) held in a few
 * growable typed arrays. Searches read a frozen inverted index in CSR form — one Int32Array of chunk slots and
 * one Float32Array of precomputed BM25F impacts (idf and length normalisation folded in) — rebuilt lazily on the
 * first search after a change. Rebuilding is a linear pass (about 20 ms for SciFact), far cheaper than keeping
 * per-term mutable postings, and it makes a query a plain sum over typed arrays.
 */

export interface Bm25Params {
  /** Term-frequency saturation. */
  k1: number;
  /** Length normalisation of the body field. */
  b: number;
  /** Length normalisation of the title field. */
  titleB: number;
  /** How much one title occurrence counts against one body occurrence (BM25F field weight). */
  titleWeight: number;
  /**
   * Weight of document-level evidence: a chunk scores its own BM25F plus this times the mean BM25F of its
   * document's chunks (Callan, "Passage-level evidence in document retrieval", SIGIR 1994). A short section that
   * mentions every query term in passing otherwise beats the document that is about the subject throughout.
   * The mean, not the sum, so a long document does not win by its number of chunks. 0 turns it off; with one
   * chunk per document it only rescales scores, so rankings are unchanged.
   */
  documentWeight: number;
}

export interface FeedbackParams {
  /** Top chunks of the first pass used as pseudo-relevant; 0 disables RM3. */
  docs: number;
  /** Expansion terms kept. */
  terms: number;
  /** Weight of the original query against the expansion model. */
  originalWeight: number;
}

export interface ScoredSlot {
  slot: number;
  score: number;
}

interface DocEntry {
  docId: string;
  title: string;
  contentHash: string;
  slots: number[];
  // Scratch for one search: the sum of its chunks' scores.
  scoreSum: number;
}

const INITIAL_SLOTS = 1024;
const INITIAL_POSTINGS = 16 * 1024;
// Per-field term frequencies are stored in one byte: BM25 saturates long before 255 occurrences in one chunk.
const MAX_TF = 0xff;
// Growth factor of the typed arrays: 1.5 rather than 2 bounds the slack at a third of what is used.
const GROWTH = 1.5;
const MAX_FROZEN = 4;

export class TenantIndex {
  corpusVersion = 0;
  private readonly docs = new Map<string, DocEntry>();
  private readonly vocabulary = new Map<string, number>();
  private chunkOf: (Chunk | undefined)[] = [];
  // Slot → its document's entry, for document-level evidence.
  private entryOf: (DocEntry | undefined)[] = [];
  private liveChunks = 0;

  // Forward index: slot → [fwdStart, fwdStart + fwdCount) in the fwd* arrays.
  private slotCount = 0;
  private fwdStart = new Int32Array(INITIAL_SLOTS);
  private fwdCount = new Int32Array(INITIAL_SLOTS);
  private titleLength = new Int32Array(INITIAL_SLOTS);
  private bodyLength = new Int32Array(INITIAL_SLOTS);
  private fwdUsed = 0;
  private fwdTerm = new Int32Array(INITIAL_POSTINGS);
  private fwdTitleTf = new Uint8Array(INITIAL_POSTINGS);
  private fwdBodyTf = new Uint8Array(INITIAL_POSTINGS);

  // Frozen inverted indexes by BM25 parameters (a tenant's live set and, while the improvement loop evaluates,
  // a few candidates); cleared by every write.
  private readonly frozen = new Map<string, FrozenIndex>();
  private accumulator = new Float32Array(0);
  private touched = new Int32Array(0);

  constructor(
    private readonly analyzer: Analyzer,
    private readonly params: Bm25Params,
  ) {}

  get documentCount(): number {
    return this.docs.size;
  }

  get chunkCount(): number {
    return this.liveChunks;
  }

  contentHash(docId: string): string | undefined {
    return this.docs.get(docId)?.contentHash;
  }

  documents(): IterableIterator<DocEntry> {
    return this.docs.values();
  }

  chunksOf(docId: string): Chunk[] {
    const entry = this.docs.get(docId);
    if (!entry) return [];
    return entry.slots.map((slot) => this.chunkOf[slot]).filter((chunk): chunk is Chunk => chunk !== undefined);
  }

  chunk(slot: number): Chunk | undefined {
    return this.chunkOf[slot];
  }

  /** Replaces every chunk of the document. */
  put(doc: DocumentChunks): void {
    this.remove(doc.docId);
    const slots = doc.chunks.map((chunk) => this.addChunk(chunk));
    const entry: DocEntry = { docId: doc.docId, title: doc.title, contentHash: doc.contentHash, slots, scoreSum: 0 };
    for (const slot of slots) this.entryOf[slot] = entry;
    this.docs.set(doc.docId, entry);
  }

  remove(docId: string): boolean {
    const entry = this.docs.get(docId);
    if (!entry) return false;
    for (const slot of entry.slots) {
      this.chunkOf[slot] = undefined;
      this.entryOf[slot] = undefined;
      this.liveChunks--;
    }
    this.docs.delete(docId);
    this.frozen.clear();
    return true;
  }

  /**
   * Top `topK` chunks for weighted query terms, best first; ties go to the earlier-indexed chunk.
   * With feedback, a second pass runs the RM3 expansion of the first pass's top chunks.
   */
  search(query: string, topK: number, feedback?: FeedbackParams, params: Bm25Params = this.params): ScoredSlot[] {
    const terms = this.analyzer.analyze(query);
    if (terms.length === 0 || this.liveChunks === 0) return [];
    const index = this.freeze(params);
    const weights = new Map<number, number>();
    for (const term of terms) {
      const id = this.vocabulary.get(term);
      if (id !== undefined && index.docFrequency[id]! > 0) weights.set(id, (weights.get(id) ?? 0) + 1);
    }
    const documentWeight = params.documentWeight;
    if (!feedback || feedback.docs <= 0 || weights.size === 0) return this.score(index, weights, topK, documentWeight);
    const firstPass = this.score(index, weights, feedback.docs, documentWeight);
    const expanded = this.expand(weights, firstPass, feedback);
    return this.score(index, expanded, topK, documentWeight);
  }

  private addChunk(chunk: Chunk): number {
    // termId → [title tf, body tf]
    const frequencies = new Map<number, [number, number]>();
    const titleTerms = this.analyzer.analyze(chunk.title);
    const bodyTerms = this.analyzer.analyze(chunk.text);
    for (const term of titleTerms) {
      const id = this.termId(term);
      const tf = frequencies.get(id);
      if (tf) tf[0]++;
      else frequencies.set(id, [1, 0]);
    }
    for (const term of bodyTerms) {
      const id = this.termId(term);
      const tf = frequencies.get(id);
      if (tf) tf[1]++;
      else frequencies.set(id, [0, 1]);
    }

    const slot = this.slotCount++;
    this.ensureSlotCapacity(this.slotCount);
    this.ensurePostingCapacity(this.fwdUsed + frequencies.size);
    this.fwdStart[slot] = this.fwdUsed;
    this.fwdCount[slot] = frequencies.size;
    this.titleLength[slot] = titleTerms.length;
    this.bodyLength[slot] = bodyTerms.length;
    for (const [id, [titleTf, bodyTf]] of frequencies) {
      const i = this.fwdUsed++;
      this.fwdTerm[i] = id;
      this.fwdTitleTf[i] = Math.min(titleTf, MAX_TF);
      this.fwdBodyTf[i] = Math.min(bodyTf, MAX_TF);
    }
    this.chunkOf[slot] = chunk;
    this.liveChunks++;
    this.frozen.clear();
    return slot;
  }

  private termId(term: string): number {
    let id = this.vocabulary.get(term);
    if (id === undefined) {
      id = this.vocabulary.size;
      this.vocabulary.set(term, id);
    }
    return id;
  }

  private ensureSlotCapacity(needed: number): void {
    if (needed <= this.fwdStart.length) return;
    const size = Math.max(needed, Math.ceil(this.fwdStart.length * GROWTH));
    this.fwdStart = grow(this.fwdStart, size);
    this.fwdCount = grow(this.fwdCount, size);
    this.titleLength = grow(this.titleLength, size);
    this.bodyLength = grow(this.bodyLength, size);
  }

  private ensurePostingCapacity(needed: number): void {
    if (needed <= this.fwdTerm.length) return;
    const size = Math.max(needed, Math.ceil(this.fwdTerm.length * GROWTH));
    this.fwdTerm = grow(this.fwdTerm, size);
    this.fwdTitleTf = grow(this.fwdTitleTf, size);
    this.fwdBodyTf = grow(this.fwdBodyTf, size);
  }

  /** Drops dead slots once they outnumber live ones, so memory tracks the live corpus. */
  private compact(): void {
    const dead = this.slotCount - this.liveChunks;
    if (dead < 1024 || dead < this.liveChunks) return;
    const chunkOf: (Chunk | undefined)[] = [];
    const entryOf: (DocEntry | undefined)[] = [];
    const fwdStart = new Int32Array(Math.max(INITIAL_SLOTS, this.liveChunks));
    const fwdCount = new Int32Array(fwdStart.length);
    const titleLength = new Int32Array(fwdStart.length);
    const bodyLength = new Int32Array(fwdStart.length);
    let used = 0;
    for (let slot = 0; slot < this.slotCount; slot++) if (this.chunkOf[slot]) used += this.fwdCount[slot]!;
    const fwdTerm = new Int32Array(Math.max(INITIAL_POSTINGS, used));
    const fwdTitleTf = new Uint8Array(fwdTerm.length);
    const fwdBodyTf = new Uint8Array(fwdTerm.length);
    const renumber = new Int32Array(this.slotCount).fill(-1);
    let next = 0;
    let offset = 0;
    for (let slot = 0; slot < this.slotCount; slot++) {
      const chunk = this.chunkOf[slot];
      if (!chunk) continue;
      const start = this.fwdStart[slot]!;
      const count = this.fwdCount[slot]!;
      fwdTerm.set(this.fwdTerm.subarray(start, start + count), offset);
      fwdTitleTf.set(this.fwdTitleTf.subarray(start, start + count), offset);
      fwdBodyTf.set(this.fwdBodyTf.subarray(start, start + count), offset);
      fwdStart[next] = offset;
      fwdCount[next] = count;
      titleLength[next] = this.titleLength[slot]!;
      bodyLength[next] = this.bodyLength[slot]!;
      chunkOf[next] = chunk;
      entryOf[next] = this.entryOf[slot];
      renumber[slot] = next++;
      offset += count;
    }
    for (const entry of this.docs.values()) entry.slots = entry.slots.map((slot) => renumber[slot]!);
    Object.assign(this, {
      chunkOf,
      entryOf,
      fwdStart,
      fwdCount,
      titleLength,
      bodyLength,
      fwdTerm,
      fwdTitleTf,
      fwdBodyTf,
    });
    this.slotCount = next;
    this.fwdUsed = offset;
  }

  private freeze(params: Bm25Params): FrozenIndex {
    const key = `${params.k1}/${params.b}/${params.titleB}/${params.titleWeight}`;
    const found = this.frozen.get(key);
    if (found) return found;
    this.compact();
    const { k1, b, titleB, titleWeight } = params;
    const terms = this.vocabulary.size;
    const docFrequency = new Int32Array(terms);
    let titleTotal = 0;
    let bodyTotal = 0;
    for (let slot = 0; slot < this.slotCount; slot++) {
      if (!this.chunkOf[slot]) continue;
      titleTotal += this.titleLength[slot]!;
      bodyTotal += this.bodyLength[slot]!;
      const start = this.fwdStart[slot]!;
      const end = start + this.fwdCount[slot]!;
      for (let i = start; i < end; i++) docFrequency[this.fwdTerm[i]!]!++;
    }
    const n = this.liveChunks;
    const avgTitle = Math.max(titleTotal / n, 1e-9);
    const avgBody = Math.max(bodyTotal / n, 1e-9);
    const offsets = new Int32Array(terms + 1);
    for (let t = 0; t < terms; t++) offsets[t + 1] = offsets[t]! + docFrequency[t]!;
    const postingSlots = new Int32Array(offsets[terms]!);
    const impacts = new Float32Array(offsets[terms]!);
    const idf = new Float64Array(terms);
    // Lucene's non-negative BM25 idf.
    for (let t = 0; t < terms; t++) idf[t] = Math.log(1 + (n - docFrequency[t]! + 0.5) / (docFrequency[t]! + 0.5));
    const fill = offsets.slice(0, terms);
    for (let slot = 0; slot < this.slotCount; slot++) {
      if (!this.chunkOf[slot]) continue;
      const titleNorm = 1 - titleB + (titleB * this.titleLength[slot]!) / avgTitle;
      const bodyNorm = 1 - b + (b * this.bodyLength[slot]!) / avgBody;
      const start = this.fwdStart[slot]!;
      const end = start + this.fwdCount[slot]!;
      for (let i = start; i < end; i++) {
        const term = this.fwdTerm[i]!;
        const titleTf = this.fwdTitleTf[i]!;
        const bodyTf = this.fwdBodyTf[i]!;
        // A field the term does not occur in adds nothing: with b = 1 an empty field's norm is 0, and 0/0 would make
        // the score NaN, which no comparison ranks (a NaN chunk stuck at the top of a top-1 search).
        const tf = (titleTf > 0 ? (titleWeight * titleTf) / titleNorm : 0) + (bodyTf > 0 ? bodyTf / bodyNorm : 0);
        const at = fill[term]!++;
        postingSlots[at] = slot;
        impacts[at] = (idf[term]! * tf * (k1 + 1)) / (k1 + tf);
      }
    }
    if (this.accumulator.length < this.slotCount) {
      this.accumulator = new Float32Array(this.slotCount);
      this.touched = new Int32Array(this.slotCount);
    }
    const frozen = { offsets, postingSlots, impacts, docFrequency };
    // Bounded: the oldest parameter set goes first.
    if (this.frozen.size >= MAX_FROZEN) this.frozen.delete(this.frozen.keys().next().value!);
    this.frozen.set(key, frozen);
    return frozen;
  }

  private score(index: FrozenIndex, weights: Map<number, number>, topK: number, documentWeight: number): ScoredSlot[] {
    const acc = this.accumulator;
    const touched = this.touched;
    let touchedCount = 0;
    for (const [term, weight] of weights) {
      const end = index.offsets[term + 1]!;
      for (let i = index.offsets[term]!; i < end; i++) {
        const slot = index.postingSlots[i]!;
        const current = acc[slot]!;
        if (current === 0) touched[touchedCount++] = slot;
        acc[slot] = current + weight * index.impacts[i]!;
      }
    }
    if (documentWeight > 0) {
      for (let i = 0; i < touchedCount; i++) this.entryOf[touched[i]!]!.scoreSum += acc[touched[i]!]!;
    }
    const top = new TopK(topK);
    for (let i = 0; i < touchedCount; i++) {
      const slot = touched[i]!;
      const entry = this.entryOf[slot]!;
      const documentScore = documentWeight > 0 ? entry.scoreSum / entry.slots.length : 0;
      top.offer(slot, acc[slot]! + documentWeight * documentScore);
    }
    for (let i = 0; i < touchedCount; i++) {
      const slot = touched[i]!;
      acc[slot] = 0;
      this.entryOf[slot]!.scoreSum = 0;
    }
    return top.sorted();
  }

  /** RM3: mixes the query with a relevance model estimated from the first pass's top chunks. */
  private expand(
    original: Map<number, number>,
    firstPass: ScoredSlot[],
    feedback: FeedbackParams,
  ): Map<number, number> {
    const model = new Map<number, number>();
    const scoreSum = firstPass.reduce((sum, hit) => sum + hit.score, 0);
    if (scoreSum <= 0) return original;
    for (const hit of firstPass) {
      const start = this.fwdStart[hit.slot]!;
      const end = start + this.fwdCount[hit.slot]!;
      const length = this.titleLength[hit.slot]! + this.bodyLength[hit.slot]!;
      if (length === 0) continue;
      const docWeight = hit.score / scoreSum;
      for (let i = start; i < end; i++) {
        const tf = this.fwdTitleTf[i]! + this.fwdBodyTf[i]!;
        const term = this.fwdTerm[i]!;
        model.set(term, (model.get(term) ?? 0) + (docWeight * tf) / length);
      }
    }
    const expansion = [...model.entries()].sort((x, y) => y[1] - x[1]).slice(0, feedback.terms);
    const expansionSum = expansion.reduce((sum, [, weight]) => sum + weight, 0);
    let originalSum = 0;
    for (const weight of original.values()) originalSum += weight;
    const mixed = new Map<number, number>();
    for (const [term, weight] of original) mixed.set(term, (feedback.originalWeight * weight) / originalSum);
    for (const [term, weight] of expansion) {
      mixed.set(term, (mixed.get(term) ?? 0) + ((1 - feedback.originalWeight) * weight) / expansionSum);
    }
    return mixed;
  }
}

interface FrozenIndex {
  offsets: Int32Array;
  postingSlots: Int32Array;
  impacts: Float32Array;
  docFrequency: Int32Array;
}

function grow<T extends Int32Array | Uint8Array>(array: T, size: number): T {
  const next = new (array.constructor as new (size: number) => T)(size);
  next.set(array);
  return next;
}

/** Bounded min-heap keeping the best `k` (score, slot) pairs; lower slot wins a tie. */
class TopK {
  private readonly slots: Int32Array;
  private readonly scores: Float64Array;
  private size = 0;

  constructor(private readonly k: number) {
    this.slots = new Int32Array(k);
    this.scores = new Float64Array(k);
  }

  offer(slot: number, score: number): void {
    if (this.k === 0) return;
    if (this.size < this.k) {
      this.slots[this.size] = slot;
      this.scores[this.size] = score;
      this.up(this.size++);
    } else if (this.better(score, slot, this.scores[0]!, this.slots[0]!)) {
      this.slots[0] = slot;
      this.scores[0] = score;
      this.down(0);
    }
  }

  sorted(): ScoredSlot[] {
    const out: ScoredSlot[] = [];
    for (let i = 0; i < this.size; i++) out.push({ slot: this.slots[i]!, score: this.scores[i]! });
    return out.sort((x, y) => y.score - x.score || x.slot - y.slot);
  }

  private better(scoreA: number, slotA: number, scoreB: number, slotB: number): boolean {
    return scoreA > scoreB || (scoreA === scoreB && slotA < slotB);
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.better(this.scores[parent]!, this.slots[parent]!, this.scores[i]!, this.slots[i]!)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let worst = i;
      if (
        left < this.size &&
        this.better(this.scores[worst]!, this.slots[worst]!, this.scores[left]!, this.slots[left]!)
      )
        worst = left;
      if (
        right < this.size &&
        this.better(this.scores[worst]!, this.slots[worst]!, this.scores[right]!, this.slots[right]!)
      )
        worst = right;
      if (worst === i) return;
      this.swap(i, worst);
      i = worst;
    }
  }

  private swap(a: number, b: number): void {
    const slot = this.slots[a]!;
    const score = this.scores[a]!;
    this.slots[a] = this.slots[b]!;
    this.scores[a] = this.scores[b]!;
    this.slots[b] = slot;
    this.scores[b] = score;
  }
}
