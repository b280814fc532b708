/**
 * Follow-up questions on the sample corpus (sample-corpus/follow-ups.jsonl: an earlier question, the follow-up as a
 * person types it, the standalone question a person would write, and the documents that answer it): retrieval
 * nDCG@10 on the embedded defaults (lexical EmbeddedStore, chunked as `ragline ingest` does) for the follow-up as
 * sent (last turn only), rewritten by the model-free `standaloneQuestion`, and asked standalone.
 *
 *   npm run bench -- follow-ups
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { standaloneQuestion } from '../lib/conversation/standalone-question.js';
import { EmbeddedStore } from '../lib/retrieval/embedded-store.js';
import { evaluate, type Qrels, type Run } from '../lib/retrieval/ir-metrics.js';
import { sampleDocuments } from './sample.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface FollowUp {
  id: string;
  history: string[];
  followUp: string;
  standalone: string;
  relevant: string[];
}

export async function run(): Promise<void> {
  const items = readFileSync(path.join(projectRoot, 'sample-corpus', 'follow-ups.jsonl'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as FollowUp);
  const dir = await mkdtemp(path.join(tmpdir(), 'ragline-follow-ups-'));
  const store = await EmbeddedStore.open(dir, {});
  try {
    await store.upsertDocuments('default', await sampleDocuments());
    const qrels: Qrels = new Map(items.map((q) => [q.id, new Map(q.relevant.map((doc, i) => [doc, i === 0 ? 2 : 1]))]));
    const figure = async (questionOf: (item: FollowUp) => string) => {
      const run: Run = new Map();
      for (const item of items) {
        const response = await store.search('default', { query: questionOf(item), topK: 20 });
        const best = new Map<string, number>();
        for (const hit of response.hits) best.set(hit.docId, Math.max(best.get(hit.docId) ?? -Infinity, hit.score));
        run.set(item.id, best);
      }
      return Number(evaluate(qrels, run, 10).mean.ndcg.toFixed(4));
    };
    const rewrite = (item: FollowUp) => standaloneQuestion([...item.history, item.followUp]);
    const figures = {
      followUps: items.length,
      rewrittenCount: items.filter((item) => rewrite(item).rewritten).length,
      ndcg10LastTurn: await figure((item) => item.followUp),
      ndcg10Rewritten: await figure((item) => rewrite(item).question),
      ndcg10Standalone: await figure((item) => item.standalone),
    };
    console.log(
      `${figures.followUps} follow-ups (${figures.rewrittenCount} rewritten): nDCG@10 last turn only ` +
        `${figures.ndcg10LastTurn}, rewritten (model-free) ${figures.ndcg10Rewritten}, standalone ` +
        `${figures.ndcg10Standalone}; rewritten/standalone ${(figures.ndcg10Rewritten / figures.ndcg10Standalone).toFixed(3)}`,
    );
    console.log(JSON.stringify(figures));
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}
