import {
  ActivityFailure,
  ApplicationFailure,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities/index.js';
import type { GenerateResult, RetrievedHit } from '../activities/query-types.js';
import { ErrorType, NON_RETRYABLE_ERROR_TYPES } from '../lib/errors.js';
import {
  DEFAULT_DEADLINE_MS,
  DEFAULT_TENANT,
  FALLBACK_BUDGET_MS,
  FALLBACK_MESSAGES,
  LOCAL_STEP_TIMEOUT_MS,
  qualityTierOf,
  type AnswerQueryInput,
  type AnswerQueryResult,
  type CacheReport,
  type DegradationRung,
  type FallbackReason,
  type Source,
} from '../contracts/query.js';
import { queryInputProblem } from '../contracts/query.js';
import { cacheHitSearchAttribute, qualityTierSearchAttribute } from '../contracts/search-attributes.js';
import { queryMetrics } from '../contracts/sinks.js';

type Activities = ReturnType<typeof createActivities>;

/** Bounds what a workflow accepts whatever the configuration; the configured limit (default 4,000) is lower. */
const HARD_MAX_QUERY_CHARS = 100_000;

// The cache sits in front of everything, so it runs as a local activity: no task-queue round trip on the hit
// path, which is then as cheap as the one-local-activity floor workflow. A broken cache must not hold a query up.
// The extractive fallback runs the same way: it needs no network, and must not wait behind a busy task queue.
const local = proxyLocalActivities<Activities>({
  startToCloseTimeout: LOCAL_STEP_TIMEOUT_MS,
  retry: { maximumAttempts: 2, initialInterval: '50ms', nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
});

/**
 * The deadline ladder (stale cached answer when the store is down, deadline-bounded steps) adds commands that
 * histories from before it do not have.
 */
const DEADLINE_LADDER_PATCH = 'deadline-ladder-v1';
/**
 * A dependency whose breaker the cache lookup reported as refusing gets no activity: the workflow takes its fallback
 * at once instead of scheduling a task (a server round trip) only to have it refused. Marked only on queries that
 * take that shortcut, so every other query issues the same commands as before.
 */
const BREAKER_SHORTCUT_PATCH = 'breaker-shortcut-v1';
/**
 * Retrieval and generation are scheduled with a heartbeat timeout (the activities heartbeat once they run longer
 * than a third of it): an attempt on a worker that died is retried elsewhere after this long, not after its whole
 * start-to-close timeout — which with a SIGKILLed worker used to cost a query most of its deadline.
 */
const HEARTBEAT_PATCH = 'activity-heartbeat-v1';
const HEARTBEAT_TIMEOUT_MS = 2000;
/** Below this much budget a remote step is not worth starting: the fallback answers instead. */
const MIN_STEP_MS = 500;
/**
 * Below this much budget a remote generation is not started either: a task dispatch and a server timer on a loaded
 * machine can take seconds, and `npm run chaos` showed a generation scheduled with 0.6 s left time out 4 s later,
 * past the deadline, when the local extractive answer was there at once.
 */
const MIN_REMOTE_GENERATION_MS = 1500;
const MIN_REMOTE_GENERATION_PATCH = 'min-remote-generation-v1';
const RETRIEVAL_ATTEMPT_MS = 10_000;

// Retrieval is a lookup in an index or in Qdrant: quick to fail, quick to retry; after that the query answers
// with a clear fallback. Every attempt together must end before the deadline, less the fallback's budget.
const retrievalWithin = (budgetMs: number, heartbeat: boolean) =>
  proxyActivities<Activities>({
    startToCloseTimeout: Math.min(RETRIEVAL_ATTEMPT_MS, budgetMs),
    scheduleToCloseTimeout: budgetMs,
    ...(heartbeat ? { heartbeatTimeout: Math.min(HEARTBEAT_TIMEOUT_MS, budgetMs) } : {}),
    retry: {
      maximumAttempts: 3,
      initialInterval: '200ms',
      backoffCoefficient: 2,
      maximumInterval: '2s',
      nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
    },
  });

/**
 * Answers one question: cache → retrieval → generation → cache write. Never fails silently: a bad question is a
 * non-retryable `InvalidInput` failure; a failing dependency gives a degraded answer that says why.
 */
export async function answerQueryWorkflow(input: AnswerQueryInput): Promise<AnswerQueryResult> {
  // The configured length limit is checked again by the activities, which know the configuration.
  const problem = queryInputProblem(input, { maxQueryChars: HARD_MAX_QUERY_CHARS });
  if (problem) throw ApplicationFailure.create({ type: ErrorType.InvalidInput, message: problem, nonRetryable: true });

  const startedAt = Date.now();
  const tenant = input.tenant ?? DEFAULT_TENANT;
  const queryId = workflowInfo().workflowId;
  const deadlineMs = input.options?.deadlineMs ?? DEFAULT_DEADLINE_MS;
  const elapsed = () => Date.now() - startedAt;
  // What a remote step may use: the rest of the deadline, less what its fallback needs.
  const stepBudget = () => deadlineMs - elapsed() - FALLBACK_BUDGET_MS;
  const ladder = (reasons: FallbackReason[], detail?: string) => {
    const reason = reasons[reasons.length - 1];
    if (reason === undefined) return { degraded: false, rung: 'full' as const };
    // What failed, with addresses and upstream messages, is for operators: the log and the activity's span.
    log.warn('query degraded', { reasons, detail });
    return {
      degraded: true,
      fallbackReason: reason,
      fallbackDetail: FALLBACK_MESSAGES[reason],
      degradedReasons: reasons,
      rung: rungOf(reason),
    };
  };
  const finish = (
    result: Omit<AnswerQueryResult, 'queryId' | 'tenant' | 'qualityTier' | 'timingsMs'>,
    timings: Partial<AnswerQueryResult['timingsMs']>,
  ): AnswerQueryResult => {
    const qualityTier = qualityTierOf(result.qualityScore);
    const cacheHit = result.cache.result === 'hit' || result.cache.semantic === 'hit';
    const total = elapsed();
    upsertSearchAttributes([
      { key: cacheHitSearchAttribute, value: cacheHit },
      { key: qualityTierSearchAttribute, value: qualityTier },
    ]);
    queryMetrics.answered({
      queryId,
      query: input.query,
      cache: result.cache,
      sourceDocIds: result.sources.map((source) => source.docId),
      degraded: result.degraded,
      tenant,
      cacheHit,
      qualityTier,
      qualityScore: result.qualityScore,
      path: result.degraded ? 'degraded' : cacheHit ? 'hit' : 'miss',
      fallbackReason: result.fallbackReason,
      degradedReasons: result.degradedReasons,
      rung: result.rung,
    });
    return { queryId, tenant, ...result, qualityTier, timingsMs: { ...timings, total } };
  };

  const lookup = await local
    .lookupCachedAnswer({ query: input.query, tenant, options: input.options })
    .catch((failure: unknown) => {
      rethrowInvalidInput(failure);
      return { status: 'error' as const, detail: failureMessage(failure) };
    });
  if (lookup.status === 'hit') {
    return finish({ ...lookup.answer, cache: lookup.cache, degraded: false, rung: 'full' }, { cache: lookup.tookMs });
  }
  const cacheReport: CacheReport = lookup.status === 'error' ? { result: 'error' } : lookup.cache;
  // Identical misses in flight at once share one retrieval and one generation, keyed by the result key.
  const flightKey = lookup.status === 'miss' && !input.options?.bypassCache ? lookup.key : undefined;
  const refused = lookup.status === 'error' ? [] : (lookup.refused ?? []);
  // Whether to skip a refused dependency's activity; patched() is called only then, so only such queries carry it.
  const shortcut = (dependency: 'store' | 'llm') => refused.includes(dependency) && patched(BREAKER_SHORTCUT_PATCH);

  const ladderOn = patched(DEADLINE_LADDER_PATCH);
  const heartbeat = ladderOn && patched(HEARTBEAT_PATCH);
  const retrieval = retrievalWithin(
    ladderOn ? Math.max(stepBudget(), MIN_STEP_MS) : RETRIEVAL_ATTEMPT_MS * 3,
    heartbeat,
  );
  const lookupMs = lookup.status === 'error' || lookup.status === 'unavailable' ? undefined : lookup.tookMs;
  let retrieved;
  try {
    if (ladderOn && shortcut('store')) throw circuitOpen('store');
    retrieved = await retrieval.retrieveChunks({ query: input.query, tenant, topK: input.options?.topK, flightKey });
  } catch (failure) {
    rethrowInvalidInput(failure);
    const detail = failureMessage(failure);
    if (ladderOn) {
      // The store is down: the last good answer to the same question beats no answer, flagged as such.
      // The lookup that found the store breaker refusing has read the last good answer already.
      const stale =
        (lookup.status === 'unavailable' ? lookup.stale : undefined) ??
        (await local.lookupStaleAnswer({ query: input.query, tenant, options: input.options }).catch(() => undefined));
      if (stale?.status === 'hit') {
        return finish(
          {
            ...stale.answer,
            qualityScore: Math.min(stale.answer.qualityScore, 0.5),
            cache: { ...cacheReport, stale: 'hit' },
            staleSince: stale.cachedAt,
            ...ladder(['stale-cache'], detail),
          },
          { cache: lookupMs },
        );
      }
      return finish(
        {
          answer: RETRIEVAL_UNAVAILABLE_ANSWER,
          sources: [],
          qualityScore: 0,
          cache: { ...cacheReport, stale: stale ? 'miss' : 'error' },
          model: 'none',
          ...ladder(['retrieval-unavailable'], detail),
        },
        { cache: lookupMs },
      );
    }
    return finish(
      {
        answer: RETRIEVAL_UNAVAILABLE_ANSWER,
        sources: [],
        qualityScore: 0,
        cache: cacheReport,
        model: 'none',
        ...ladder(['retrieval-unavailable'], detail),
      },
      { cache: lookupMs },
    );
  }
  const reasons: FallbackReason[] = [...(retrieved.degradedReasons ?? [])];

  // Old histories used the whole remaining deadline (at least a second) for generation.
  const remainingMs = ladderOn ? stepBudget() : Math.max(deadlineMs - elapsed(), 1000);
  const generateInput = {
    query: input.query,
    tenant,
    flightKey,
    hits: retrieved.hits.map(({ chunkId, score }) => ({ chunkId, score })),
    reason: retrieved.reason,
    // An activity argument, not a command: histories of either kind replay unchanged.
    ...(input.options?.stream ? { stream: true } : {}),
  };

  let generated;
  let failureDetail: string | undefined;
  // patched() only where the rule changed anything, so other queries carry no marker.
  const tooLate =
    ladderOn &&
    (remainingMs < MIN_STEP_MS || (remainingMs < MIN_REMOTE_GENERATION_MS && patched(MIN_REMOTE_GENERATION_PATCH)));
  if (tooLate) {
    reasons.push('deadline');
    generated = await local.composeExtractiveAnswer(generateInput).catch(() => snippetAnswer(retrieved.hits));
  } else if (ladderOn && shortcut('llm')) {
    // The same flags as a generation attempt refused with CircuitOpen, without the attempt.
    reasons.push('generation-failed');
    failureDetail = failureMessage(circuitOpen('llm'));
    generated = await local
      .composeExtractiveAnswer({ ...generateInput, circuitOpen: true })
      .catch(() => snippetAnswer(retrieved.hits));
  } else {
    const generation = proxyActivities<Activities>({
      // Two attempts' worth of the remaining deadline at most, so the extractive fallback still fits in it.
      startToCloseTimeout: Math.max(Math.floor(remainingMs / 2), ladderOn ? MIN_STEP_MS / 2 : 1000),
      scheduleToCloseTimeout: ladderOn ? remainingMs : Math.max(remainingMs - 500, 1000),
      ...(heartbeat ? { heartbeatTimeout: Math.min(HEARTBEAT_TIMEOUT_MS, remainingMs) } : {}),
      retry: {
        maximumAttempts: 3,
        initialInterval: '500ms',
        backoffCoefficient: 2,
        maximumInterval: '10s',
        nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
      },
    });
    try {
      generated = await generation.generateAnswer(generateInput);
    } catch (failure) {
      reasons.push(generationFallbackReason(failure));
      failureDetail = failureMessage(failure);
      // Last resort, when even the chunks cannot be read: the retrieved snippets themselves, cited.
      generated = await local.composeExtractiveAnswer(generateInput).catch(() => snippetAnswer(retrieved.hits));
    }
  }

  const flags = ladder(reasons, failureDetail);
  const { degraded } = flags;
  const sources: Source[] = retrieved.hits.map(({ chunkId, docId, title, snippet, score }, i) => ({
    docId,
    chunkId,
    title,
    snippet,
    score,
    n: i + 1,
  }));
  const result = finish(
    {
      answer: generated.answer,
      sources,
      qualityScore: degraded ? Math.min(generated.qualityScore, 0.5) : generated.qualityScore,
      cache: { ...cacheReport, llm: generated.cached === undefined ? undefined : generated.cached ? 'hit' : 'miss' },
      ...flags,
      model: generated.model,
      usage: generated.usage,
      citations: generated.citations,
      uncited: generated.uncited,
      corpusVersion: retrieved.corpusVersion,
      retrievalDegraded: retrieved.retrievalDegraded,
    },
    {
      cache: lookupMs,
      retrieval: retrieved.tookMs,
      generation: generated.tookMs,
    },
  );

  // Degraded answers are not cached: the next asker should get the real one once the dependency is back.
  if (!degraded && lookup.status === 'miss') {
    await local.storeCachedAnswer({ scope: lookup.scope, query: input.query, answer: result }).catch(() => undefined);
  }
  return result;
}

const RETRIEVAL_UNAVAILABLE_ANSWER =
  'Sorry, the document search is unavailable right now, so this question cannot be answered. Please try again shortly.';

function rungOf(reason: FallbackReason): DegradationRung {
  switch (reason) {
    case 'lexical-only':
    case 'stale-cache':
      return reason;
    case 'retrieval-unavailable':
      return 'message';
    default:
      return 'extractive';
  }
}

/** An open breaker is the LLM being down, not the LLM refusing the request, though both are non-retryable. */
function generationFallbackReason(failure: unknown): FallbackReason {
  const cause = failure instanceof ActivityFailure ? failure.cause : failure;
  if (cause instanceof ApplicationFailure && cause.type === ErrorType.CircuitOpen) return 'generation-failed';
  return isNonRetryable(failure) ? 'generation-rejected' : 'generation-failed';
}

function snippetAnswer(hits: RetrievedHit[]): GenerateResult {
  const quoted = hits.slice(0, 2).map((hit, i) => `${hit.snippet} [${i + 1}]`);
  return {
    answer: quoted.length > 0 ? quoted.join(' ') : "I couldn't find any document about that.",
    citations: quoted.map((_, i) => i + 1),
    model: 'snippets',
    qualityScore: quoted.length > 0 ? 0.2 : 0,
    uncited: quoted.length === 0 ? true : undefined,
    tookMs: 0,
  };
}

/** What the refused activity would have failed with (the message of lib/resilience's CircuitOpenError). */
function circuitOpen(dependency: 'store' | 'llm'): ApplicationFailure {
  return ApplicationFailure.create({
    type: ErrorType.CircuitOpen,
    message: `circuit breaker for ${dependency} is open`,
    nonRetryable: true,
  });
}

function failureMessage(failure: unknown): string {
  const cause = failure instanceof ActivityFailure ? failure.cause : failure;
  if (cause instanceof ApplicationFailure) return `${cause.type ?? 'Error'}: ${cause.message}`;
  return cause instanceof Error ? cause.message : String(cause);
}

/** A question the activities found invalid fails the workflow with the activity's typed failure. */
function rethrowInvalidInput(failure: unknown): void {
  const cause = failure instanceof ActivityFailure ? failure.cause : failure;
  if (cause instanceof ApplicationFailure && cause.type === ErrorType.InvalidInput) {
    throw ApplicationFailure.create({ type: ErrorType.InvalidInput, message: cause.message, nonRetryable: true });
  }
}

function isNonRetryable(failure: unknown): boolean {
  const cause = failure instanceof ActivityFailure ? failure.cause : failure;
  return cause instanceof ApplicationFailure && NON_RETRYABLE_ERROR_TYPES.includes(cause.type ?? '');
}
