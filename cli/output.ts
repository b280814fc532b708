import { Presets, SingleBar } from 'cli-progress';
import type { IngestDocumentsResult } from '../contracts/ingest.js';
import type { ReindexEmbeddingsResult, ReindexProgress } from '../contracts/reindex.js';
import type { IngestProgressReport } from '../client/ragline-client.js';

/** `--json`: the whole value, indented, on stdout. */
export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}

/** The one line a failed command prints before it exits: the first line of the message. */
export function printError(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  console.error(`ragline: ${message.split('\n')[0]}`);
}

/** Columns padded to their widest cell: the first left-aligned, the rest right-aligned. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '))
    .join('\n');
}

/** A progress bar on stderr when it is a terminal; none when output goes to a file or a pipe. */
export function terminalBar(format: string): SingleBar | undefined {
  return process.stderr.isTTY ? new SingleBar({ format, stream: process.stderr }, Presets.shades_classic) : undefined;
}

/**
 * A progress bar over documents that also moves within a batch as its chunks are embedded (the slow part with an
 * embedder), with cli-progress's ETA from the rate so far.
 */
export async function withProgressBar(
  run: (onProgress: (progress: IngestProgressReport) => void) => Promise<IngestDocumentsResult>,
): Promise<IngestDocumentsResult> {
  if (!process.stderr.isTTY) return run(() => undefined);
  const bar = new SingleBar(
    {
      format:
        'ingesting [{bar}] {percentage}% | {documents}/{total} documents | {chunks} | {added} added {updated} updated | ETA {eta_formatted}',
      stream: process.stderr,
      etaBuffer: 20,
    },
    Presets.shades_classic,
  );
  bar.start(1, 0, { documents: 0, chunks: '', added: 0, updated: 0 });
  try {
    const result = await run((p) => {
      const batch = p.batch;
      // The batch in flight counts as far as its chunks are embedded.
      const inBatch = batch && batch.chunksTotal > 0 ? (batch.documents * batch.chunksEmbedded) / batch.chunksTotal : 0;
      bar.setTotal(Math.max(p.documentsTotal, 1));
      bar.update(Math.min(p.documentsDone + inBatch, p.documentsTotal), {
        documents: p.documentsDone,
        chunks: batch ? `${batch.chunksEmbedded}/${batch.chunksTotal} chunks embedded in this batch` : '',
        added: p.added,
        updated: p.updated,
      });
    });
    bar.update(Math.max(result.documentsTotal, 1), {
      documents: result.documentsTotal,
      chunks: '',
      added: result.added,
      updated: result.updated,
    });
    return result;
  } finally {
    bar.stop();
  }
}

export async function withReindexBar(
  run: (onProgress: (progress: ReindexProgress) => void) => Promise<ReindexEmbeddingsResult>,
): Promise<ReindexEmbeddingsResult> {
  if (!process.stderr.isTTY) return run(() => undefined);
  // The ETA is the workflow's (the rate since the reindex started, which may predate this command), not the bar's.
  const bar = new SingleBar(
    {
      format: 're-embedding [{bar}] {percentage}% | {value}/{total} chunks | {phase} | ETA {eta_left}',
      stream: process.stderr,
    },
    Presets.shades_classic,
  );
  bar.start(1, 0, { phase: 'starting', eta_left: '…' });
  try {
    const result = await run((p) => {
      bar.setTotal(Math.max(p.chunksTotal, 1));
      bar.update(p.chunksDone, { phase: p.phase, eta_left: p.etaSeconds === undefined ? '…' : `${p.etaSeconds}s` });
    });
    bar.update(Math.max(result.chunksTotal, 1), { phase: result.phase, eta_left: '0s' });
    return result;
  } finally {
    bar.stop();
  }
}

export function printIngest(result: IngestDocumentsResult): void {
  console.log(
    `ingested ${result.documentsDone} documents from ${result.files} files into tenant ${result.tenant}: ` +
      `${result.added} added, ${result.updated} updated, ${result.unchanged} unchanged, ${result.rejected} rejected ` +
      `(corpus version ${result.corpusVersion})`,
  );
  for (const p of result.problems) console.error(`  rejected ${p.source}: ${p.reason}`);
}
