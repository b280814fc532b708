import path from 'node:path';
import { z } from 'zod';

/**
 * ragline's whole configuration, read once from the environment at the composition root and passed down.
 * Every variable is listed with its default in `.env.example`.
 */
const bool = (fallback: boolean) => z.stringbool().default(fallback);
const int = (fallback: number, min = 0) => z.coerce.number().int().min(min).default(fallback);
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

export const configSchema = z.object({
  /** Folder for the SQLite file of the embedded Temporal server, the lexical index and other state. @default .data */
  RAGLINE_DATA_DIR: z.string().default('.data'),
  /** Tenant used when a query or ingestion names none. @default default */
  RAGLINE_DEFAULT_TENANT: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/i)
    .default('default'),
  /** Folder ingested by `ragline up` when the index is empty. @default sample-corpus/docs */
  RAGLINE_SAMPLE_CORPUS: z.string().default('sample-corpus/docs'),
  /** Longest query accepted, in characters. @default 4000 */
  RAGLINE_MAX_QUERY_CHARS: int(4000, 1),
  /** Chunks retrieved per query. @default 5 */
  RAGLINE_TOP_K: int(5, 1),
  /** Target chunk size, in characters. @default 800 */
  RAGLINE_CHUNK_CHARS: int(800, 100),
  /** Documents per ingestion activity. @default 200 */
  RAGLINE_INGEST_BATCH: int(200, 1),

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
  /** Serve near-duplicate questions from the semantic cache. @default true */
  RAGLINE_SEMANTIC_CACHE: bool(true),
  /** Similarity a near-duplicate must reach to be served. @default 0.9 */
  RAGLINE_SEMANTIC_THRESHOLD: z.coerce.number().min(0).max(1).default(0.9),
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

  /** Port of /metrics, /healthz and /readyz on the worker. @default 9464 */
  RAGLINE_METRICS_PORT: int(9464, 0),
  /** Port of the HTTP API. @default 8080 */
  RAGLINE_HTTP_PORT: int(8080, 0),
  /** OTLP/HTTP endpoint for traces; unset exports none. @default unset */
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalString,
  /** @default ragline */
  OTEL_SERVICE_NAME: z.string().default('ragline'),
  /** @default info */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Replace query text in logs with its hash. @default false */
  RAGLINE_LOG_REDACT_QUERIES: bool(false),
});

export type Config = z.output<typeof configSchema>;

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
  return { ...parsed.data, RAGLINE_DATA_DIR: path.resolve(parsed.data.RAGLINE_DATA_DIR) };
}
