/**
 * The write side of a tenant's lexical index: per chunk slot, its unique term ids with per-field term frequencies
 * and its field lengths, held in a few growable typed arrays. Slot `s` owns `[start[s], start[s] + count[s])` of the
 * `term` / `titleTf` / `bodyTf` arrays. Slots are only appended; compaction drops the dead ones.
 */

const INITIAL_SLOTS = 1024;
const INITIAL_POSTINGS = 16 * 1024;
// Per-field term frequencies are stored in one byte: BM25 saturates long before 255 occurrences in one chunk.
const MAX_TF = 0xff;
// Growth factor of the typed arrays: 1.5 rather than 2 bounds the slack at a third of what is used.
const GROWTH = 1.5;

export class ForwardIndex {
  slotCount = 0;
  start = new Int32Array(INITIAL_SLOTS);
  count = new Int32Array(INITIAL_SLOTS);
  titleLength = new Int32Array(INITIAL_SLOTS);
  bodyLength = new Int32Array(INITIAL_SLOTS);
  used = 0;
  term = new Int32Array(INITIAL_POSTINGS);
  titleTf = new Uint8Array(INITIAL_POSTINGS);
  bodyTf = new Uint8Array(INITIAL_POSTINGS);

  /** Appends a slot for one chunk: its term frequencies (term id → [title tf, body tf]) and field lengths. */
  add(frequencies: Map<number, [number, number]>, titleLength: number, bodyLength: number): number {
    const slot = this.slotCount++;
    this.ensureSlotCapacity(this.slotCount);
    this.ensurePostingCapacity(this.used + frequencies.size);
    this.start[slot] = this.used;
    this.count[slot] = frequencies.size;
    this.titleLength[slot] = titleLength;
    this.bodyLength[slot] = bodyLength;
    for (const [id, [titleTf, bodyTf]] of frequencies) {
      const i = this.used++;
      this.term[i] = id;
      this.titleTf[i] = Math.min(titleTf, MAX_TF);
      this.bodyTf[i] = Math.min(bodyTf, MAX_TF);
    }
    return slot;
  }

  /**
   * Keeps only the slots `live` accepts (`liveCount` of them), in order, in arrays sized to them. Returns each old
   * slot's new number, -1 for a dropped one.
   */
  compact(live: (slot: number) => boolean, liveCount: number): Int32Array {
    const start = new Int32Array(Math.max(INITIAL_SLOTS, liveCount));
    const count = new Int32Array(start.length);
    const titleLength = new Int32Array(start.length);
    const bodyLength = new Int32Array(start.length);
    let used = 0;
    for (let slot = 0; slot < this.slotCount; slot++) if (live(slot)) used += this.count[slot]!;
    const term = new Int32Array(Math.max(INITIAL_POSTINGS, used));
    const titleTf = new Uint8Array(term.length);
    const bodyTf = new Uint8Array(term.length);
    const renumber = new Int32Array(this.slotCount).fill(-1);
    let next = 0;
    let offset = 0;
    for (let slot = 0; slot < this.slotCount; slot++) {
      if (!live(slot)) continue;
      const from = this.start[slot]!;
      const n = this.count[slot]!;
      term.set(this.term.subarray(from, from + n), offset);
      titleTf.set(this.titleTf.subarray(from, from + n), offset);
      bodyTf.set(this.bodyTf.subarray(from, from + n), offset);
      start[next] = offset;
      count[next] = n;
      titleLength[next] = this.titleLength[slot]!;
      bodyLength[next] = this.bodyLength[slot]!;
      renumber[slot] = next++;
      offset += n;
    }
    this.start = start;
    this.count = count;
    this.titleLength = titleLength;
    this.bodyLength = bodyLength;
    this.term = term;
    this.titleTf = titleTf;
    this.bodyTf = bodyTf;
    this.slotCount = next;
    this.used = offset;
    return renumber;
  }

  private ensureSlotCapacity(needed: number): void {
    if (needed <= this.start.length) return;
    const size = Math.max(needed, Math.ceil(this.start.length * GROWTH));
    this.start = grow(this.start, size);
    this.count = grow(this.count, size);
    this.titleLength = grow(this.titleLength, size);
    this.bodyLength = grow(this.bodyLength, size);
  }

  private ensurePostingCapacity(needed: number): void {
    if (needed <= this.term.length) return;
    const size = Math.max(needed, Math.ceil(this.term.length * GROWTH));
    this.term = grow(this.term, size);
    this.titleTf = grow(this.titleTf, size);
    this.bodyTf = grow(this.bodyTf, size);
  }
}

function grow<T extends Int32Array | Uint8Array>(array: T, size: number): T {
  const next = new (array.constructor as new (size: number) => T)(size);
  next.set(array);
  return next;
}
