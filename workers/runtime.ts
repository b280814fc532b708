import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeConnection } from '@temporalio/worker';
import { ApplicationFailure } from '@temporalio/common';
import { Worker, type ActivityInterceptorsFactory, type InjectedSinks, type WorkerOptions } from '@temporalio/worker';
import type { ActivityDeps } from '../activities/deps.js';
import { createActivities } from '../activities/index.js';
import type { Cache } from '../lib/cache/cache.js';
import { answerSettingsHash, cacheTtls } from '../lib/cache/keys.js';
import { createCache, createCacheMetrics, createSemanticCache, ResultCache } from '../lib/cache/index.js';
import { breakerSettings, redactionKey, redisClusterNodes, type Config } from '../lib/config.js';
import { createBreakers, type Breakers } from '../lib/resilience/breakers.js';
import { BreakerSharing } from '../lib/resilience/shared-breakers.js';
import { guardCache, guardGenerator, guardStore } from '../lib/resilience/guarded.js';
import type { AnswerGenerator, ChunkStore } from '../lib/domain.js';
import { ExtractiveGenerator } from '../lib/generation/extractive.js';
import { createLlmMetrics } from '../lib/generation/llm-metrics.js';
import { openAIGeneratorFromConfig } from '../lib/generation/openai-generator.js';
import { Analyzer } from '../lib/retrieval/analyzer.js';
import { withChunkCache } from '../lib/cache/cached-chunk-store.js';
import { embeddingKey } from '../lib/cache/keys.js';
import {
  createChunkStore,
  DiskEmbeddingCache,
  openAIEmbedderFromConfig,
  type EmbeddingCache,
} from '../lib/retrieval/index.js';
import { createLogger, type Logger } from '../lib/telemetry/logger.js';
import { redactQuery } from '../lib/redact.js';
import { createMetrics, type Metrics } from '../lib/telemetry/metrics.js';
import type { RaglineSinks } from '../contracts/sinks.js';
import { normalizeQuery } from '../lib/cache/keys.js';
import { createImprovementStores } from '../lib/improve/index.js';
import { tunedParams } from '../lib/improve/params.js';
import type { QueryLogWriter } from '../lib/improve/query-log.js';
import { createEvalMetrics } from '../lib/eval/eval-metrics.js';
import { createTokenChannel, type TokenChannel } from '../lib/stream/token-channel.js';

/** Everything a worker process owns, built once from the configuration: the composition root. */
export interface Runtime {
  config: Config;
  deps: ActivityDeps;
  logger: Logger;
  /** One breaker per dependency, shared by every activity of this process; unset with RAGLINE_BREAKERS=false. */
  breakers?: Breakers;
  close(): Promise<void>;
}

export interface RuntimeOverrides {
  store?: ChunkStore;
  cache?: Cache;
  generator?: AnswerGenerator;
  metrics?: Metrics;
  logger?: Logger;
  tokens?: TokenChannel;
}

export async function createRuntime(config: Config, overrides: RuntimeOverrides = {}): Promise<Runtime> {
  const logger = overrides.logger ?? createLogger({ level: config.LOG_LEVEL, format: config.LOG_FORMAT });
  const metrics = overrides.metrics ?? createMetrics();
  const analyzer = new Analyzer();
  const cacheMetrics = createCacheMetrics(metrics.registry);
  const breakers = config.RAGLINE_BREAKERS
    ? createBreakers(breakerSettings(config), { registry: metrics.registry, logger })
    : undefined;
  const sharing =
    breakers && config.RAGLINE_BREAKER_SHARED
      ? BreakerSharing.start(breakers, {
          url: config.REDIS_URL,
          clusterNodes: redisClusterNodes(config),
          keyPrefix: config.REDIS_KEY_PREFIX,
          workerId: `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
          logger,
        })
      : undefined;
  // A hung call counts as a failure once it outlives what a query could wait for it.
  const callTimeoutMs = Math.min(config.OPENAI_TIMEOUT_MS, config.RAGLINE_QUERY_DEADLINE_MS);
  const rawCache = overrides.cache ?? createCache(config, logger, cacheMetrics);
  // The in-process cache cannot be down; Redis can, and then an open breaker turns every call into an instant miss.
  const cache = breakers && rawCache.kind === 'redis' ? guardCache(rawCache, breakers.cache) : rawCache;
  const ttls = cacheTtls(config);
  const count = (level: string) => (outcome: 'hit' | 'miss') => metrics.cacheRequests.inc({ level, outcome });
  // Embeddings outlive the process: in the configured folder, or with no Redis in the data dir, so what a killed
  // worker had embedded is not asked for again; with Redis they are shared between workers under a TTL.
  // (No folder is made when no embedding model is configured.)
  const embeddingDir =
    config.RAGLINE_EMBEDDING_CACHE_DIR ??
    (rawCache.kind === 'redis' ? undefined : path.join(config.RAGLINE_DATA_DIR, 'embeddings'));
  const embeddings: EmbeddingCache =
    embeddingDir && config.OPENAI_EMBEDDING_MODEL !== undefined
      ? new DiskEmbeddingCache(embeddingDir)
      : {
          get: (key) => cache.get<number[]>(embeddingKey(key)),
          set: (key, vector) => cache.set(embeddingKey(key), vector, { ttlMs: ttls.embedding }),
        };
  const embedder = openAIEmbedderFromConfig(config, {
    cache: {
      get: async (key) => {
        const vector = await embeddings.get(key);
        count('embedding')(vector ? 'hit' : 'miss');
        return vector;
      },
      set: (key, vector) => embeddings.set(key, vector),
    },
    ...(breakers ? { guard: breakers.embedder } : {}),
  });
  const unguarded = overrides.store ?? (await createChunkStore(config, { embedder, analyzer }));
  const configured = breakers ? guardStore(unguarded, breakers.store, callTimeoutMs) : unguarded;
  // The embedded index holds chunk texts in memory already; a remote store's reads go through the chunk cache.
  const store =
    configured.kind === 'embedded'
      ? configured
      : withChunkCache(configured, cache, { ttlMs: ttls.chunk, onLookup: count('chunk') });
  const resultCache = new ResultCache({
    cache,
    ttlMs: ttls.result,
    // Near-duplicates are compared on dense embeddings when an embedding model is configured, lexically otherwise.
    // Off while queries are redacted: its buckets hold the question texts a near-duplicate is compared with.
    semantic:
      redactionKey(config) !== undefined
        ? undefined
        : createSemanticCache(config, cache, {
            metrics: cacheMetrics,
            requests: metrics.cacheRequests,
            logger,
            embed: embedder ? async (text) => (await embedder.embed([text], 'query'))[0] ?? [] : undefined,
          }),
    requests: metrics.cacheRequests,
  });
  const extractive = new ExtractiveGenerator(analyzer);
  const llm = overrides.generator
    ? undefined
    : openAIGeneratorFromConfig(config, { cache, logger, metrics: createLlmMetrics(metrics.registry) });
  if (llm) {
    // A missing or rejected key or an unknown model stops start-up with a message naming it; an endpoint that is
    // merely down does not, since answers degrade to extractive until it recovers.
    const status = await llm.verify();
    if (!status.ok) logger.warn({ llm: status }, 'LLM endpoint unhealthy at start-up; answers fall back to extractive');
  }
  const chosen = overrides.generator ?? llm ?? extractive;
  // The extractive generator is the fallback itself: nothing to guard.
  const generator = breakers && chosen !== extractive ? guardGenerator(chosen, breakers.llm, callTimeoutMs) : chosen;
  const improvement = createImprovementStores(config, logger);
  // Redis pub/sub when Redis is configured; otherwise only a listener in this process (serve --worker) hears it.
  const tokens = overrides.tokens ?? createTokenChannel(config, logger);
  const deps: ActivityDeps = {
    store,
    cache,
    resultCache,
    generator,
    extractive,
    analyzer,
    metrics,
    logger,
    settings: {
      redactKey: redactionKey(config),
      topK: config.RAGLINE_TOP_K,
      maxQueryChars: config.RAGLINE_MAX_QUERY_CHARS,
      chunkChars: config.RAGLINE_CHUNK_CHARS,
      ingestBatch: config.RAGLINE_INGEST_BATCH,
      ingestDir: path.join(config.RAGLINE_DATA_DIR, 'ingest'),
      maxDocumentBytes: config.RAGLINE_INGEST_MAX_DOCUMENT_BYTES,
      ttls,
      staleTtlMs: config.RAGLINE_CACHE_TTL_STALE_SECONDS * 1000,
      answerSettings: answerSettingsHash(config),
    },
    improvement: {
      queryLog: improvement.queryLog,
      params: improvement.params,
      store,
      analyzer,
      tuned: tunedParams({ store: store.kind, dense: embedder !== undefined, fusion: config.RAGLINE_FUSION }),
      evalOverlayDir: path.join(config.RAGLINE_DATA_DIR, 'eval-overlays'),
    },
    tokens,
    breakers,
    reindex: { store: unguarded, kind: unguarded.kind },
    evaluation: {
      metrics: createEvalMetrics(metrics.registry),
      logger,
      webhookUrl: config.RAGLINE_EVAL_WEBHOOK_URL,
      webhookTimeoutMs: config.RAGLINE_EVAL_WEBHOOK_TIMEOUT_MS,
      overlayDir: path.join(config.RAGLINE_DATA_DIR, 'eval-overlays'),
    },
  };
  return {
    config,
    deps,
    logger,
    breakers,
    async close() {
      await Promise.allSettled([store.close(), cache.close(), improvement.close(), tokens.close(), sharing?.close()]);
    },
  };
}

/** The workflow entry point, as source under tsx and vitest, or compiled under dist/. */
export function workflowsPath(): string {
  const source = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
  return fs.existsSync(source) ? source : fileURLToPath(new URL('../workflows/index.js', import.meta.url));
}

/** Query metrics and the query-log record from the workflow's sink; called once per query, never on replay. */
export function querySinks(
  metrics: Metrics,
  queryLog?: QueryLogWriter,
  options: { redactKey?: string } = {},
): InjectedSinks<RaglineSinks> {
  let answered = 0;
  let hits = 0;
  return {
    queryMetrics: {
      answered: {
        fn(info, outcome) {
          metrics.queries.inc({ cache_hit: outcome.cacheHit ? 'hit' : 'miss', quality_tier: outcome.qualityTier });
          // Wall-clock time since the workflow started, which the workflow's own clock cannot see.
          const latencyMs = Date.now() - info.startTime.getTime();
          metrics.queryDuration.observe({ path: outcome.path }, latencyMs / 1000);
          if (queryLog && outcome.query !== undefined && outcome.cache) {
            queryLog.enqueue({
              queryId: outcome.queryId ?? info.workflowId,
              at: new Date().toISOString(),
              tenant: outcome.tenant,
              question: redactQuery(normalizeQuery(outcome.query), options.redactKey),
              ...(options.redactKey !== undefined ? { redacted: true } : {}),
              cache: outcome.cache,
              cacheHit: outcome.cacheHit,
              sources: outcome.sourceDocIds ?? [],
              qualityScore: outcome.qualityScore,
              degraded: outcome.degraded ?? outcome.path === 'degraded',
              fallbackReason: outcome.fallbackReason,
              latencyMs,
            });
          }
          metrics.retrievalQuality.observe(outcome.qualityScore);
          for (const reason of outcome.degradedReasons ?? (outcome.fallbackReason ? [outcome.fallbackReason] : [])) {
            metrics.fallbacks.inc({ reason });
          }
          if (outcome.rung) metrics.answersByRung.inc({ rung: outcome.rung });
          answered += 1;
          if (outcome.cacheHit) hits += 1;
          metrics.cacheHitRate.set(hits / answered);
        },
        callDuringReplay: false,
      },
    },
  };
}

/** Counts every failed activity attempt by activity and failure type (`rag_activity_failures_total`). */
function countFailures(metrics: Metrics): ActivityInterceptorsFactory {
  return (ctx) => ({
    inbound: {
      async execute(input, next) {
        try {
          return await next(input);
        } catch (error) {
          const type =
            error instanceof ApplicationFailure
              ? (error.type ?? 'Error')
              : error instanceof Error
                ? error.name
                : 'Error';
          metrics.activityFailures.inc({ activity: ctx.info.activityType, type });
          throw error;
        }
      },
    },
  });
}

export interface WorkerParams {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  runtime: Runtime;
  /** Pre-bundled workflow code (tests bundle once per file); otherwise bundled from {@link workflowsPath}. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Tracing interceptors and the workflow-span sink, from `temporalWorkerTracing`. */
  tracing?: { interceptors: WorkerOptions['interceptors']; sinks: object };
  extra?: Partial<WorkerOptions>;
}

export async function createWorker(params: WorkerParams): Promise<Worker> {
  const { runtime } = params;
  return Worker.create({
    connection: params.connection,
    namespace: params.namespace,
    taskQueue: params.taskQueue,
    ...(params.workflowBundle ? { workflowBundle: params.workflowBundle } : { workflowsPath: workflowsPath() }),
    activities: createActivities(runtime.deps),
    interceptors: {
      ...params.tracing?.interceptors,
      // A pre-built bundle carries its workflow interceptors already (bundled with WORKFLOW_INTERCEPTORS_MODULE).
      workflowModules: params.workflowBundle ? undefined : params.tracing?.interceptors?.workflowModules,
      activity: [...(params.tracing?.interceptors?.activity ?? []), countFailures(runtime.deps.metrics)],
    },
    sinks: {
      ...params.tracing?.sinks,
      ...querySinks(runtime.deps.metrics, runtime.deps.improvement.queryLog, {
        redactKey: runtime.deps.settings.redactKey,
      }),
    },
    // When this worker dies, a query's next task waits this long on its sticky queue before any worker gets it,
    // instead of the default 10 s: a killed worker must cost its queries little more than their deadline. 1 s, not
    // 3: `npm run chaos` showed a SIGKILLed worker's query spend 3 s there after its activity had timed out. A live
    // worker too busy to take its sticky task within 1 s loses only that it is replayed elsewhere.
    stickyQueueScheduleToStartTimeout: '1s',
    // Heartbeats reach the server at most this often instead of every 30 s: an ingestion batch's details (chunks
    // embedded) are what `ragline ingest` shows within a batch, and one small RPC every 2 s per batch costs nothing.
    maxHeartbeatThrottleInterval: '2s',
    ...params.extra,
  });
}
