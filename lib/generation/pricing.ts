/** USD per million tokens, as RAGLINE_LLM_PRICES gives them. */
export interface ModelPrice {
  input: number;
  output: number;
}

export type PriceTable = Record<string, ModelPrice>;

/**
 * The price of a model: an exact entry first, otherwise the longest entry the name starts with, because endpoints
 * report dated snapshots (`gpt-4o-mini-2024-07-18`) of the names operators configure (`gpt-4o-mini`).
 */
export function priceFor(prices: PriceTable, ...models: Array<string | undefined>): ModelPrice | undefined {
  for (const model of models) {
    if (model && Object.hasOwn(prices, model)) return prices[model];
  }
  for (const model of models) {
    if (!model) continue;
    const prefix = Object.keys(prices)
      .filter((name) => model.startsWith(name))
      .sort((a, b) => b.length - a.length)[0];
    if (prefix !== undefined) return prices[prefix];
  }
  return undefined;
}

/** Estimated cost in USD; 0 for a model the table does not price (a local model, say). */
export function estimateCostUsd(price: ModelPrice | undefined, promptTokens: number, completionTokens: number): number {
  if (!price) return 0;
  // Rounded to a billionth of a dollar so sums of many requests don't print float noise.
  return Math.round(((promptTokens * price.input + completionTokens * price.output) / 1_000_000) * 1e9) / 1e9;
}
