import { normalizeQuery } from '../lib/cache/keys.js';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { resultKey, staleDocTag, staleKey, type ResultScope } from '../lib/cache/keys.js';
import { cachedCompute } from '../lib/cache/single-flight.js';
import type { AnswerGenerator, ContextChunk } from '../lib/domain.js';
import { ErrorType } from '../lib/errors.js';
import { groundedness } from '../lib/generation/groundedness.js';
import { answerQuality } from '../lib/generation/quality.js';
import type { ParamVersion } from '../lib/improve/params.js';
import { searchTuning } from '../lib/improve/shadow.js';
import { CircuitOpenError, refusedDependencies } from '../lib/resilience/breakers.js';
import type { StreamMessage } from '../lib/stream/token-channel.js';
import { redactQuery } from '../lib/redact.js';
import { queryLogger } from '../lib/telemetry/logger.js';
import { withSpan } from '../lib/telemetry/tracing.js';
import type { AnswerQueryResult, CacheReport, QueryOptions } from '../contracts/query.js';
import { queryInputProblem } from '../contracts/query.js';
import type { ActivityDeps } from './deps.js';
import { atBoundary } from './failures.js';
import { keepAlive } from './heartbeat.js';
import type {
  CachedAnswer,
  GenerateInput,
  GenerateResult,
  LookupResult,
  RetrieveResult,
  StaleLookup,
} from './query-types.js';

const SNIPPET_CHARS = 240;
const DEFAULT_STALE_TTL_MS = 7 * 24 * 3600 * 1000;

interface StaleAnswer {
  answer: CachedAnswer;
  cachedAt: string;
}
const FLIGHT_TTL_MS = 30_000;

const NO_DOCUMENTS_ANSWER = "I couldn't find any document about that.";

/**
 * The query path's activities (workflows/answer-query.ts): the result cache and its store-down rung, retrieval, and
 * generation with its extractive fallback, shared by identical queries in flight and streamed when asked.
 */
export const createQueryActivities = (deps: ActivityDeps) => {
  const { store, cache, metrics, settings } = deps;

  /** One JSON line per query step, tied to the query by its workflow id; the question itself only if allowed. */
  const logQuery = (tenant: string, query: string, message: string, fields: Record<string, unknown>) => {
    const workflowId = Context.current().info.workflowExecution?.workflowId;
    queryLogger(deps.logger, { queryId: workflowId, workflowId, tenant }).info(
      {
        query: settings.redactKey === undefined ? query : redactQuery(normalizeQuery(query), settings.redactKey),
        ...fields,
      },
      message,
    );
  };

  const checkQuery = (query: string, tenant: string) => {
    const problem = queryInputProblem({ query, tenant }, { maxQueryChars: settings.maxQueryChars });
    if (problem)
      throw ApplicationFailure.create({ type: ErrorType.InvalidInput, message: problem, nonRetryable: true });
  };

  /** The tenant's live parameters: read per query (memoised by the store), so a change needs no restart. */
  const paramsFor = (tenant: string): Promise<ParamVersion> => deps.improvement.params.current(tenant);
  // Version 0 is the configuration the store was opened with: nothing to pass.
  const tuningOf = ({ version, params }: ParamVersion) => (version === 0 ? {} : searchTuning(params));

  const scopeFor = async (tenant: string, topK: number, paramsVersion: number): Promise<ResultScope> => ({
    tenant,
    corpusVersion: await store.corpusVersion(tenant),
    topK,
    generatorModel: deps.generator.model,
    paramsVersion: paramsVersion === 0 ? undefined : paramsVersion,
    ...(settings.answerSettings === undefined ? {} : { settings: settings.answerSettings }),
  });

  const contextFor = async (tenant: string, hits: GenerateInput['hits']): Promise<ContextChunk[]> => {
    const { params } = await paramsFor(tenant);
    hits = hits.slice(0, params.promptChunks);
    const ids = hits.map((h) => h.chunkId);
    const chunks = new Map((await store.getChunks(tenant, ids)).map((c) => [c.id, c]));
    return hits.flatMap(({ chunkId, score }, i) => {
      const chunk = chunks.get(chunkId);
      return chunk ? [{ n: i + 1, chunkId, docId: chunk.docId, title: chunk.title, text: chunk.text, score }] : [];
    });
  };

  /**
   * Identical queries that miss the cache at the same moment share one retrieval and one generation: in this
   * process through single-flight, across workers through a short lock in the shared cache (bounded wait).
   * The shared value lives only as long as a burst does.
   */
  const shared = async <T>(key: string, compute: (signal: AbortSignal) => Promise<T>): Promise<T> =>
    (
      await cachedCompute(cache, key, { ttlMs: FLIGHT_TTL_MS }, compute, {
        // Renewed while the holder works, so a shared computation may take longer; a holder whose worker was killed
        // stops renewing, and the queries waiting on it take over within this long instead of waiting it out.
        lockMs: 3000,
        waitMs: settings.stampedeWaitMs ?? 5000,
        // This query's cancellation ends only its wait; the shared work stops when every query that joined it has.
        signal: Context.current().cancellationSignal,
      })
    ).value;

  /**
   * The publisher of a streamed query's tokens, or undefined when nobody asked for a stream. Best effort by design:
   * the first failed publish stops this attempt's stream (the listener still gets the whole answer from the
   * result), and `flush` waits for what was sent so the last tokens reach Redis before the activity completes.
   */
  const tokenStream = (input: GenerateInput, restart: boolean) => {
    const tokens = deps.tokens;
    const workflowId = Context.current().info.workflowExecution?.workflowId;
    if (!input.stream || !tokens || !workflowId) return undefined;
    const channel = tokens.name(input.tenant, workflowId);
    const sent: Array<Promise<void>> = [];
    let broken = false;
    const publish = (message: StreamMessage) => {
      if (broken) return;
      sent.push(
        tokens.publish(channel, message).catch((error: unknown) => {
          if (!broken)
            deps.logger.warn({ err: error, workflowId }, 'answer stream publish failed; the answer arrives whole');
          broken = true;
        }),
      );
    };
    // A retry or the fallback writes the answer again: listeners drop what an earlier attempt showed.
    if (restart) publish({ type: 'reset' });
    return {
      onDelta: (text: string) => publish({ type: 'delta', text }),
      flush: async () => {
        await Promise.all(sent);
        publish({ type: 'end' });
        await Promise.all(sent);
      },
    };
  };

  const generateWith = async (
    generator: AnswerGenerator,
    input: GenerateInput,
    signal: AbortSignal,
    restart = Context.current().info.attempt > 1,
  ): Promise<GenerateResult> => {
    const started = performance.now();
    const stream = tokenStream(input, restart);
    try {
      return await generateTo(generator, input, signal, started, stream?.onDelta);
    } finally {
      await stream?.flush();
    }
  };

  const generateTo = async (
    generator: AnswerGenerator,
    input: GenerateInput,
    signal: AbortSignal,
    started: number,
    onDelta: ((text: string) => void) | undefined,
  ): Promise<GenerateResult> => {
    const chunks = await contextFor(input.tenant, input.hits);
    if (chunks.length === 0) {
      return {
        answer: NO_DOCUMENTS_ANSWER,
        citations: [],
        model: generator.model,
        qualityScore: 0,
        uncited: true,
        tookMs: 0,
      };
    }
    const generated = await withSpan(
      'generation',
      { 'llm.model': generator.model, 'generation.chunks': chunks.length },
      async (span) => {
        const answer = await generator.generate({
          query: input.query,
          tenant: input.tenant,
          chunks,
          signal,
          ...(onDelta ? { onDelta } : {}),
        });
        span.setAttributes({
          'llm.prompt_tokens': answer.usage?.promptTokens ?? 0,
          'llm.completion_tokens': answer.usage?.completionTokens ?? 0,
          'llm.cached': answer.cached ?? false,
          'generation.citations': answer.citations.length,
        });
        return answer;
      },
    );
    logQuery(input.tenant, input.query, 'answer generated', {
      model: generated.model,
      citations: generated.citations,
      uncited: generated.uncited ?? false,
      promptTokens: generated.usage?.promptTokens,
      completionTokens: generated.usage?.completionTokens,
      llmCached: generated.cached,
    });
    if (generated.cached !== undefined)
      metrics.cacheRequests.inc({ level: 'llm', outcome: generated.cached ? 'hit' : 'miss' });
    const sources = chunks.map((c) => ({ n: c.n, text: `${c.title}\n${c.text}` }));
    const grounded = groundedness(deps.analyzer, { answer: generated.answer, sources });
    metrics.answerGroundedness.observe(grounded.score);
    logQuery(input.tenant, input.query, 'answer groundedness', {
      groundedness: grounded.score,
      unsupportedSentences: grounded.unsupported.length,
      mostlyUnsupported: grounded.mostlyUnsupported,
    });
    const qualityScore = answerQuality(deps.analyzer, {
      query: input.query,
      sources,
      citations: generated.citations,
    });
    return { ...generated, qualityScore, tookMs: Math.round(performance.now() - started) };
  };

  /** The last good answer to this question, whatever the corpus version, for when the store is down. */
  const staleAnswerFor = async (input: { query: string; tenant: string; options?: QueryOptions }) => {
    // The topK the answer was stored under: the tenant's tuned one, as lookupCachedAnswer reads it, or the default
    // when the parameters cannot be read either.
    const tunedTopK = async () => (await paramsFor(input.tenant).catch(() => undefined))?.params.topK ?? settings.topK;
    const scope = {
      tenant: input.tenant,
      topK: input.options?.topK ?? (await tunedTopK()),
      generatorModel: deps.generator.model,
    };
    const found = await cache.get<StaleAnswer>(staleKey(scope, input.query));
    logQuery(input.tenant, input.query, 'stale answer lookup', { stale: found ? 'hit' : 'miss' });
    return found ? { status: 'hit' as const, ...found } : { status: 'miss' as const };
  };

  return {
    /** The floor every latency figure is measured against: a local activity that does nothing. */
    async noop(): Promise<void> {},

    async lookupCachedAnswer(input: { query: string; tenant: string; options?: QueryOptions }): Promise<LookupResult> {
      const started = performance.now();
      checkQuery(input.query, input.tenant);
      const params = await paramsFor(input.tenant);
      const tookMs = () => Math.round(performance.now() - started);
      // Read last, so the workflow acts on the freshest state; absent when nothing is refused, as results always were.
      const refused = () => {
        const list = refusedDependencies(deps.breakers);
        return list.length > 0 ? { refused: list } : {};
      };
      let scope: ResultScope;
      try {
        scope = await scopeFor(input.tenant, input.options?.topK ?? params.params.topK, params.version);
      } catch (error) {
        if (!(error instanceof CircuitOpenError)) throw error;
        const stale = await staleAnswerFor(input).catch(() => undefined);
        const list = refusedDependencies(deps.breakers);
        return {
          status: 'unavailable',
          refused: list.includes(error.dependency) ? list : [...list, error.dependency],
          cache: { result: 'error' },
          tookMs: tookMs(),
          ...(stale ? { stale } : {}),
        };
      }
      if (input.options?.bypassCache) {
        const key = resultKey(scope, input.query);
        return {
          status: 'miss',
          key,
          scope,
          corpusVersion: scope.corpusVersion,
          cache: { result: 'bypass' },
          tookMs: tookMs(),
          ...refused(),
        };
      }
      const found = await withSpan(
        'cache.lookup',
        { 'cache.level': 'result', 'ragline.tenant': input.tenant },
        async (span) => {
          const lookup = await deps.resultCache.lookup<CachedAnswer>(scope, input.query, {
            semanticThreshold: params.version === 0 ? undefined : params.params.semanticThreshold,
          });
          span.setAttributes({
            'cache.hit': lookup.status === 'hit',
            'cache.hit_level': lookup.status === 'hit' ? lookup.level : 'none',
          });
          return lookup;
        },
      );
      logQuery(input.tenant, input.query, 'query cache lookup', {
        cache: found.status === 'hit' ? found.level : found.outcome,
      });
      if (found.status === 'hit') {
        const cache: CacheReport = found.level === 'result' ? { result: 'hit' } : { result: 'miss', semantic: 'hit' };
        return { status: 'hit', answer: found.value, cache, tookMs: tookMs() };
      }
      return {
        status: 'miss',
        key: found.key,
        scope,
        corpusVersion: scope.corpusVersion,
        cache: { result: found.outcome },
        tookMs: tookMs(),
        ...refused(),
      };
    },

    async storeCachedAnswer(input: { scope: ResultScope; query: string; answer: AnswerQueryResult }): Promise<void> {
      const { answer, sources, qualityScore, model, citations, uncited, corpusVersion } = input.answer;
      const value: CachedAnswer = { answer, sources, qualityScore, model, citations, uncited, corpusVersion };
      const stale: StaleAnswer = { answer: value, cachedAt: new Date().toISOString() };
      await Promise.all([
        deps.resultCache.store(
          input.scope,
          input.query,
          value,
          sources.map((s) => s.docId),
        ),
        // Tagged for deletion only: a changed document leaves it servable, flagged stale, when nothing current can be
        // computed; a deleted one drops it (see invalidateDeletedDocuments).
        cache.set(staleKey(input.scope, input.query), stale, {
          ttlMs: settings.staleTtlMs ?? DEFAULT_STALE_TTL_MS,
          tags: [...new Set(sources.map((s) => s.docId))].map((docId) => staleDocTag(input.scope.tenant, docId)),
        }),
      ]);
    },

    /** The last good answer to this question, whatever the corpus version, for when the store is down. */
    async lookupStaleAnswer(input: { query: string; tenant: string; options?: QueryOptions }): Promise<StaleLookup> {
      checkQuery(input.query, input.tenant);
      return staleAnswerFor(input);
    },

    async retrieveChunks(input: {
      query: string;
      tenant: string;
      topK?: number;
      flightKey?: string;
    }): Promise<RetrieveResult> {
      return atBoundary(() =>
        keepAlive(async () => {
          const started = performance.now();
          checkQuery(input.query, input.tenant);
          const params = await paramsFor(input.tenant);
          const topK = input.topK ?? params.params.topK;
          const search = () =>
            withSpan('retrieval.search', { 'retrieval.k': topK, 'retrieval.store': store.kind }, async (span) => {
              const [response, corpusVersion] = await Promise.all([
                store.search(input.tenant, { query: input.query, topK, ...tuningOf(params) }),
                store.corpusVersion(input.tenant),
              ]);
              span.setAttributes({
                'retrieval.hits': response.hits.length,
                'retrieval.top_score': response.hits[0]?.score ?? 0,
              });
              const hits = response.hits.map(({ chunkId, docId, title, text, score }) => ({
                chunkId,
                docId,
                title,
                snippet: snippet(text),
                score: Math.round(score * 10_000) / 10_000,
              }));
              return {
                hits,
                reason: response.reason,
                corpusVersion,
                ...(response.degradedReason
                  ? { retrievalDegraded: response.degradedReason, degradedReasons: ['lexical-only' as const] }
                  : {}),
              };
            });
          const result = input.flightKey ? await shared(`${input.flightKey}:retrieval`, search) : await search();
          return { ...result, tookMs: Math.round(performance.now() - started) };
        }),
      );
    },

    async generateAnswer(input: GenerateInput): Promise<GenerateResult> {
      return atBoundary(() =>
        keepAlive(() =>
          input.flightKey
            ? shared(`${input.flightKey}:generation`, (signal) => generateWith(deps.generator, input, signal))
            : generateWith(deps.generator, input, Context.current().cancellationSignal),
        ),
      );
    },

    async composeExtractiveAnswer(input: GenerateInput): Promise<GenerateResult> {
      if (input.circuitOpen) deps.breakers?.llm.countRefusal();
      // The fallback rewrites whatever the configured generator had streamed; without an LLM there was nothing.
      return atBoundary(() =>
        generateWith(deps.extractive, input, Context.current().cancellationSignal, deps.generator !== deps.extractive),
      );
    },
  };
};

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= SNIPPET_CHARS ? flat : `${flat.slice(0, SNIPPET_CHARS - 1)}…`;
}
