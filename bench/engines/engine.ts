import type { BeirDoc } from '../datasets/beir.js';

/** One retrieval engine under measurement, built over a BEIR corpus in this process (or, for Qdrant, over HTTP). */
export interface Engine {
  name: string;
  build(corpus: BeirDoc[]): Promise<void>;
  /** document id → score, best `k` */
  search(query: string, k: number): Promise<Map<string, number>>;
  dispose(): Promise<void>;
}
