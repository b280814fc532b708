/**
 * The semantic cache's dense threshold, measured on test/fixtures/semantic-pairs.json: the cosine similarity of
 * every must-hit paraphrase pair and every must-not-hit pair the guard lets through (so only the threshold can
 * separate them), for the configured embedder in query mode.
 *
 *   npm run bench -- semantic --embedder-url URL --embedding-model NAME
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { analyzeQuestion, guardRefusal } from '../lib/cache/semantic-text.js';
import { normalised } from '../lib/retrieval/dense-index.js';
import { embedderFromArgs, embedderOptions } from './embeddings.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Fixture {
  mustHit: [string, string][];
  mustNotHit: { pair: [string, string]; reason: string }[];
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: embedderOptions });
  const embedder = embedderFromArgs(values);
  if (!embedder) throw new Error('semantic needs --embedder-url and --embedding-model');
  const fixture = JSON.parse(
    readFileSync(path.join(projectRoot, 'test', 'fixtures', 'semantic-pairs.json'), 'utf8'),
  ) as Fixture;
  const cosine = async ([a, b]: [string, string]) => {
    const [x, y] = (await embedder.embed([a, b], 'query')).map(normalised);
    return x!.reduce((sum, value, i) => sum + value * y![i]!, 0);
  };
  const hits = await Promise.all(fixture.mustHit.map(cosine));
  const unguarded = fixture.mustNotHit.filter(
    ({ pair }) => guardRefusal(analyzeQuestion(pair[0]), analyzeQuestion(pair[1])) === undefined,
  );
  const misses = await Promise.all(unguarded.map(({ pair }) => cosine(pair)));
  const rows = [];
  for (let threshold = 0.8; threshold <= 0.991; threshold += 0.01) {
    rows.push({
      threshold: Number(threshold.toFixed(2)),
      paraphrasesServed: hits.filter((s) => s >= threshold).length,
      wrongServed: misses.filter((s) => s >= threshold).length,
    });
  }
  for (const row of rows) console.log(JSON.stringify(row));
  console.log(
    JSON.stringify({
      mustHit: hits.length,
      mustNotHitPastGuard: misses.length,
      lowestParaphrase: Math.min(...hits).toFixed(4),
      highestWrong: Math.max(...misses).toFixed(4),
    }),
  );
}
