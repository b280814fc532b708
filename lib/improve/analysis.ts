import type { Analyzer } from '../retrieval/analyzer.js';
import type { FeedbackRecord, QueryLogWindow, QueryRecord } from './query-log.js';

/** Below this quality score an answer counts as poorly answered (the seed's `poor` tier). */
export const POOR_QUALITY = 0.4;
/** Feedback at or below this counts as a poor answer whatever its quality score; at or above GOOD_FEEDBACK, well rated. */
export const POOR_FEEDBACK = 2;
export const GOOD_FEEDBACK = 4;

export interface FailurePattern {
  /** Analysed terms the questions share. */
  terms: string[];
  /** The words as people wrote them, for the topic's name. */
  topic: string;
  queries: number;
  meanQuality: number;
  examples: string[];
}

export interface DocumentSuggestion {
  topic: string;
  priority: 'high' | 'medium' | 'low';
  /** Logged queries in the window a document on this topic would have helped, and their share of the volume. */
  estimatedImpact: { queries: number; share: number };
  reason: string;
  examples: string[];
}

/** A well-rated real question and the documents its answer cited: a candidate for the evaluation set. */
export interface EvalSetProposal {
  queryId: string;
  question: string;
  relevant: Record<string, number>;
  feedbackScore: number;
}

export interface LogAnalysis {
  tenant: string;
  from: string;
  to: string;
  volume: number;
  /** Share of queries served by each cache level (llm among the queries that reached generation). */
  hitRatio: { result: number; semantic: number; llm: number; any: number };
  meanQuality: number;
  feedback: { count: number; meanScore: number };
  /**
   * Answers the semantic cache served for a near-duplicate question, and how users rated them. A retrieval-level
   * evaluation cannot measure the semantic threshold; paraphrase pairs set it (`npm run bench -- semantic`) and a
   * share of poorly rated semantic hits here says it lets unlike questions through.
   */
  semanticHits: { served: number; rated: number; poorlyRated: number };
  degradedShare: number;
  degradedByReason: Record<string, number>;
  /** Categories (the document most answers came from, or `no-source`) whose mean quality is poor. */
  lowQualityCategories: Array<{ category: string; queries: number; meanQuality: number }>;
  failurePatterns: FailurePattern[];
  documentSuggestions: DocumentSuggestion[];
  evalSetProposals: EvalSetProposal[];
}

export interface AnalysisOptions {
  /** Questions a failure pattern needs before it is reported. @default 2 */
  minSupport?: number;
  /** Patterns and suggestions kept. @default 10 */
  limit?: number;
  /**
   * Analysed terms no document of the tenant contains. A question using one was not answered whatever its quality
   * score says: the score measures how well the answer sticks to its sources, not whether they are on topic.
   */
  unknownTerms?: ReadonlySet<string>;
}

const round = (value: number) => Math.round(value * 1000) / 1000;
const mean = (values: number[]) => (values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length);

/**
 * What the query log says about a window: volume, cache behaviour, quality, degradations, and the questions ragline
 * answers badly grouped by the terms they share, which become document-update suggestions.
 */
export function analyzeQueryLog(
  tenant: string,
  window: QueryLogWindow,
  range: { from: number; to: number },
  analyzer: Analyzer,
  options: AnalysisOptions = {},
): LogAnalysis {
  const { queries } = window;
  const minSupport = options.minSupport ?? 2;
  const limit = options.limit ?? 10;
  const volume = queries.length;
  const share = (n: number) => (volume === 0 ? 0 : round(n / volume));
  const feedbackOf = latestFeedback(window.feedback);

  const reachedGeneration = queries.filter((q) => q.cache.llm !== undefined);
  const hitRatio = {
    result: share(queries.filter((q) => q.cache.result === 'hit').length),
    semantic: share(queries.filter((q) => q.cache.semantic === 'hit').length),
    llm:
      reachedGeneration.length === 0
        ? 0
        : round(reachedGeneration.filter((q) => q.cache.llm === 'hit').length / reachedGeneration.length),
    any: share(queries.filter((q) => q.cacheHit).length),
  };
  const semanticHits = queries.filter((q) => q.cache.semantic === 'hit');
  const semanticRatings = semanticHits.flatMap((q) => {
    const rated = feedbackOf.get(q.queryId);
    return rated ? [rated.score] : [];
  });
  const degraded = queries.filter((q) => q.degraded);
  const degradedByReason: Record<string, number> = {};
  for (const q of degraded) {
    const reason = q.fallbackReason ?? 'unknown';
    degradedByReason[reason] = (degradedByReason[reason] ?? 0) + 1;
  }
  for (const reason of Object.keys(degradedByReason)) degradedByReason[reason] = share(degradedByReason[reason]!);

  const categories = new Map<string, number[]>();
  for (const q of queries) {
    const category = q.sources[0] ?? 'no-source';
    categories.set(category, [...(categories.get(category) ?? []), q.qualityScore]);
  }
  const lowQualityCategories = [...categories.entries()]
    .map(([category, scores]) => ({ category, queries: scores.length, meanQuality: round(mean(scores)) }))
    .filter((c) => c.queries >= minSupport && c.meanQuality < POOR_QUALITY)
    .sort((a, b) => b.queries - a.queries)
    .slice(0, limit);

  // Infrastructure failures are not a gap in the documents: degraded answers stay out of the failure patterns.
  const unknown = options.unknownTerms ?? new Set<string>();
  const isPoor = (q: QueryRecord) => {
    const rated = feedbackOf.get(q.queryId);
    if (rated !== undefined) return rated.score <= POOR_FEEDBACK;
    if (q.degraded) return false;
    return (
      q.qualityScore < POOR_QUALITY ||
      q.sources.length === 0 ||
      (!q.redacted && analyzer.analyze(q.question).some((term) => unknown.has(term)))
    );
  };
  const poor = queries.filter(isPoor);
  const good = queries.filter((q) => !q.degraded && !isPoor(q));
  const failurePatterns = findPatterns(poor, good, analyzer, minSupport).slice(0, limit);
  const documentSuggestions = failurePatterns.map((pattern): DocumentSuggestion => {
    const impact = share(pattern.queries);
    return {
      topic: pattern.topic,
      priority: impact >= 0.1 ? 'high' : impact >= 0.03 ? 'medium' : 'low',
      estimatedImpact: { queries: pattern.queries, share: impact },
      reason: `${pattern.queries} questions about "${pattern.topic}" were answered poorly (mean quality ${pattern.meanQuality})`,
      examples: pattern.examples,
    };
  });

  const proposed = new Set<string>();
  const evalSetProposals: EvalSetProposal[] = [];
  // Newest first: the loop proposes what it has not proposed before, and the list is cut at `limit`.
  for (const q of [...queries].reverse()) {
    const rated = feedbackOf.get(q.queryId);
    // A hashed question cannot be asked again by an evaluation: redaction costs these proposals.
    if (!rated || rated.score < GOOD_FEEDBACK || q.redacted || q.sources.length === 0 || proposed.has(q.question))
      continue;
    proposed.add(q.question);
    evalSetProposals.push({
      queryId: q.queryId,
      question: q.question,
      relevant: Object.fromEntries([...new Set(q.sources.slice(0, 3))].map((docId) => [docId, 1])),
      feedbackScore: rated.score,
    });
  }

  return {
    tenant,
    from: new Date(range.from).toISOString(),
    to: new Date(range.to).toISOString(),
    volume,
    hitRatio,
    meanQuality: round(mean(queries.map((q) => q.qualityScore))),
    feedback: { count: window.feedback.length, meanScore: round(mean(window.feedback.map((f) => f.score))) },
    semanticHits: {
      served: semanticHits.length,
      rated: semanticRatings.length,
      poorlyRated: semanticRatings.filter((score) => score <= POOR_FEEDBACK).length,
    },
    degradedShare: share(degraded.length),
    degradedByReason,
    lowQualityCategories,
    failurePatterns,
    documentSuggestions,
    evalSetProposals: evalSetProposals.slice(0, limit),
  };
}

function latestFeedback(feedback: FeedbackRecord[]): Map<string, FeedbackRecord> {
  const latest = new Map<string, FeedbackRecord>();
  for (const f of feedback) latest.set(f.queryId, f);
  return latest;
}

/**
 * Greedy grouping: the term most poorly answered questions share (and that well-answered ones do not use as much)
 * seeds a group; the terms most of the group also shares name it; its questions leave the pool; repeat.
 */
function findPatterns(
  poor: QueryRecord[],
  good: QueryRecord[],
  analyzer: Analyzer,
  minSupport: number,
): FailurePattern[] {
  // A redacted question's hash is its only term: identical questions still group, ones sharing words no longer do.
  const termsOf = (q: QueryRecord) => new Set(q.redacted ? [q.question] : analyzer.analyze(q.question));
  const poorTerms = poor.map(termsOf);
  const goodCount = new Map<string, number>();
  for (const q of good) for (const term of termsOf(q)) goodCount.set(term, (goodCount.get(term) ?? 0) + 1);
  const remaining = new Set(poor.map((_, i) => i));
  const patterns: FailurePattern[] = [];
  for (;;) {
    const counts = new Map<string, number>();
    for (const i of remaining) for (const term of poorTerms[i]!) counts.set(term, (counts.get(term) ?? 0) + 1);
    const seed = [...counts.entries()]
      .filter(([term, n]) => n >= minSupport && n > (goodCount.get(term) ?? 0))
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0];
    if (!seed) break;
    const members = [...remaining].filter((i) => poorTerms[i]!.has(seed[0]));
    const shared = new Map<string, number>();
    for (const i of members) for (const term of poorTerms[i]!) shared.set(term, (shared.get(term) ?? 0) + 1);
    const terms = [...shared.entries()]
      .filter(([term, n]) => n >= Math.ceil(members.length * 0.8) && n > (goodCount.get(term) ?? 0))
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .map(([term]) => term);
    const examples = [...new Set(members.map((i) => poor[i]!.question))].slice(0, 3);
    const redacted = members.every((i) => poor[i]!.redacted);
    patterns.push({
      terms,
      topic: redacted ? `redacted question ${seed[0]}` : surfaceWords(terms, examples, analyzer),
      queries: members.length,
      meanQuality: round(mean(members.map((i) => poor[i]!.qualityScore))),
      examples,
    });
    for (const i of members) remaining.delete(i);
  }
  return patterns.sort((a, b) => b.queries - a.queries);
}

/** The words people wrote for analysed terms, in the order the first example uses them. */
function surfaceWords(terms: string[], examples: string[], analyzer: Analyzer): string {
  const wanted = new Set(terms);
  const words: string[] = [];
  for (const example of examples) {
    for (const word of example.split(/[^\p{L}\p{N}]+/u)) {
      const [term] = analyzer.analyze(word);
      if (term && wanted.has(term)) {
        words.push(word.toLowerCase());
        wanted.delete(term);
      }
    }
  }
  return [...words, ...wanted].join(' ');
}
