import { createHash } from 'node:crypto';
import { Context, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Cache } from '../lib/cache/cache.js';
import { invalidateDocuments } from '../lib/cache/index.js';
import { resultKey, staleKey, type CacheTtls, type ResultScope } from '../lib/cache/keys.js';
import type { ResultCache } from '../lib/cache/result-cache.js';
import { cachedCompute } from '../lib/cache/single-flight.js';
import type {
  AnswerGenerator,
  ChunkStore,
  ContextChunk,
  DocumentChunks,
  TokenUsage,
  UpsertResult,
} from '../lib/domain.js';
import { ErrorType, RaglineError } from '../lib/errors.js';
import { answerQuality } from '../lib/generation/quality.js';
import { chunkDocument } from '../lib/ingest/chunker.js';
import { readManifest, removeManifest, writeManifest, type ManifestRef } from '../lib/ingest/manifest.js';
import {
  discoverSources,
  readDocuments,
  readFrom,
  START,
  type FilePosition,
  type SourceFile,
  type SourceProblem,
} from '../lib/ingest/sources.js';
import { CircuitOpenError, refusedDependencies, type Breakers, type Dependency } from '../lib/resilience/breakers.js';
import { tenantProblem } from '../lib/tenant.js';
import type { Analyzer } from '../lib/retrieval/analyzer.js';
import { validateDocument } from '../lib/retrieval/embedded-store.js';
import type { SourceDocument } from '../lib/domain.js';
import { queryLogger, redactQuery, type Logger } from '../lib/telemetry/logger.js';
import type { Metrics } from '../lib/telemetry/metrics.js';
import { withSpan } from '../lib/telemetry/tracing.js';
import type { AnswerQueryResult, CacheReport, FallbackReason, QueryOptions } from '../contracts/query.js';
import { queryInputProblem } from '../contracts/query.js';
import { Registry } from 'prom-client';
import { createEvalMetrics } from '../lib/eval/eval-metrics.js';
import { createEvaluationActivities, type EvaluationDeps } from './evaluation.js';
import { createImprovementActivities, type ImprovementDeps } from './improvement.js';
import { createReindexActivities, type ReindexDeps } from './reindex.js';
import type { ParamVersion } from '../lib/improve/params.js';
import { searchTuning } from '../lib/improve/shadow.js';
import { atBoundary, atIngestionBoundary } from './failures.js';
import { keepAlive } from './heartbeat.js';
import type { StreamMessage, TokenChannel } from '../lib/stream/token-channel.js';

/** What ragline's activities need, injected by the composition root (workers/) or by a test. */
export interface ActivityDeps {
  store: ChunkStore;
  cache: Cache;
  /** Exact and near-duplicate answers over `cache`. */
  resultCache: ResultCache;
  /** The configured generator: an LLM, or the extractive one. */
  generator: AnswerGenerator;
  /** Always available; the fallback when the configured generator fails. */
  extractive: AnswerGenerator;
  analyzer: Analyzer;
  metrics: Metrics;
  logger: Logger;
  settings: ActivitySettings;
  /** Evaluation metrics and webhook; a test that leaves it out gets metrics on a private registry and no webhook. */
  evaluation?: EvaluationDeps;
  /** The query log and the per-tenant parameter store (versioned by the improvement loop). */
  improvement: ImprovementDeps;
  /** Where a streamed query's answer tokens are published while it is generated; unset, nothing streams. */
  tokens?: TokenChannel;
  /** This worker's breakers (the adapters above already go through them); unset with RAGLINE_BREAKERS=false. */
  breakers?: Breakers;
  /** Background re-embedding over the unguarded store; unset, `store` is used (refused unless it can re-embed). */
  reindex?: ReindexDeps;
}

export interface ActivitySettings {
  topK: number;
  maxQueryChars: number;
  chunkChars: number;
  ingestBatch: number;
  /** Where ingestion runs keep their file lists (`<RAGLINE_DATA_DIR>/ingest`). */
  ingestDir: string;
  /** Largest Markdown or text file, and largest JSONL line, ingested. */
  maxDocumentBytes: number;
  ttls: CacheTtls;
  /** How long the last good answer to a question is kept for the store-down rung, in ms. */
  staleTtlMs?: number;
  /** Log a hash of the question instead of its text. */
  redactQueries: boolean;
  /** How long a query waits for an identical one already computing elsewhere before computing itself. */
  stampedeWaitMs?: number;
  /** `answerSettingsHash(config)`: cached answers are kept apart by every setting that changes them. */
  answerSettings?: string;
}

const SNIPPET_CHARS = 240;
const DEFAULT_STALE_TTL_MS = 7 * 24 * 3600 * 1000;

interface StaleAnswer {
  answer: CachedAnswer;
  cachedAt: string;
}
const FLIGHT_TTL_MS = 30_000;

/** A cached answer: the parts of a result that do not depend on who asked or when. */
export type CachedAnswer = Pick<
  AnswerQueryResult,
  'answer' | 'sources' | 'qualityScore' | 'model' | 'citations' | 'uncited' | 'corpusVersion'
>;

/** The last good answer to a question, whatever the corpus version: the store-down rung. */
export type StaleLookup = { status: 'hit'; answer: CachedAnswer; cachedAt: string } | { status: 'miss' };

/**
 * `refused` lists the dependencies whose breaker in this worker would refuse a call right now (absent when none), so
 * the workflow takes their fallback without scheduling an activity only to see it refused. `unavailable`: the store's
 * breaker refused the corpus version the cache key needs, so no current answer could be looked up; `stale` is the
 * last good answer the store-down rung serves, read in the same step (absent when it could not be read).
 */
export type LookupResult =
  | { status: 'hit'; answer: CachedAnswer; cache: CacheReport; tookMs: number }
  | {
      status: 'miss';
      key: string;
      scope: ResultScope;
      corpusVersion: number;
      cache: CacheReport;
      tookMs: number;
      refused?: Dependency[];
    }
  | { status: 'unavailable'; refused: Dependency[]; cache: CacheReport; tookMs: number; stale?: StaleLookup };

export interface RetrievedHit {
  chunkId: string;
  docId: string;
  title: string;
  snippet: string;
  score: number;
}

export interface RetrieveResult {
  hits: RetrievedHit[];
  reason?: string;
  /** Rungs retrieval stepped down by itself, such as `lexical-only` when the embedder is down. */
  degradedReasons?: FallbackReason[];
  /** Set when the dense leg was configured but not used: the hits are lexical only (see SearchResponse). */
  retrievalDegraded?: 'embedder-unavailable' | 'embedding-mismatch';
  corpusVersion: number;
  tookMs: number;
}

export interface GenerateInput {
  query: string;
  tenant: string;
  /** The result key of a cache miss: identical queries in flight at once share one generation under it. */
  flightKey?: string;
  /** Retrieved chunk ids, best first: the generator loads their text itself, so histories stay small. */
  hits: Array<{ chunkId: string; score: number }>;
  reason?: string;
  /** Publish the answer's tokens on the query's stream channel as they are written (`options.stream`). */
  stream?: boolean;
  /**
   * Set on the extractive fallback when the workflow skipped the generation activity because the LLM's breaker was
   * refusing: the refusal is counted here, as the skipped call would have counted it.
   */
  circuitOpen?: boolean;
}

export interface GenerateResult {
  answer: string;
  citations: number[];
  model: string;
  qualityScore: number;
  usage?: TokenUsage;
  uncited?: boolean;
  cached?: boolean;
  tookMs: number;
}

export interface IngestBatchInput {
  tenant: string;
  slices: Array<{ file: SourceFile; offset: number; limit: number }>;
}

export interface IngestBatchResult {
  added: number;
  updated: number;
  unchanged: number;
  rejected: SourceProblem[];
  corpusVersion: number;
}

/** A position in an ingestion run: the manifest's file index and where reading stopped in that file. */
export type IngestCursor = FilePosition & { file: number };

export interface DiscoverManifestResult {
  manifest: ManifestRef;
  files: number;
  documentsTotal: number;
  /** The first problems found (at most 100), so the result stays small for any tree. */
  problems: SourceProblem[];
  problemsTotal: number;
}

export interface IngestManifestBatchInput {
  tenant: string;
  manifest: ManifestRef;
  cursor: IngestCursor;
  /** Documents to read in this batch. */
  limit: number;
}

export interface IngestManifestBatchResult extends IngestBatchResult {
  /** Documents read (bad ones included), for progress. */
  documents: number;
  /** Rejected documents in this batch; `rejected` lists at most 100 of them. */
  rejectedTotal: number;
  cursor: IngestCursor;
  done: boolean;
}

const MAX_REPORTED_PROBLEMS = 100;

/**
 * A failure caused by what was sent rather than by the embedder's health: a vector of the wrong size or NaN, the
 * wrong number of vectors, or a text too large for it. Isolating the documents is worth it; a retry of the same
 * batch is not.
 */
const isDocumentFault = (error: unknown): boolean =>
  error instanceof RaglineError && (error.type === ErrorType.BadResponse || error.type === ErrorType.ContextLength);

const NO_DOCUMENTS_ANSWER = "I couldn't find any document about that.";

export const createActivities = (deps: ActivityDeps) => {
  const { store, cache, metrics, settings } = deps;

  /** One JSON line per query step, tied to the query by its workflow id; the question itself only if allowed. */
  const logQuery = (tenant: string, query: string, message: string, fields: Record<string, unknown>) => {
    const workflowId = Context.current().info.workflowExecution?.workflowId;
    queryLogger(deps.logger, { queryId: workflowId, workflowId, tenant }).info(
      { query: redactQuery(query, settings.redactQueries), ...fields },
      message,
    );
  };

  const checkTenant = (tenant: string) => {
    const problem = tenantProblem(tenant);
    if (problem)
      throw ApplicationFailure.create({ type: ErrorType.InvalidInput, message: problem, nonRetryable: true });
  };

  /**
   * Upserts `docs` in one step, heartbeating as their chunks are embedded, so a slow embedder that is making
   * progress keeps the activity alive while a stuck one is found out at the heartbeat timeout. When the embedder
   * answers something unusable for the batch (wrong count, dimensions or NaN; a text too large for it), each
   * document is tried alone: its vectors are cached, so only the failing part is asked for again, and only the
   * document at fault is rejected, by name.
   */
  const upsertIsolating = async (
    tenant: string,
    docs: DocumentChunks[],
    result: IngestBatchResult,
    sourceOf: (docId: string) => string,
  ) => {
    const context = Context.current();
    let details: Record<string, unknown> = { stage: 'upsert', documents: docs.length };
    const upsert = (batch: DocumentChunks[]) =>
      store.upsertDocuments(tenant, batch, {
        onEmbedded: (embedded, total) => {
          details = { stage: 'embedding', documents: docs.length, embedded, total };
          context.heartbeat(details);
        },
        signal: context.cancellationSignal,
      });
    return keepAlive(
      async () => {
        try {
          return await upsert(docs);
        } catch (error) {
          if (!isDocumentFault(error) || docs.length === 1) throw error;
          log.warn('embedding a batch failed on its content; trying its documents one by one', {
            documents: docs.length,
            error: (error as Error).message,
          });
        }
        const outcomes: UpsertResult[] = [];
        for (const doc of docs) {
          try {
            outcomes.push(...(await upsert([doc])));
          } catch (error) {
            if (!isDocumentFault(error)) throw error;
            result.rejected.push({ source: sourceOf(doc.docId), reason: (error as Error).message });
          }
        }
        return outcomes;
      },
      () => details,
    );
  };

  /** Chunks and stores parsed documents in one upsert (one corpus-version step); bad ones go to `result.rejected`. */
  const indexDocuments = async (tenant: string, parsed: SourceDocument[], result: IngestBatchResult) => {
    const changedDocIds: string[] = [];
    const docs = [];
    for (const doc of parsed) {
      const chunked = chunkDocument(doc, settings.chunkChars);
      const problem = doc.text.trim() === '' ? `document ${doc.id} has no text` : validateDocument(chunked);
      if (problem) result.rejected.push({ source: doc.source ?? doc.id, reason: problem });
      else docs.push(chunked);
    }
    if (docs.length > 0) {
      const sources = new Map(parsed.map((doc) => [doc.id, doc.source ?? doc.id]));
      for (const outcome of await upsertIsolating(tenant, docs, result, (id) => sources.get(id) ?? id)) {
        result[outcome.status] += 1;
        if (outcome.status === 'updated') changedDocIds.push(outcome.docId);
      }
    }
    // Results that cited a changed document are dropped now, not when the TTL runs out.
    if (changedDocIds.length > 0) await invalidateDocuments(cache, tenant, changedDocIds);
    for (const outcome of ['added', 'updated', 'unchanged'] as const) {
      metrics.ingestedDocuments.inc({ outcome }, result[outcome]);
    }
    metrics.ingestedDocuments.inc({ outcome: 'rejected' }, result.rejected.length);
    if (result.rejected.length > 0) log.warn('ingestion rejected documents', { rejected: result.rejected.length });
    result.corpusVersion = await store.corpusVersion(tenant);
  };

  const discover = (paths: string[]) =>
    discoverSources(paths, {
      maxDocumentBytes: settings.maxDocumentBytes,
      onProgress: (visited) => Context.current().heartbeat({ visited }),
    });

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
    const qualityScore = answerQuality(deps.analyzer, {
      query: input.query,
      sources: chunks.map((c) => ({ n: c.n, text: `${c.title}\n${c.text}` })),
      citations: generated.citations,
    });
    return { ...generated, qualityScore, tookMs: Math.round(performance.now() - started) };
  };

  /** The last good answer to this question, whatever the corpus version, for when the store is down. */
  const staleAnswerFor = async (input: { query: string; tenant: string; options?: QueryOptions }) => {
    const scope = {
      tenant: input.tenant,
      topK: input.options?.topK ?? settings.topK,
      generatorModel: deps.generator.model,
    };
    const found = await cache.get<StaleAnswer>(staleKey(scope, input.query));
    logQuery(input.tenant, input.query, 'stale answer lookup', { stale: found ? 'hit' : 'miss' });
    return found ? { status: 'hit' as const, ...found } : { status: 'miss' as const };
  };

  const evaluation = createEvaluationActivities(
    deps.evaluation ?? { metrics: createEvalMetrics(new Registry()), logger: deps.logger, webhookTimeoutMs: 5000 },
  );

  const improvement = createImprovementActivities(deps.improvement);

  const reindex = createReindexActivities(deps.reindex ?? { store, kind: store.kind });

  return {
    ...evaluation,
    ...improvement,
    ...reindex,

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
        // Untagged: a deleted or changed document does not drop it, since it is only served, flagged stale, when
        // nothing current can be computed.
        cache.set(staleKey(input.scope, input.query), stale, { ttlMs: settings.staleTtlMs ?? DEFAULT_STALE_TTL_MS }),
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

    /** Discovery as started by ingestion runs of older code, which carry the whole file list in their history. */
    async discoverSources(input: { paths: string[] }): Promise<{ files: SourceFile[]; problems: SourceProblem[] }> {
      return atBoundary(() => discover(input.paths));
    },

    /** Walks the paths, writes the file list to the data dir and returns a reference to it with the totals. */
    async discoverIngestManifest(input: { paths: string[] }): Promise<DiscoverManifestResult> {
      return atBoundary(async () => {
        const { workflowExecution: run, activityId } = Context.current().info;
        const owner = run ? `${run.workflowId}\0${run.runId}` : `activity\0${activityId}`;
        const id = createHash('sha256').update(owner).digest('hex').slice(0, 32);
        const { files, problems } = await discover(input.paths);
        await writeManifest(settings.ingestDir, id, files);
        return {
          manifest: { id, paths: input.paths },
          files: files.length,
          documentsTotal: files.reduce((sum, file) => sum + file.documents, 0),
          problems: problems.slice(0, MAX_REPORTED_PROBLEMS),
          problemsTotal: problems.length,
        };
      });
    },

    /**
     * Reads, chunks and stores the next `limit` documents of a run from its cursor, across files; a bad document is
     * reported and the rest go in. A JSONL file is read on from the byte where the previous batch stopped.
     */
    async ingestManifestBatch(input: IngestManifestBatchInput): Promise<IngestManifestBatchResult> {
      return atIngestionBoundary(async () => {
        checkTenant(input.tenant);
        if (!Number.isInteger(input.limit) || input.limit < 1) {
          throw ApplicationFailure.create({
            type: ErrorType.InvalidInput,
            message: `batch limit must be a positive integer, not ${input.limit}`,
            nonRetryable: true,
          });
        }
        const files = await readManifest(
          settings.ingestDir,
          input.manifest,
          async (paths) => (await discover(paths)).files,
        );
        const result: IngestBatchResult = { added: 0, updated: 0, unchanged: 0, rejected: [], corpusVersion: 0 };
        const parsed: SourceDocument[] = [];
        let cursor = { ...input.cursor };
        let documents = 0;
        while (documents < input.limit && cursor.file < files.length) {
          Context.current().heartbeat({ cursor });
          const slice = await readFrom(files[cursor.file]!, cursor, input.limit - documents, settings.maxDocumentBytes);
          documents += slice.next.doc - cursor.doc;
          result.rejected.push(...slice.problems);
          parsed.push(...slice.documents);
          cursor = slice.exhausted ? { file: cursor.file + 1, ...START } : { file: cursor.file, ...slice.next };
        }
        await indexDocuments(input.tenant, parsed, result);
        const done = cursor.file >= files.length;
        if (done) await removeManifest(settings.ingestDir, input.manifest);
        return {
          ...result,
          rejected: result.rejected.slice(0, MAX_REPORTED_PROBLEMS),
          rejectedTotal: result.rejected.length,
          documents,
          cursor,
          done,
        };
      });
    },

    /** Batches of ingestion runs started by older code: slices by document offset. */
    async ingestBatch(input: IngestBatchInput): Promise<IngestBatchResult> {
      return atIngestionBoundary(async () => {
        checkTenant(input.tenant);
        const result: IngestBatchResult = { added: 0, updated: 0, unchanged: 0, rejected: [], corpusVersion: 0 };
        const parsed: SourceDocument[] = [];
        for (const slice of input.slices) {
          Context.current().heartbeat({ file: slice.file.path, offset: slice.offset });
          const read = await readDocuments(slice.file, slice.offset, slice.limit);
          result.rejected.push(...read.problems);
          parsed.push(...read.documents);
        }
        await indexDocuments(input.tenant, parsed, result);
        return result;
      });
    },

    async deleteDocuments(input: {
      tenant: string;
      docIds: string[];
    }): Promise<{ deleted: string[]; missing: string[]; corpusVersion: number }> {
      return atIngestionBoundary(async () => {
        checkTenant(input.tenant);
        const outcome = await store.deleteDocuments(input.tenant, input.docIds);
        if (outcome.deleted.length > 0) {
          await invalidateDocuments(cache, input.tenant, outcome.deleted);
          metrics.ingestedDocuments.inc({ outcome: 'deleted' }, outcome.deleted.length);
        }
        return { ...outcome, corpusVersion: await store.corpusVersion(input.tenant) };
      });
    },

    /** Which of these document ids the tenant's corpus does not hold (evaluation sets name documents by id). */
    async findUnknownDocIds(input: { tenant: string; docIds: string[] }): Promise<{ unknown: string[] }> {
      return atBoundary(async () => {
        const unknown: string[] = [];
        for (const docId of input.docIds) {
          if ((await store.documentHash(input.tenant, docId)) === undefined) unknown.push(docId);
        }
        return { unknown };
      });
    },

    async describeCorpus(input: { tenant: string }) {
      return atBoundary(async () => {
        checkTenant(input.tenant);
        return { tenant: input.tenant, store: store.kind, ...(await store.stats(input.tenant)) };
      });
    },
  };
};

export type Activities = ReturnType<typeof createActivities>;

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= SNIPPET_CHARS ? flat : `${flat.slice(0, SNIPPET_CHARS - 1)}…`;
}
