import type { Analyzer } from '../retrieval/analyzer.js';

/** A sentence ends at . ! or ? and any citation markers after it, before the next capitalised word. */
const ANSWER_SENTENCE_END = /(?<=[.!?](?:\s*\[\d+\])*)\s+(?=[A-Z0-9"“(])/;

/** Share of a sentence's terms its cited chunks must hold for the sentence to count as supported. */
const SUPPORT_SHARE = 0.6;
/** Below this share of supported sentences an answer is flagged as mostly unsupported. */
const MOSTLY_UNSUPPORTED_BELOW = 0.5;

export interface Groundedness {
  /** 0..1: share of the answer's sentences supported by the chunks they cite; 1 for an empty answer. */
  score: number;
  /** The sentences not supported: uncited, citing a chunk that was not retrieved, or not holding its terms. */
  unsupported: string[];
  /** True when fewer than half the sentences are supported (a degraded-style flag). */
  mostlyUnsupported: boolean;
}

/**
 * Lexical groundedness of an answer (no judge model): a sentence is supported when the chunks its own `[n]` markers
 * cite hold at least 60% of its analysed terms. A sentence with no marker, or citing only unknown numbers, is
 * unsupported, so wrong citations are caught as well as invented text.
 */
export function groundedness(
  analyzer: Analyzer,
  input: { answer: string; sources: Array<{ n: number; text: string }> },
): Groundedness {
  const termsByNumber = new Map(input.sources.map((s) => [s.n, new Set(analyzer.analyze(s.text))]));
  const sentences = input.answer
    .split(ANSWER_SENTENCE_END)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const unsupported: string[] = [];
  for (const sentence of sentences) {
    const cited = [...sentence.matchAll(/\[(\d+)\]/g)]
      .map((m) => termsByNumber.get(Number(m[1])))
      .filter((s): s is Set<string> => s !== undefined);
    const terms = new Set(analyzer.analyze(sentence.replace(/\[\d+\]/g, ' ')));
    let found = 0;
    for (const term of terms) if (cited.some((s) => s.has(term))) found += 1;
    const supported = cited.length > 0 && (terms.size === 0 || found / terms.size >= SUPPORT_SHARE);
    if (!supported) unsupported.push(sentence);
  }
  const score = sentences.length === 0 ? 1 : (sentences.length - unsupported.length) / sentences.length;
  return {
    score: Math.round(score * 1000) / 1000,
    unsupported,
    mostlyUnsupported: score < MOSTLY_UNSUPPORTED_BELOW,
  };
}
