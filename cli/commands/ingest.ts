import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { ErrorType, RaglineError } from '../../lib/errors.js';
import type { ReindexEmbeddingsResult, ReindexProgress } from '../../contracts/reindex.js';
import { EXIT, positiveInt, type CliContext } from '../context.js';
import { printIngest, printJson, withProgressBar, withReindexBar } from '../output.js';

/** `ragline ingest` and `ragline reindex --embeddings`: building a tenant's index, and re-embedding it. */
export function registerIngestCommands(program: Command, context: CliContext): void {
  program
    .command('ingest')
    .description('ingest files or directories (Markdown, text, BEIR JSONL, gzipped or not)')
    .argument('<paths...>')
    .option('--tenant <tenant>', 'tenant whose corpus receives the documents')
    .option('--json', 'print the summary as JSON')
    .action(async (paths: string[], options: { tenant?: string; json?: boolean }) => {
      const missing = paths.filter((p) => !fs.existsSync(p));
      if (missing.length > 0)
        throw new RaglineError(ErrorType.InvalidInput, `no such file or directory: ${missing.join(', ')}`);
      const config = context.loadConfig();
      const client = await context.connectWithWorker(config);
      const absolute = paths.map((p) => path.resolve(p));
      const tenant = options.tenant ?? config.RAGLINE_DEFAULT_TENANT;
      const result = options.json
        ? await client.ingest(absolute, { tenant })
        : await withProgressBar((onProgress) => client.ingest(absolute, { tenant, onProgress }));
      await client.close();
      if (options.json) printJson(result);
      else printIngest(result);
      if (result.rejected > 0) process.exitCode = EXIT.partial;
    });

  program
    .command('reindex')
    .description(
      "re-embed a tenant's corpus with the configured embedding model, in the background (queries keep answering)",
    )
    .option('--embeddings', 'compute new vectors for every chunk and switch to them in one step when all are ready')
    .option('--tenant <tenant>', 'tenant to re-embed')
    .option('--batch-chunks <n>', 'chunks embedded per batch activity', positiveInt)
    .option('--json', 'print the result as JSON')
    .action(async (options: { embeddings?: boolean; tenant?: string; batchChunks?: number; json?: boolean }) => {
      if (!options.embeddings) {
        throw new RaglineError(ErrorType.InvalidInput, 'say what to rebuild: `ragline reindex --embeddings`');
      }
      const config = context.loadConfig();
      const client = await context.connectWithWorker(config);
      const tenant = options.tenant ?? config.RAGLINE_DEFAULT_TENANT;
      const run = (onProgress?: (progress: ReindexProgress) => void) =>
        client.reindexEmbeddings({
          tenant,
          batchChunks: options.batchChunks ?? config.RAGLINE_REINDEX_BATCH_CHUNKS,
          heartbeatTimeoutSeconds: config.RAGLINE_REINDEX_HEARTBEAT_SECONDS,
          onProgress,
        });
      const result = options.json ? await run() : await withReindexBar(run);
      await client.close();
      if (options.json) printJson(result);
      else printReindex(result);
    });
}

function printReindex(result: ReindexEmbeddingsResult): void {
  if (!result.switched) {
    console.log(
      `tenant ${result.tenant} needs no re-embedding: its ${result.chunksTotal} chunks already have vectors from ` +
        `${result.to ?? 'the configured embedder (or none is configured)'}`,
    );
    return;
  }
  console.log(
    `re-embedded tenant ${result.tenant}: ${result.chunksTotal} chunks now have vectors from ${result.to} ` +
      `(was ${result.from ?? 'lexical only'}), ${result.chunksEmbedded} embedded in ${result.batches} batches; ` +
      `corpus version ${result.corpusVersion}`,
  );
}
