import { createHash } from 'node:crypto';
import type { Config } from '../config.js';

/**
 * The one place that designs cache keys. Everything that changes an answer is hashed into its key, so an entry can
 * only ever be read back for the exact inputs that produced it; stale entries are never deleted, just never read.
 */

export const CACHE_LEVELS = ['result', 'semantic', 'embedding', 'chunk', 'llm'] as const;
export type CacheLevel = (typeof CACHE_LEVELS)[number];

/**
 * Version of everything about retrieval that is not in the query: chunking, analyser, ranking, prompt template.
 * Bump it with any such change so results computed the old way are no longer served.
 */
export const RETRIEVAL_PARAMS_VERSION = 'r1';

/** What a cached answer depends on besides the question. */
export interface ResultScope {
  tenant: string;
  /** The tenant's corpus version from the ChunkStore; ingestion moves it, which retires every older result. */
  corpusVersion: number;
  topK: number;
  /** `extractive` or the LLM's model name. */
  generatorModel: string;
  /**
   * The tenant's parameter version (lib/improve): applying or rolling back parameters moves it, which retires every
   * answer computed with other parameters. Undefined for version 0 (the configured defaults), whose keys are the
   * keys ragline always had.
   */
  paramsVersion?: number;
  /** Any other answer-affecting option (temperature, context budget, language...). Order of keys does not matter. */
  options?: Record<string, string | number | boolean | null>;
  /**
   * Hash of the deployment's answer-changing settings, from `answerSettingsHash`. Optional only so that scopes
   * recorded in workflow histories before it existed still deserialise.
   */
  settings?: string;
}

export interface EmbeddingKeyInput {
  model: string;
  dimensions: number;
  text: string;
}

export interface ChunkKeyInput {
  tenant: string;
  chunkId: string;
  contentHash: string;
}

export interface LlmKeyInput {
  tenant: string;
  model: string;
  /** The full prompt as sent, system and user messages included. */
  prompt: string;
  temperature: number;
  maxTokens: number;
  /** Any other generation parameter (top_p, seed, response format...). */
  options?: Record<string, string | number | boolean | null>;
}

const sha256 = (parts: unknown[]): string => createHash('sha256').update(JSON.stringify(parts)).digest('hex');

/** Keys are `<level>:<tenant>:<hash>`; a tenant is encoded so that it can never forge another key's structure. */
const tenantPart = (tenant: string): string => encodeURIComponent(tenant);

const sortedEntries = (options: Record<string, unknown> | undefined): [string, unknown][] =>
  Object.entries(options ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/**
 * Folds the spellings of one question together: Unicode compatibility forms, case, runs of whitespace and the
 * sentence punctuation people add or omit at the end ("Reset password?" and "reset  password" share a key).
 * Only sentence punctuation: a trailing "#" or ")" can be meaning ("what is C#" is not "what is C").
 */
export function normalizeQuery(query: string): string {
  return query
    .normalize('NFKC')
    .toLowerCase()
    .replace(/\s+/gu, ' ')
    .trim()
    .replace(/[\s?!.,;:…。？！、]+$/u, '');
}

function scopeParts(scope: ResultScope): unknown[] {
  const parts: unknown[] = [
    scope.paramsVersion === undefined
      ? RETRIEVAL_PARAMS_VERSION
      : `${RETRIEVAL_PARAMS_VERSION}.p${scope.paramsVersion}`,
    scope.corpusVersion,
    scope.topK,
    scope.generatorModel,
    sortedEntries(scope.options),
  ];
  // Appended only when present, so keys of scopes without it are unchanged.
  if (scope.settings !== undefined) parts.push(scope.settings);
  return parts;
}

const DEFAULT_OPENAI_BASE_URL = 'https://api.openai.com/v1';

/**
 * Every setting that changes what an answer says for one question, corpus and model. Secrets are not in it (a
 * rotated key answers the same); neither are settings the corpus version already covers (chunk size acts only
 * through ingestion, which moves the version) nor ones that change only how fast an answer comes (timeouts).
 */
export function answerSettings(config: Config): Record<string, string | number | boolean | null> {
  const llm = Boolean(config.OPENAI_API_KEY || config.OPENAI_BASE_URL);
  return {
    llm,
    // The same model name on another endpoint may be another model; trailing slashes are one endpoint.
    baseURL: llm ? (config.OPENAI_BASE_URL ?? DEFAULT_OPENAI_BASE_URL).replace(/\/+$/, '') : null,
    model: config.OPENAI_MODEL,
    temperature: config.OPENAI_TEMPERATURE,
    maxTokens: config.OPENAI_MAX_TOKENS,
    contextTokens: config.RAGLINE_CONTEXT_TOKENS,
    // Dense retrieval changes which chunks are found, so the answer too.
    embeddingModel: config.OPENAI_EMBEDDING_MODEL ?? null,
    embeddingDimensions: config.OPENAI_EMBEDDING_MODEL ? config.OPENAI_EMBEDDING_DIMENSIONS : null,
    // Two stores (or two collections) can sit at the same corpus version with different documents.
    store: config.QDRANT_URL
      ? `qdrant:${config.QDRANT_URL}/${config.QDRANT_COLLECTION}`
      : `embedded:${config.RAGLINE_DATA_DIR}`,
  };
}

/** Short hash of `answerSettings`, for `ResultScope.settings`. */
export function answerSettingsHash(config: Config): string {
  return sha256(sortedEntries(answerSettings(config))).slice(0, 16);
}

export function resultKey(scope: ResultScope, query: string): string {
  return `result:${tenantPart(scope.tenant)}:${sha256([...scopeParts(scope), normalizeQuery(query)])}`;
}

/**
 * The last good answer to a question, kept past corpus changes: it is served, flagged stale, only when the store
 * is down and nothing current can be computed. Same tenant, parameters and model; any corpus version.
 */
export function staleKey(scope: Omit<ResultScope, 'corpusVersion'>, query: string): string {
  const parts = [RETRIEVAL_PARAMS_VERSION, scope.topK, scope.generatorModel, sortedEntries(scope.options)];
  return `stale:${tenantPart(scope.tenant)}:${sha256([...parts, normalizeQuery(query)])}`;
}

/** The bucket of recent questions a near-duplicate may be served from: same tenant, corpus and parameters. */
export function semanticBucketKey(scope: ResultScope): string {
  return `semantic:${tenantPart(scope.tenant)}:${sha256(scopeParts(scope))}`;
}

/** Not tenant-scoped: an embedding depends only on the model and the text, so tenants share them. */
export function embeddingKey(input: EmbeddingKeyInput): string {
  return `embedding:${sha256([input.model, input.dimensions, input.text])}`;
}

export function chunkKey(input: ChunkKeyInput): string {
  return `chunk:${tenantPart(input.tenant)}:${sha256([input.chunkId, input.contentHash])}`;
}

/** Carries the tenant although the prompt holds the tenant's chunks: two tenants' identical prompts stay apart anyway. */
export function llmKey(input: LlmKeyInput): string {
  return `llm:${tenantPart(input.tenant)}:${sha256([
    input.model,
    input.prompt,
    input.temperature,
    input.maxTokens,
    sortedEntries(input.options),
  ])}`;
}

/** Tag of every result that cited a document: invalidating it drops those results when the document changes. */
export function docTag(tenant: string, docId: string): string {
  return `doc:${tenantPart(tenant)}:${sha256([docId])}`;
}

/**
 * Tag of every stale answer (the store-down rung) that cited a document. Separate from {@link docTag}: a changed
 * document leaves the last good answer servable, flagged stale, but a deleted one must never be served again.
 */
export function staleDocTag(tenant: string, docId: string): string {
  return `stale-doc:${tenantPart(tenant)}:${sha256([docId])}`;
}

/** The level a key belongs to, for metrics; undefined for keys this module did not build. */
export function levelOf(key: string): CacheLevel | undefined {
  const level = key.slice(0, key.indexOf(':'));
  return (CACHE_LEVELS as readonly string[]).includes(level) ? (level as CacheLevel) : undefined;
}

export type CacheTtls = Record<CacheLevel, number>;

/** TTL of each level in milliseconds; the semantic bucket lives as long as the results it points to. */
export function cacheTtls(config: Config): CacheTtls {
  return {
    result: config.RAGLINE_CACHE_TTL_RESULT_SECONDS * 1000,
    semantic: config.RAGLINE_CACHE_TTL_RESULT_SECONDS * 1000,
    embedding: config.RAGLINE_CACHE_TTL_EMBEDDING_SECONDS * 1000,
    chunk: config.RAGLINE_CACHE_TTL_CHUNK_SECONDS * 1000,
    llm: config.RAGLINE_CACHE_TTL_LLM_SECONDS * 1000,
  };
}
