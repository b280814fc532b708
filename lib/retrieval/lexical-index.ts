import type { Chunk, DocumentChunks } from '../domain.js';
import type { Analyzer } from './analyzer.js';
import { ForwardIndex } from './lexical/forward-index.js';
import { freezeIndex, type FrozenIndex } from './lexical/frozen-index.js';
import type { Bm25Params, FeedbackParams } from './lexical/params.js';
import { expandQuery } from './lexical/rm3.js';
import { TopK, type ScoredSlot } from './lexical/top-k.js';

export type { Bm25Params, FeedbackParams } from './lexical/params.js';
export type { ScoredSlot } from './lexical/top-k.js';

/**
 * One tenant's in-memory BM25F index.
 *
 * Writes go to a forward index (lexical/forward-index.ts: per chunk its unique term ids and per-field term
 * frequencies) held in a few growable typed arrays. Searches read a frozen inverted index in CSR form
 * (lexical/frozen-index.ts) — one Int32Array of chunk slots and one Float32Array of precomputed BM25F impacts (idf
 * and length normalisation folded in) — rebuilt lazily on the first search after a change. Rebuilding is a linear
 * pass (about 20 ms for SciFact), far cheaper than keeping per-term mutable postings, and it makes a query a plain
 * sum over typed arrays, whose best chunks a bounded heap keeps (lexical/top-k.ts). RM3 feedback is lexical/rm3.ts.
 */

interface DocEntry {
  docId: string;
  title: string;
  contentHash: string;
  slots: number[];
  // Scratch for one search: the sum of its chunks' scores.
  scoreSum: number;
}

const MAX_FROZEN = 4;

export class TenantIndex {
  corpusVersion = 0;
  private readonly docs = new Map<string, DocEntry>();
  private readonly vocabulary = new Map<string, number>();
  private chunkOf: (Chunk | undefined)[] = [];
  // Slot → its document's entry, for document-level evidence.
  private entryOf: (DocEntry | undefined)[] = [];
  private liveChunks = 0;

  // Slot → its terms and field lengths: what writes change and frozen indexes are built from.
  private readonly forward = new ForwardIndex();

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
    const expanded = expandQuery(this.forward, weights, firstPass, feedback);
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

    const slot = this.forward.add(frequencies, titleTerms.length, bodyTerms.length);
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

  /** Drops dead slots once they outnumber live ones, so memory tracks the live corpus. */
  private compact(): void {
    const dead = this.forward.slotCount - this.liveChunks;
    if (dead < 1024 || dead < this.liveChunks) return;
    const slotCount = this.forward.slotCount;
    const renumber = this.forward.compact((slot) => this.chunkOf[slot] !== undefined, this.liveChunks);
    const chunkOf: (Chunk | undefined)[] = [];
    const entryOf: (DocEntry | undefined)[] = [];
    for (let slot = 0; slot < slotCount; slot++) {
      const next = renumber[slot]!;
      if (next < 0) continue;
      chunkOf[next] = this.chunkOf[slot];
      entryOf[next] = this.entryOf[slot];
    }
    for (const entry of this.docs.values()) entry.slots = entry.slots.map((slot) => renumber[slot]!);
    this.chunkOf = chunkOf;
    this.entryOf = entryOf;
  }

  private freeze(params: Bm25Params): FrozenIndex {
    const key = `${params.k1}/${params.b}/${params.titleB}/${params.titleWeight}`;
    const found = this.frozen.get(key);
    if (found) return found;
    this.compact();
    const frozen = freezeIndex(this.forward, this.chunkOf, this.liveChunks, this.vocabulary.size, params);
    const slotCount = this.forward.slotCount;
    if (this.accumulator.length < slotCount) {
      this.accumulator = new Float32Array(slotCount);
      this.touched = new Int32Array(slotCount);
    }
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
}
