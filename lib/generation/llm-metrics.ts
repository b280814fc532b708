import { Counter, type Registry } from 'prom-client';

/** Token, cost and request counters of the LLM adapter, on the composition root's registry. */
export function createLlmMetrics(registry: Registry) {
  const registers = [registry];
  return {
    tokens: new Counter({
      name: 'rag_llm_tokens_total',
      help: 'Tokens billed by the LLM endpoint, by model and kind (prompt, completion)',
      labelNames: ['model', 'kind'] as const,
      registers,
    }),
    cost: new Counter({
      name: 'rag_llm_cost_usd_total',
      help: 'Estimated LLM spend in USD from RAGLINE_LLM_PRICES, by model',
      labelNames: ['model'] as const,
      registers,
    }),
    requests: new Counter({
      name: 'rag_llm_requests_total',
      help: 'LLM generations by model and outcome (ok, cached, or the failure type)',
      labelNames: ['model', 'outcome'] as const,
      registers,
    }),
  };
}

export type LlmMetrics = ReturnType<typeof createLlmMetrics>;
