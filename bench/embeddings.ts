/**
 * The embedder a dense or hybrid bench uses, from `--embedder-url URL --embedding-model NAME` and the mode options,
 * always through the on-disk embedding cache so a corpus is embedded once per machine.
 */
import type { ParseArgsConfig } from 'node:util';
import { DiskEmbeddingCache } from '../lib/retrieval/disk-embedding-cache.js';
import type { EmbeddingMode } from '../lib/retrieval/embedder.js';
import { OpenAIEmbedder } from '../lib/retrieval/openai-embedder.js';

export const embedderOptions = {
  'embedder-url': { type: 'string' },
  'embedding-model': { type: 'string' },
  'embedding-dimensions': { type: 'string', default: '384' },
  'query-model': { type: 'string' },
  'document-model': { type: 'string' },
  'query-input-type': { type: 'string', default: 'query' },
  'document-input-type': { type: 'string', default: 'passage' },
  'query-prefix': { type: 'string' },
  'document-prefix': { type: 'string' },
  'embedding-cache-dir': { type: 'string' },
  'embed-batch': { type: 'string', default: '32' },
} as const satisfies ParseArgsConfig['options'];

type Values = { [K in keyof typeof embedderOptions]?: string };

function mode(model: string | undefined, inputType: string | undefined, prefix: string | undefined): EmbeddingMode {
  return {
    ...(model ? { model } : {}),
    ...(inputType ? { inputType } : {}),
    ...(prefix ? { prefix } : {}),
  };
}

/** The configured embedder, or undefined without `--embedder-url`. */
export function embedderFromArgs(values: Values, { cache = true } = {}): OpenAIEmbedder | undefined {
  if (!values['embedder-url']) return undefined;
  if (!values['embedding-model']) throw new Error('--embedder-url needs --embedding-model');
  return new OpenAIEmbedder(
    {
      model: values['embedding-model'],
      dimensions: Number(values['embedding-dimensions']),
      baseURL: values['embedder-url'],
      apiKey: 'unused',
      timeoutMs: 600_000,
      batchSize: Number(values['embed-batch']),
      sendDimensions: false,
      queryMode: mode(values['query-model'], values['query-input-type'], values['query-prefix']),
      documentMode: mode(values['document-model'], values['document-input-type'], values['document-prefix']),
    },
    cache ? { cache: new DiskEmbeddingCache(values['embedding-cache-dir']) } : {},
  );
}

/** Embeds `texts` in slices so a long first run shows progress and keeps what it finished if stopped. */
export async function embedAll(
  embedder: OpenAIEmbedder,
  texts: string[],
  purpose: 'query' | 'document',
  label: string,
  slice = 32,
): Promise<number[][]> {
  const vectors: number[][] = [];
  const started = performance.now();
  for (let start = 0; start < texts.length; start += slice) {
    vectors.push(...(await embedder.embed(texts.slice(start, start + slice), purpose)));
    if (texts.length > slice) {
      const seconds = (performance.now() - started) / 1000;
      process.stderr.write(`${label}: ${vectors.length}/${texts.length} embedded (${seconds.toFixed(0)} s)\n`);
    }
  }
  return vectors;
}
