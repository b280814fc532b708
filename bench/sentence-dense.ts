/**
 * Sentence-level dense scores for the `--cv-sentences` (SciFact) and `--sentences` (sample corpus) experiments: each
 * item (an abstract, a chunk) keeps the unit vectors of its sentences, and a query gets, per item, its best
 * sentence's cosine (`max`), the mean of its best two (`top2`), and its best window of two or three adjacent
 * sentences (`win2`, `win3`: cosine with the normalised sum of their vectors, so windows cost no further embedding;
 * an item with fewer sentences is one window).
 */
import { normalised } from '../lib/retrieval/dense-index.js';

export const SENTENCE_SCORINGS = ['max', 'top2', 'win2', 'win3'] as const;
export type SentenceScoring = (typeof SENTENCE_SCORINGS)[number];

export class SentenceVectors {
  private readonly matrix: Float32Array;
  private readonly offsets: Int32Array;
  /** |v_i + v_{i+1}| for each adjacent pair within an item, so a window's cosine is (q·v_i + q·v_{i+1}) / it. */
  private readonly windowNorms: Record<2 | 3, Float32Array>;

  /** `vectors` in item order, `counts[i]` of them belonging to item i (at least one each). */
  constructor(
    vectors: ArrayLike<number>[],
    counts: number[],
    private readonly dimensions: number,
  ) {
    this.matrix = new Float32Array(vectors.length * dimensions);
    vectors.forEach((vector, i) => this.matrix.set(normalised(vector), i * dimensions));
    this.offsets = new Int32Array(counts.length + 1);
    counts.forEach((count, i) => (this.offsets[i + 1] = this.offsets[i]! + count));
    if (this.offsets[counts.length] !== vectors.length) throw new Error('sentence counts do not add up to vectors');
    this.windowNorms = { 2: this.windowNorm(2), 3: this.windowNorm(3) };
  }

  /** |v_i + … + v_{i+size-1}| for each window starting at i (clipped to its item), so its cosine is Σ q·v / it. */
  private windowNorm(size: number): Float32Array {
    const dims = this.dimensions;
    const norms = new Float32Array(this.matrix.length / dims);
    const sum = new Float32Array(dims);
    for (let item = 0; item < this.offsets.length - 1; item++) {
      const end = this.offsets[item + 1]!;
      for (let i = this.offsets[item]!; i < end; i++) {
        sum.fill(0);
        for (let j = i; j < Math.min(i + size, end); j++) {
          for (let k = 0; k < dims; k++) sum[k]! += this.matrix[j * dims + k]!;
        }
        let squares = 0;
        for (let k = 0; k < dims; k++) squares += sum[k]! * sum[k]!;
        norms[i] = Math.sqrt(squares);
      }
    }
    return norms;
  }

  /** Every item's `max`, `top2` and `win2` score for a unit query vector. */
  scores(query: Float32Array): Record<SentenceScoring, Float32Array> {
    const dims = this.dimensions;
    const sentences = this.matrix.length / dims;
    const sims = new Float32Array(sentences);
    for (let i = 0; i < sentences; i++) {
      let dot = 0;
      const base = i * dims;
      for (let k = 0; k < dims; k++) dot += query[k]! * this.matrix[base + k]!;
      sims[i] = dot;
    }
    const items = this.offsets.length - 1;
    const max = new Float32Array(items);
    const top2 = new Float32Array(items);
    const windows = { 2: new Float32Array(items), 3: new Float32Array(items) };
    for (let item = 0; item < items; item++) {
      const start = this.offsets[item]!;
      const end = this.offsets[item + 1]!;
      let first = -Infinity;
      let second = -Infinity;
      for (let i = start; i < end; i++) {
        const sim = sims[i]!;
        if (sim > first) [first, second] = [sim, first];
        else if (sim > second) second = sim;
      }
      max[item] = first;
      top2[item] = second === -Infinity ? first : (first + second) / 2;
      for (const size of [2, 3] as const) {
        let best = -Infinity;
        // Windows start wherever a full one fits; an item shorter than the window is one window.
        for (let i = start; i <= Math.max(start, end - size); i++) {
          let dot = 0;
          for (let j = i; j < Math.min(i + size, end); j++) dot += sims[j]!;
          best = Math.max(best, dot / this.windowNorms[size][i]!);
        }
        windows[size][item] = best;
      }
    }
    return { max, top2, win2: windows[2], win3: windows[3] };
  }
}

const MIN_WORDS = 4;

const ABBREVIATIONS = new Set([
  'al',
  'e.g',
  'i.e',
  'eg',
  'ie',
  'etc',
  'fig',
  'figs',
  'vs',
  'v',
  'cf',
  'approx',
  'ca',
  'no',
  'nos',
  'dr',
  'mr',
  'mrs',
  'ms',
  'prof',
  'st',
  'sp',
  'spp',
  'resp',
  'ref',
  'refs',
  'eq',
  'vol',
  'inc',
  'ltd',
  'co',
]);

const BOUNDARY = /[.!?]["'”’)\]]*\s+(?=["'“‘([]?[\p{Lu}\d])/gu;

/**
 * `text` cut into sentences, in order, trimmed; a text without a boundary is one sentence. Deliberately simple: a
 * line break ends a sentence (Markdown headings and list items), and so does `.`, `!` or `?` followed by white space
 * and a capital letter, digit or opening bracket, unless the word before the stop is a common abbreviation ("et al.",
 * "e.g.", "Fig.", "vs."). A piece shorter than `MIN_WORDS` words joins the next one (section labels, "n = 17)."
 * fragments), so no vector is spent on a text that means nothing alone. SciFact's 5,183 abstracts give 44,618
 * sentences of 23 words on average.
 */
export function splitSentences(text: string): string[] {
  const pieces = text.split(/\n+/).flatMap(splitLine);
  const sentences: string[] = [];
  let pending = '';
  for (const piece of pieces) {
    if (piece === '') continue;
    const joined = pending === '' ? piece : `${pending} ${piece}`;
    if (words(joined) < MIN_WORDS) pending = joined;
    else {
      sentences.push(joined);
      pending = '';
    }
  }
  if (pending !== '') {
    if (sentences.length === 0) sentences.push(pending);
    else sentences[sentences.length - 1] = `${sentences[sentences.length - 1]} ${pending}`;
  }
  return sentences;
}

function splitLine(line: string): string[] {
  const pieces: string[] = [];
  let start = 0;
  for (const match of line.matchAll(BOUNDARY)) {
    const end = match.index + match[0].length;
    const lastWord = /(\S+)\.$/
      .exec(line.slice(start, match.index + 1))?.[1]
      ?.toLowerCase()
      .replace(/^[("'“‘[]+/, '');
    if (lastWord !== undefined && ABBREVIATIONS.has(lastWord)) continue;
    pieces.push(line.slice(start, end).trim());
    start = end;
  }
  pieces.push(line.slice(start).trim());
  return pieces;
}

function words(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}
