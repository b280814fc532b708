import { createHash } from 'node:crypto';
import type { Chunk } from '../../domain.js';
import type { Analyzer } from '../analyzer.js';

/**
 * How QdrantStore lays out its points: the named vectors, the payloads of its three kinds of point, the filter
 * conditions it builds, point ids, and the sparse BM25 vectors of documents and queries.
 */

export const SPARSE = 'bm25';
export const DENSE = 'dense';
const K1 = 1.2;
const B = 0.75;
/** Same BM25F title weight as the embedded index (README.md). */
const TITLE_WEIGHT = 3;

export interface ChunkPayload {
  kind: 'chunk';
  tenant: string;
  docId: string;
  chunkId: string;
  title: string;
  docTitle: string;
  text: string;
  position: number;
  contentHash: string;
}

export interface MetaPayload {
  kind: 'meta';
  tenant: string;
  corpusVersion: number;
}

export interface VersionPayload {
  kind: 'version';
  tenant: string;
}

export type Condition = { key: string; match: { value: string | number } | { any: string[] } };

export const match = (key: string, value: string | number): Condition => ({ key, match: { value } });
export const matchAny = (key: string, values: string[]): Condition => ({ key, match: { any: values } });

/** Point ids must be UUIDs or integers; a name-based id makes re-upserting a chunk overwrite it. */
export function pointId(...parts: string[]): string {
  const hex = createHash('sha256').update(parts.join('\u0000')).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** FNV-1a, 32 bits: a stable term → sparse index mapping; collisions only merge two rare terms' weights. */
function termIndex(term: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < term.length; i++) {
    hash ^= term.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * Document side: BM25F term weights (title terms count TITLE_WEIGHT times) with the document-length saturation
 * against an assumed average length; Qdrant multiplies by idf (`modifier: 'idf'`).
 */
export function documentSparse(
  analyzer: Analyzer,
  chunk: Chunk,
  averageLength: number,
): { indices: number[]; values: number[] } {
  const weights = new Map<number, number>();
  const title = analyzer.analyze(chunk.title);
  const body = analyzer.analyze(chunk.text);
  for (const term of title) weights.set(termIndex(term), (weights.get(termIndex(term)) ?? 0) + TITLE_WEIGHT);
  for (const term of body) weights.set(termIndex(term), (weights.get(termIndex(term)) ?? 0) + 1);
  const norm = 1 - B + (B * (title.length + body.length)) / averageLength;
  const indices = [...weights.keys()];
  return {
    indices,
    values: indices.map((index) => (weights.get(index)! * (K1 + 1)) / (weights.get(index)! + K1 * norm)),
  };
}

/** Query side: each distinct term once; Qdrant multiplies by idf. */
export function querySparse(terms: string[]): { indices: number[]; values: number[] } {
  const weights = new Map<number, number>();
  for (const term of terms) weights.set(termIndex(term), 1);
  return { indices: [...weights.keys()], values: [...weights.values()] };
}
