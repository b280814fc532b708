import type { SearchRequest, SearchResponse } from '../../domain.js';
import type { Analyzer } from '../analyzer.js';
import { vectorProblem } from '../dense-index.js';
import type { Embedder } from '../embedder.js';
import { fuseHybrid, type FusionParams } from '../fusion.js';
import type { Bm25Params, FeedbackParams } from '../lexical-index.js';
import { chunkById, denseUsable, type Tenant } from './tenant.js';

/**
 * One search of a tenant: the lexical leg alone without an embedder, otherwise both legs fused. If the query cannot
 * be embedded, or the tenant's vectors are not the configured embedder's, it answers lexically and says so in
 * `degradedReason`.
 */

export interface SearchSettings {
  analyzer: Analyzer;
  embedder: Embedder | undefined;
  bm25: Bm25Params;
  feedback: FeedbackParams;
  fusion: FusionParams;
}

/** Searches `tenant` (undefined: nothing was ever stored for it). */
export async function searchTenant(
  tenant: Tenant | undefined,
  request: SearchRequest,
  settings: SearchSettings,
): Promise<SearchResponse> {
  const { analyzer, embedder } = settings;
  const hasTerms = analyzer.analyze(request.query).length > 0;
  if (!hasTerms && !embedder) return { hits: [], reason: 'no-terms' };
  if (!tenant || tenant.index.chunkCount === 0) return { hits: [], reason: hasTerms ? 'empty-corpus' : 'no-terms' };
  const feedback = settings.feedback.docs > 0 ? settings.feedback : undefined;
  const topK = Math.max(0, Math.floor(request.topK));
  const bm25 = request.bm25 ? { ...settings.bm25, ...definedOnly(request.bm25) } : settings.bm25;
  const lexical = (depth: number) =>
    hasTerms
      ? tenant.index.search(request.query, depth, feedback, bm25).map(({ slot, score }) => ({
          id: tenant.index.chunk(slot)!.id,
          score,
        }))
      : [];
  const respond = (ranked: { id: string; score: number }[], degradedReason?: SearchResponse['degradedReason']) => {
    const hits = ranked.flatMap(({ id, score }) => {
      const chunk = chunkById(tenant, id);
      return chunk ? [{ chunkId: chunk.id, docId: chunk.docId, title: chunk.title, text: chunk.text, score }] : [];
    });
    const response: SearchResponse = { hits };
    if (degradedReason) response.degradedReason = degradedReason;
    if (!hasTerms && hits.length === 0) response.reason = 'no-terms';
    return response;
  };
  if (!embedder) return respond(lexical(topK));
  if (!denseUsable(tenant, embedder)) return respond(lexical(topK), 'embedding-mismatch');
  let vector: number[] | undefined;
  try {
    [vector] = await embedder.embed([request.query], 'query');
  } catch {
    // The lexical leg alone still answers; the flag lets callers and metrics see the degradation.
    return respond(lexical(topK), 'embedder-unavailable');
  }
  if (!vector || vectorProblem(vector, tenant.dense!.dimensions) !== undefined) {
    return respond(lexical(topK), 'embedder-unavailable');
  }
  const fusion = request.fusion ? { ...settings.fusion, ...definedOnly(request.fusion) } : settings.fusion;
  const depth = Math.max(topK, fusion.depth);
  const dense = tenant.dense!.search(vector, depth);
  return respond(fuseHybrid(lexical(depth), dense, fusion, topK));
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
