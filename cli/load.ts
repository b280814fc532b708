import fs from 'node:fs';
import { InvalidInputError } from '../lib/errors.js';
import { seededRandom } from '../lib/random.js';
import type { AnswerQueryInput, AnswerQueryResult } from '../contracts/query.js';

/** How `ragline load` drives the service: N users each asking M questions, at most `concurrency` at once. */
export interface LoadOptions {
  users: number;
  queriesPerUser: number;
  concurrency: number;
  /** Mean think time between one user's questions, in ms (uniform on [0, 2 × mean]). */
  thinkMs: number;
  /** Cap on queries started per second over all users; 0 means no cap. */
  rate: number;
  /** Zipf exponent of the question mix: higher means a few questions dominate. */
  zipf: number;
  /** Share of questions that are new (never asked before), the rest split between sample questions and paraphrases. */
  newShare: number;
  /** Share of sample-question picks rewritten as paraphrases. */
  paraphraseShare: number;
  tenant?: string;
  seed: number;
}

export const DEFAULT_LOAD: Omit<LoadOptions, 'users' | 'queriesPerUser'> = {
  concurrency: 16,
  thinkMs: 0,
  rate: 0,
  zipf: 1.1,
  newShare: 0.1,
  paraphraseShare: 0.3,
  seed: 1,
};

/** Impossible arguments are refused before anything starts, in one line naming the option. */
export function validateLoadOptions(options: LoadOptions): LoadOptions {
  const positive = (name: string, value: number) => {
    if (!Number.isInteger(value) || value < 1)
      throw new InvalidInputError(`${name} must be a positive integer, got ${value}`);
  };
  const atLeastZero = (name: string, value: number) => {
    if (!Number.isFinite(value) || value < 0) throw new InvalidInputError(`${name} must be zero or more, got ${value}`);
  };
  const share = (name: string, value: number) => {
    if (!Number.isFinite(value) || value < 0 || value > 1)
      throw new InvalidInputError(`${name} must be between 0 and 1, got ${value}`);
  };
  positive('--users', options.users);
  positive('--queries', options.queriesPerUser);
  positive('--concurrency', options.concurrency);
  atLeastZero('--think-ms', options.thinkMs);
  atLeastZero('--rate', options.rate);
  atLeastZero('--zipf', options.zipf);
  share('--new-share', options.newShare);
  share('--paraphrase-share', options.paraphraseShare);
  return options;
}

const PARAPHRASES: Array<(q: string) => string> = [
  (q) => q.toLowerCase().replace(/[?.!]+$/, ''),
  (q) => `Can you tell me: ${q.charAt(0).toLowerCase()}${q.slice(1)}`,
  (q) => `${q.replace(/[?.!]+$/, '')}, please?`,
  (q) => q.replace(/^How do I /i, 'What is the way to ').replace(/^What are /i, 'Which are '),
];

export type QuestionKind = 'sample' | 'paraphrase' | 'new';

/** The question mix: Zipf-ranked sample questions, some paraphrased, and some never seen before. */
export function questionMix(questions: string[], options: LoadOptions): () => { query: string; kind: QuestionKind } {
  if (questions.length === 0) throw new InvalidInputError('no sample questions to draw from');
  const random = seededRandom(options.seed);
  const weights = questions.map((_, rank) => 1 / (rank + 1) ** options.zipf);
  const total = weights.reduce((a, b) => a + b, 0);
  const cumulative: number[] = [];
  weights.reduce((sum, w) => {
    cumulative.push((sum + w) / total);
    return sum + w;
  }, 0);
  let fresh = 0;
  return () => {
    if (random() < options.newShare) {
      fresh += 1;
      return { query: `What does the documentation say about topic number ${options.seed}-${fresh}?`, kind: 'new' };
    }
    const u = random();
    const index = cumulative.findIndex((c) => u <= c);
    const question = questions[index === -1 ? questions.length - 1 : index] ?? questions[0]!;
    if (random() < options.paraphraseShare) {
      const rewrite = PARAPHRASES[Math.floor(random() * PARAPHRASES.length)] ?? PARAPHRASES[0]!;
      return { query: rewrite(question), kind: 'paraphrase' };
    }
    return { query: question, kind: 'sample' };
  };
}

export function readSampleQuestions(file: string): string[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => (JSON.parse(line) as { query: string }).query);
}

export type QueryPath = 'hit' | 'miss' | 'degraded';

export interface LoadSample {
  kind: QuestionKind;
  path?: QueryPath;
  latencyMs: number;
  result?: AnswerQueryResult;
  error?: string;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface LoadReport {
  options: LoadOptions;
  sent: number;
  answered: number;
  errors: number;
  /** Sent but neither answered nor failed: must be 0. */
  lost: number;
  durationMs: number;
  throughputQps: number;
  latencyMs: Record<'all' | QueryPath, LatencySummary>;
  /** Hits over lookups per cache level, as the results report them. */
  hitRatio: { result: number; semantic: number; llm: number };
  degradedByReason: Record<string, number>;
  errorsByMessage: Record<string, number>;
  byKind: Record<QuestionKind, number>;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? 0;
}

function summarise(latencies: number[]): LatencySummary {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? 0,
  };
}

export function pathOf(result: AnswerQueryResult): QueryPath {
  if (result.degraded) return 'degraded';
  return result.cache.result === 'hit' || result.cache.semantic === 'hit' ? 'hit' : 'miss';
}

export function buildReport(options: LoadOptions, sent: number, samples: LoadSample[], durationMs: number): LoadReport {
  const answered = samples.filter((s) => s.result);
  const failed = samples.filter((s) => s.error !== undefined);
  const byPath = (path: QueryPath) => answered.filter((s) => s.path === path).map((s) => s.latencyMs);
  const ratio = (hits: number, all: number) => (all === 0 ? 0 : Math.round((hits / all) * 10_000) / 10_000);
  const results = answered.map((s) => s.result!);
  const semanticLookups = results.filter((r) => r.cache.semantic !== undefined || r.cache.result === 'hit');
  const llmLookups = results.filter((r) => r.cache.llm !== undefined);
  const count = <T extends string>(items: T[]) =>
    items.reduce<Record<string, number>>((acc, item) => ({ ...acc, [item]: (acc[item] ?? 0) + 1 }), {});
  return {
    options,
    sent,
    answered: answered.length,
    errors: failed.length,
    lost: sent - answered.length - failed.length,
    durationMs: Math.round(durationMs),
    throughputQps: Math.round((answered.length / (durationMs / 1000)) * 10) / 10,
    latencyMs: {
      all: summarise(answered.map((s) => s.latencyMs)),
      hit: summarise(byPath('hit')),
      miss: summarise(byPath('miss')),
      degraded: summarise(byPath('degraded')),
    },
    hitRatio: {
      result: ratio(results.filter((r) => r.cache.result === 'hit').length, results.length),
      semantic: ratio(results.filter((r) => r.cache.semantic === 'hit').length, semanticLookups.length),
      llm: ratio(results.filter((r) => r.cache.llm === 'hit').length, llmLookups.length),
    },
    degradedByReason: count(
      results.flatMap((r) => (r.degraded ? (r.degradedReasons ?? [r.fallbackReason ?? 'unknown']) : [])),
    ),
    errorsByMessage: count(failed.map((s) => (s.error ?? '').slice(0, 120))),
    byKind: { sample: 0, paraphrase: 0, new: 0, ...count(samples.map((s) => s.kind)) },
  };
}

export interface LoadDriver {
  ask(input: AnswerQueryInput): Promise<AnswerQueryResult>;
}

/**
 * Runs the simulation: every user asks its questions in turn with think time between them; a shared semaphore caps
 * how many are in flight. Each query really runs through the service.
 */
export async function runLoad(
  driver: LoadDriver,
  questions: string[],
  options: LoadOptions,
  hooks: { onDone?: (sample: LoadSample, done: number, total: number) => void; signal?: AbortSignal } = {},
): Promise<LoadReport> {
  validateLoadOptions(options);
  const next = questionMix(questions, options);
  const random = seededRandom(options.seed + 1);
  const total = options.users * options.queriesPerUser;
  const samples: LoadSample[] = [];
  let inFlight = 0;
  const waiting: Array<() => void> = [];
  const acquire = async () => {
    if (inFlight < options.concurrency) {
      inFlight += 1;
      return;
    }
    await new Promise<void>((resolve) => waiting.push(resolve));
  };
  const release = () => {
    const wake = waiting.shift();
    if (wake) wake();
    else inFlight -= 1;
  };
  const interval = options.rate > 0 ? 1000 / options.rate : 0;
  let nextSlot = performance.now();
  const pace = async () => {
    if (interval === 0) return;
    const slot = nextSlot;
    nextSlot = Math.max(nextSlot, performance.now()) + interval;
    const wait = slot - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  };
  let sent = 0;
  const started = performance.now();
  const user = async () => {
    for (let i = 0; i < options.queriesPerUser; i += 1) {
      if (hooks.signal?.aborted) return;
      if (i > 0 && options.thinkMs > 0) {
        await new Promise((resolve) => setTimeout(resolve, random() * 2 * options.thinkMs));
      }
      const { query, kind } = next();
      await acquire();
      await pace();
      const t0 = performance.now();
      sent += 1;
      let sample: LoadSample;
      try {
        const result = await driver.ask({ query, tenant: options.tenant });
        sample = { kind, result, path: pathOf(result), latencyMs: Math.round(performance.now() - t0) };
      } catch (error) {
        sample = {
          kind,
          error: error instanceof Error ? error.message : String(error),
          latencyMs: Math.round(performance.now() - t0),
        };
      } finally {
        release();
      }
      samples.push(sample);
      hooks.onDone?.(sample, samples.length, total);
    }
  };
  await Promise.all(Array.from({ length: options.users }, user));
  return buildReport(options, sent, samples, performance.now() - started);
}

export function formatReport(report: LoadReport): string {
  const l = report.latencyMs;
  const row = (name: string, s: LatencySummary) =>
    `  ${name.padEnd(9)} ${String(s.count).padStart(6)}  p50 ${s.p50} ms  p95 ${s.p95} ms  p99 ${s.p99} ms  max ${s.max} ms`;
  const reasons = Object.entries(report.degradedByReason).map(([r, n]) => `${r} ${n}`);
  const errors = Object.entries(report.errorsByMessage).map(([m, n]) => `  ${n} × ${m}`);
  return [
    `${report.sent} queries sent by ${report.options.users} users (concurrency ${report.options.concurrency}) in ${(report.durationMs / 1000).toFixed(1)} s`,
    `answered ${report.answered}, errors ${report.errors}, lost ${report.lost}; ${report.throughputQps} answers/s`,
    'latency by path:',
    row('all', l.all),
    row('hit', l.hit),
    row('miss', l.miss),
    row('degraded', l.degraded),
    `cache hit ratio: result ${(report.hitRatio.result * 100).toFixed(1)} %, semantic ${(report.hitRatio.semantic * 100).toFixed(1)} %, llm ${(report.hitRatio.llm * 100).toFixed(1)} %`,
    `degraded by reason: ${reasons.length > 0 ? reasons.join(', ') : 'none'}`,
    `questions: ${report.byKind.sample} sample, ${report.byKind.paraphrase} paraphrased, ${report.byKind.new} new`,
    ...(errors.length > 0 ? ['errors:', ...errors] : []),
  ].join('\n');
}
