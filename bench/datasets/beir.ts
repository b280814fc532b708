/**
 * A BEIR dataset on disk (SciFact by default: `../shared/datasets/scifact`): `corpus.jsonl[.gz]`, every
 * `queries*.jsonl[.gz]` and `qrels/test.tsv`. One chunk per BEIR document (title + text), which is how BEIR numbers
 * are reported; ragline's chunker would split long abstracts and change what is being compared.
 */
import { createReadStream, existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import type { DocumentChunks } from '../../lib/domain.js';
import type { Qrels } from '../../lib/retrieval/ir-metrics.js';

export interface BeirDoc {
  _id: string;
  title?: string;
  text: string;
}

export interface Dataset {
  corpus: BeirDoc[];
  queries: Map<string, string>;
  qrels: Qrels;
}

async function* lines(file: string): AsyncGenerator<string> {
  const input = file.endsWith('.gz') ? createReadStream(file).pipe(createGunzip()) : createReadStream(file);
  for await (const line of createInterface({ input, crlfDelay: Infinity })) if (line.trim() !== '') yield line;
}

export async function loadDataset(dir: string): Promise<Dataset> {
  const corpusFile = ['corpus.jsonl', 'corpus.jsonl.gz'].map((name) => path.join(dir, name)).find(existsSync);
  if (!corpusFile) throw new Error(`${dir} has no corpus.jsonl or corpus.jsonl.gz`);
  const corpus: BeirDoc[] = [];
  for await (const line of lines(corpusFile)) corpus.push(JSON.parse(line) as BeirDoc);
  const queries = new Map<string, string>();
  for (const name of (await readdir(dir)).filter((file) => /^queries.*\.jsonl(\.gz)?$/.test(file))) {
    for await (const line of lines(path.join(dir, name))) {
      const query = JSON.parse(line) as { _id: string; text: string };
      queries.set(query._id, query.text);
    }
  }
  const qrels: Qrels = new Map();
  const rows = (await readFile(path.join(dir, 'qrels', 'test.tsv'), 'utf8')).split('\n').slice(1);
  for (const row of rows) {
    const [queryId, docId, score] = row.trim().split('\t');
    if (!queryId || !docId || score === undefined) continue;
    if (!qrels.has(queryId)) qrels.set(queryId, new Map());
    qrels.get(queryId)!.set(docId, Number(score));
  }
  return { corpus, queries, qrels };
}

/** A BEIR document as ragline ingests it: one document of one chunk. */
export function toDocument(doc: BeirDoc): DocumentChunks {
  const title = doc.title ?? '';
  return {
    docId: doc._id,
    title,
    contentHash: `${title.length}:${doc.text.length}`,
    chunks: [{ id: `${doc._id}#0`, docId: doc._id, title, text: doc.text, position: 0 }],
  };
}
