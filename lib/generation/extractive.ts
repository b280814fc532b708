import { Analyzer } from '../retrieval/analyzer.js';
import type { AnswerGenerator, ContextChunk, GenerateRequest, GeneratedAnswer, HealthStatus } from '../domain.js';

const MAX_SENTENCES = 3;
const MAX_SENTENCE_CHARS = 400;
const SENTENCE_BOUNDARY = /(?<=[.!?])\s+(?=[A-Z0-9"“(])|\n{2,}|\n(?=[-*#]|\d+\.)/;

export const NO_ANSWER = "I couldn't find an answer to that in the documents.";

// Words that make a question a question but say nothing about its topic; the index keeps them (they help ranking
// phrases), but a sentence that shares only these with the question does not answer it.
const QUESTION_WORDS = new Set(
  'how what when where which who whom whose why can could do does did i me my we our you your should would is are am was were have has had get'.split(
    ' ',
  ),
);

interface Candidate {
  text: string;
  n: number;
  rank: number;
  position: number;
  score: number;
}

/**
 * Answers from the best sentences of the top chunks, each cited with its chunk's `[n]`: no model, no network,
 * always available — the embedded default and the fallback when an LLM fails.
 */
export class ExtractiveGenerator implements AnswerGenerator {
  readonly model = 'extractive';

  constructor(private readonly analyzer = new Analyzer()) {}

  async generate({ query, chunks }: GenerateRequest): Promise<GeneratedAnswer> {
    const queryTerms = new Set(
      this.analyzer.analyze(
        query
          .split(/\s+/)
          .filter((w) => !QUESTION_WORDS.has(w.toLowerCase()))
          .join(' '),
      ),
    );
    const candidates = chunks.slice(0, 3).flatMap((chunk, rank) => this.sentences(chunk, rank, queryTerms));
    const chosen = candidates
      .filter((c) => c.score > 0)
      .sort((a, b) => b.score - a.score || a.rank - b.rank || a.position - b.position)
      .slice(0, MAX_SENTENCES)
      .sort((a, b) => a.rank - b.rank || a.position - b.position);
    if (chosen.length === 0) return { answer: NO_ANSWER, citations: [], model: this.model, uncited: true };
    const answer = chosen.map((c) => `${c.text} [${c.n}]`).join(' ');
    const citations = [...new Set(chosen.map((c) => c.n))].sort((a, b) => a - b);
    return { answer, citations, model: this.model };
  }

  async health(): Promise<HealthStatus> {
    return { ok: true, latencyMs: 0, detail: 'extractive answers need no model' };
  }

  private sentences(chunk: ContextChunk, rank: number, queryTerms: Set<string>): Candidate[] {
    return splitSentences(chunk.text).map((text, position) => {
      const terms = new Set(this.analyzer.analyze(text));
      let overlap = 0;
      for (const term of queryTerms) if (terms.has(term)) overlap += 1;
      // Overlap normalised by the square root of length favours short, on-topic sentences over long lists;
      // the rank prior keeps the best chunk's sentences first when scores tie.
      const score = overlap === 0 ? 0 : overlap / Math.sqrt(Math.max(terms.size, 1)) + (3 - rank) * 0.05;
      return { text, n: chunk.n, rank, position, score };
    });
  }
}

/** Splits prose into sentences, dropping Markdown headings and list markers. */
export function splitSentences(text: string): string[] {
  return text
    .split(SENTENCE_BOUNDARY)
    .map((s) =>
      s
        .replace(/^#+\s.*$/gm, '')
        .replace(/^\s*(?:[-*]|\d+\.)\s+/gm, '')
        .replace(/\*\*|__|`/g, '')
        .replace(/\s+/g, ' ')
        .trim(),
    )
    .filter((s) => s.length >= 12)
    .map((s) => (s.length > MAX_SENTENCE_CHARS ? `${s.slice(0, MAX_SENTENCE_CHARS - 1)}…` : s));
}
