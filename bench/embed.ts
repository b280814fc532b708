/**
 * Fills the on-disk embedding cache for a BEIR dataset (documents and queries) so later `retrieval` runs with the
 * same embedder options pay nothing:
 *
 *   npm run bench -- embed --embedder-url http://127.0.0.1:8000/v1 --embedding-model e5-small [--dataset DIR]
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { documentEmbeddingText } from '../lib/retrieval/embedder.js';
import { embedAll, embedderFromArgs, embedderOptions } from './embeddings.js';
import { loadDataset } from './datasets/beir.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      dataset: { type: 'string', default: path.join(projectRoot, '..', 'shared', 'datasets', 'scifact') },
      ...embedderOptions,
    },
  });
  const embedder = embedderFromArgs(values);
  if (!embedder) throw new Error('embed needs --embedder-url and --embedding-model');
  const dataset = await loadDataset(path.resolve(projectRoot, values.dataset));
  const started = performance.now();
  await embedAll(embedder, [...dataset.queries.values()], 'query', 'queries');
  const queriesSeconds = (performance.now() - started) / 1000;
  await embedAll(
    embedder,
    dataset.corpus.map((doc) => documentEmbeddingText(doc.title ?? '', doc.text)),
    'document',
    'documents',
  );
  const seconds = (performance.now() - started) / 1000;
  console.log(
    JSON.stringify({
      documents: dataset.corpus.length,
      queries: dataset.queries.size,
      queriesSeconds: Number(queriesSeconds.toFixed(1)),
      totalSeconds: Number(seconds.toFixed(1)),
    }),
  );
}
