/**
 * The query workflow's fixed time budgets. In `lib/` because configuration validates deadlines against them; the
 * query contract (`contracts/query.ts`) re-exports them for workflows and clients.
 */

/** Start-to-close timeout of the query's local activities (cache lookup, cache write, extractive answer). */
export const LOCAL_STEP_TIMEOUT_MS = 2000;
/** Kept back from the deadline for the fallback after a failed step, so the fallback still fits in it. */
export const FALLBACK_BUDGET_MS = 2000;
/** Shortest deadline that leaves room for the cache lookup and a fallback. */
export const MIN_DEADLINE_MS = LOCAL_STEP_TIMEOUT_MS + FALLBACK_BUDGET_MS;
