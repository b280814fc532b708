/**
 * The per-tenant retrieval parameters the improvement loop tunes and operators set, with their hard bounds and the
 * auto-apply steps. Pure and dependency-free: the improvement workflow decides with it, activities and the CLI
 * validate with it.
 */

export interface RetrievalParams {
  /** Chunks retrieved per query. */
  topK: number;
  /** BM25 term-frequency saturation. */
  bm25K1: number;
  /** BM25 length normalisation of the body field. */
  bm25B: number;
  /** BM25F weight of a title occurrence against a body occurrence. */
  titleWeight: number;
  /** Similarity a near-duplicate question must reach to be served from the semantic cache. */
  semanticThreshold: number;
  /** Retrieved chunks handed to the generator (the rest are listed as sources but not in the prompt). */
  promptChunks: number;
  /**
   * Weight of the dense leg in weighted hybrid fusion (RAGLINE_FUSION=weighted) and RRF's k (RAGLINE_FUSION=rrf, and
   * Qdrant's hybrid query). They change a ranking only where a dense leg answers (an embedding model is configured);
   * without one they are versioned but inert, and the loop does not tune them.
   */
  fusionWeight?: number;
  rrfK?: number;
}

export type ParamName = keyof RetrievalParams;

export interface ParamBound {
  min: number;
  max: number;
  integer: boolean;
  /** Largest change of this parameter the loop may apply without a person's approval. */
  autoApplyStep: number;
  /** Values the loop's coordinate search and the benchmark's grid try inside the bounds. */
  grid: number[];
}

/** Hard bounds: nothing outside them is ever applied, by the loop or by hand. */
export const PARAM_BOUNDS: Record<ParamName, ParamBound> = {
  topK: { min: 1, max: 20, integer: true, autoApplyStep: 2, grid: [1, 3, 5, 10, 20] },
  bm25K1: { min: 0.1, max: 3, integer: false, autoApplyStep: 0.3, grid: [0.6, 0.9, 1.2, 1.5, 1.8] },
  bm25B: { min: 0, max: 1, integer: false, autoApplyStep: 0.15, grid: [0.3, 0.45, 0.6, 0.75, 0.9, 1] },
  titleWeight: { min: 0, max: 10, integer: false, autoApplyStep: 1, grid: [1, 2, 3, 4] },
  semanticThreshold: { min: 0.5, max: 1, integer: false, autoApplyStep: 0.03, grid: [] },
  promptChunks: { min: 1, max: 20, integer: true, autoApplyStep: 2, grid: [] },
  fusionWeight: { min: 0, max: 1, integer: false, autoApplyStep: 0.2, grid: [0.1, 0.3, 0.5, 0.7, 0.9] },
  rrfK: { min: 1, max: 200, integer: true, autoApplyStep: 20, grid: [10, 20, 40, 60, 100] },
};

/**
 * Parameters the loop tunes on the embedded lexical index: a retrieval-level evaluation measures them. The semantic
 * threshold needs paraphrase pairs and chunks in the prompt needs answer quality, so the loop never proposes them.
 */
export const TUNED_PARAMS: ParamName[] = ['topK', 'bm25K1', 'bm25B', 'titleWeight'];

/** What the serving store lets a parameter change: which parameters a shadow evaluation can measure there. */
export interface RetrievalShape {
  store: 'embedded' | 'qdrant' | string;
  /** Whether a dense leg answers (an embedding model is configured). */
  dense: boolean;
  /** The embedded store's fusion of the two legs (RAGLINE_FUSION). */
  fusion: 'weighted' | 'rrf';
}

/**
 * The parameters worth tuning on this store: Qdrant computes BM25 itself and fuses by RRF, so there only top-k and
 * (with a dense leg) RRF's k change a ranking; the embedded index honours BM25 and the configured fusion's parameter.
 */
export function tunedParams(shape: RetrievalShape): ParamName[] {
  if (shape.store !== 'embedded') return shape.dense ? ['topK', 'rrfK'] : ['topK'];
  if (!shape.dense) return TUNED_PARAMS;
  return [...TUNED_PARAMS, shape.fusion === 'rrf' ? 'rrfK' : 'fusionWeight'];
}

export const DEFAULT_PARAMS: RetrievalParams = {
  topK: 5,
  bm25K1: 1.2,
  bm25B: 0.75,
  titleWeight: 3,
  semanticThreshold: 0.9,
  // Every retrieved chunk, as before parameters were versioned; the prompt's token budget still applies.
  promptChunks: 20,
};

/** A tenant's parameters as applied: version 0 is the configured defaults, never written. */
export interface ParamVersion {
  version: number;
  params: RetrievalParams;
}

/** Why a (partial) parameter set cannot be applied, naming every bad parameter; undefined when it can. */
export function paramsProblem(params: Partial<Record<string, unknown>>): string | undefined {
  const problems: string[] = [];
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined) continue;
    const bound = (PARAM_BOUNDS as Record<string, ParamBound | undefined>)[name];
    if (!bound) {
      problems.push(`unknown parameter ${name} (known: ${Object.keys(PARAM_BOUNDS).join(', ')})`);
      continue;
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) problems.push(`${name} must be a number`);
    else if (bound.integer && !Number.isInteger(value)) problems.push(`${name} must be an integer`);
    else if (value < bound.min || value > bound.max)
      problems.push(`${name}=${value} is outside its bounds [${bound.min}, ${bound.max}]`);
  }
  return problems.length > 0 ? problems.join('; ') : undefined;
}

/** Parameters that differ between two sets, as `name: [from, to]`. */
export function paramChanges(
  from: RetrievalParams,
  to: RetrievalParams,
): Partial<Record<ParamName, [number | undefined, number | undefined]>> {
  const changes: Partial<Record<ParamName, [number | undefined, number | undefined]>> = {};
  for (const name of Object.keys(PARAM_BOUNDS) as ParamName[]) {
    if (from[name] !== to[name]) changes[name] = [from[name], to[name]];
  }
  return changes;
}

/** Whether every change stays within its auto-apply step (scaled by `scale`; 0 makes every change large). */
export function isSmallChange(from: RetrievalParams, to: RetrievalParams, scale = 1): boolean {
  return Object.entries(paramChanges(from, to)).every(([name, [a, b] = [undefined, undefined]]) => {
    if (a === undefined || b === undefined) return false;
    return Math.abs(b - a) <= PARAM_BOUNDS[name as ParamName].autoApplyStep * scale + 1e-9;
  });
}

/**
 * Candidates for one cycle: every grid value of one tuned parameter at a time, the others held (coordinate
 * search). Deterministic, so the workflow can compute it.
 */
export function candidateParams(current: RetrievalParams, tuned: ParamName[] = TUNED_PARAMS): RetrievalParams[] {
  const seen = new Set([paramsKey(current)]);
  const out: RetrievalParams[] = [];
  for (const name of tuned) {
    for (const value of PARAM_BOUNDS[name].grid) {
      const candidate = { ...current, [name]: value };
      const key = paramsKey(candidate);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(candidate);
    }
  }
  return out;
}

export function paramsKey(params: RetrievalParams): string {
  return (Object.keys(PARAM_BOUNDS) as ParamName[]).map((name) => `${name}=${params[name] ?? ''}`).join(',');
}

/** `name a→b, …` for summaries and audit lines. */
export function describeChanges(from: RetrievalParams, to: RetrievalParams): string {
  return Object.entries(paramChanges(from, to))
    .map(([name, [a, b] = [undefined, undefined]]) => `${name} ${a ?? 'unset'}→${b ?? 'unset'}`)
    .join(', ');
}

/** Ends the message of a change refused because another version became current (ParamStore.apply). */
export const SUPERSEDED_REFUSAL = 'is current: refused';
