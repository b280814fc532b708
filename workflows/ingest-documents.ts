import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities/index.js';
import { ErrorType, NON_RETRYABLE_ERROR_TYPES } from '../lib/errors.js';
import { batchSizeProblem } from '../lib/ingest-limits.js';
import { tenantProblem } from '../lib/tenant.js';
import { DEFAULT_TENANT } from '../contracts/query.js';
import {
  getIngestProgressQuery,
  type IngestResume,
  type DeleteDocumentsInput,
  type DeleteDocumentsResult,
  type IngestDocumentsInput,
  type IngestDocumentsResult,
  type IngestProgress,
} from '../contracts/ingest.js';

type Activities = ReturnType<typeof createActivities>;

// A batch parses and indexes up to a few hundred documents; it heartbeats per file slice, so a stuck worker is
// noticed in a minute rather than at the 10-minute limit.
const ingestion = proxyActivities<Activities>({
  startToCloseTimeout: '10m',
  heartbeatTimeout: '1m',
  retry: {
    maximumAttempts: 5,
    initialInterval: '1s',
    maximumInterval: '30s',
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
});

const MAX_PROBLEMS = 100;
const DEFAULT_BATCHES_PER_RUN = 500;

/**
 * Runs from this patch on keep the file list in the worker's data dir (a reference in the history), read each
 * file on from a byte cursor, and continue as new every few hundred batches. Runs recorded before it replay
 * through the code below the patch check, unchanged.
 */
export const INGEST_MANIFEST_PATCH = 'ingest-manifest-cursor';

const invalid = (message: string) =>
  ApplicationFailure.create({ type: ErrorType.InvalidInput, message, nonRetryable: true });

function checkTenant(tenant: string): void {
  const problem = tenantProblem(tenant);
  if (problem) throw invalid(problem);
}

/**
 * Ingests files and directories (Markdown, text, BEIR-style JSONL, gzipped or not) into a tenant's corpus, in
 * batches. Idempotent: unchanged documents are skipped by content hash. The history carries paths, offsets and
 * counts, never document text.
 */
export async function ingestDocumentsWorkflow(input: IngestDocumentsInput): Promise<IngestDocumentsResult> {
  const tenant = input.tenant ?? DEFAULT_TENANT;
  checkTenant(tenant);
  if (!Array.isArray(input.paths) || input.paths.length === 0) throw invalid('no paths to ingest');
  // A batch size of 0 would plan batches forever without issuing a command.
  const sizeProblem = batchSizeProblem(input.batchSize ?? 200);
  if (sizeProblem) throw invalid(sizeProblem);
  const perRun = input.batchesPerRun ?? DEFAULT_BATCHES_PER_RUN;
  if (!Number.isInteger(perRun) || perRun < 1) throw invalid('batchesPerRun must be a positive integer');
  if (patched(INGEST_MANIFEST_PATCH)) return ingestByManifest(input, tenant, input.batchSize ?? 200, perRun);

  const progress: IngestProgress = {
    phase: 'discovering',
    files: 0,
    documentsTotal: 0,
    documentsDone: 0,
    added: 0,
    updated: 0,
    unchanged: 0,
    rejected: 0,
    problems: [],
  };
  setHandler(getIngestProgressQuery, () => progress);
  const report = (problems: IngestProgress['problems']) => {
    progress.rejected += problems.length;
    progress.problems.push(...problems.slice(0, Math.max(0, MAX_PROBLEMS - progress.problems.length)));
  };

  const { files, problems } = await ingestion.discoverSources({ paths: input.paths });
  report(problems);
  progress.files = files.length;
  progress.documentsTotal = files.reduce((sum, f) => sum + f.documents, 0);
  progress.phase = 'ingesting';

  const batchSize = input.batchSize ?? 200;
  let batch: Parameters<Activities['ingestBatch']>[0]['slices'] = [];
  let batchDocs = 0;
  const runBatch = async () => {
    if (batch.length === 0) return;
    const result = await ingestion.ingestBatch({ tenant, slices: batch });
    progress.added += result.added;
    progress.updated += result.updated;
    progress.unchanged += result.unchanged;
    report(result.rejected);
    progress.documentsDone += batchDocs;
    progress.corpusVersion = result.corpusVersion;
    batch = [];
    batchDocs = 0;
  };
  for (const file of files) {
    for (let offset = 0; offset < file.documents;) {
      const limit = Math.min(batchSize - batchDocs, file.documents - offset);
      batch.push({ file, offset, limit });
      batchDocs += limit;
      offset += limit;
      if (batchDocs >= batchSize) await runBatch();
    }
  }
  await runBatch();

  const corpusVersion = progress.corpusVersion ?? (await ingestion.describeCorpus({ tenant })).corpusVersion;
  progress.phase = 'done';
  progress.corpusVersion = corpusVersion;
  return { ...progress, tenant, corpusVersion };
}

async function ingestByManifest(
  input: IngestDocumentsInput,
  tenant: string,
  batchSize: number,
  batchesPerRun: number,
): Promise<IngestDocumentsResult> {
  const resume = input.resume;
  const progress: IngestProgress = resume?.progress ?? {
    phase: 'discovering',
    files: 0,
    documentsTotal: 0,
    documentsDone: 0,
    added: 0,
    updated: 0,
    unchanged: 0,
    rejected: 0,
    problems: [],
  };
  progress.runs = (resume?.runs ?? 0) + 1;
  setHandler(getIngestProgressQuery, () => progress);
  const report = (problems: IngestProgress['problems'], total: number) => {
    progress.rejected += total;
    progress.problems.push(...problems.slice(0, Math.max(0, MAX_PROBLEMS - progress.problems.length)));
  };

  let manifest = resume?.manifest;
  let cursor = resume?.cursor ?? { file: 0, doc: 0, byte: 0, line: 0 };
  if (!manifest) {
    const found = await ingestion.discoverIngestManifest({ paths: input.paths });
    manifest = found.manifest;
    report(found.problems, found.problemsTotal);
    progress.files = found.files;
    progress.documentsTotal = found.documentsTotal;
  }
  progress.phase = 'ingesting';

  let done = progress.files === 0;
  for (let batches = 0; !done; batches++) {
    if (batches >= batchesPerRun || workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      const next: IngestResume = { manifest, cursor, progress, runs: progress.runs };
      return continueAsNew<typeof ingestDocumentsWorkflow>({ ...input, tenant, batchSize, resume: next });
    }
    const result = await ingestion.ingestManifestBatch({ tenant, manifest, cursor, limit: batchSize });
    progress.added += result.added;
    progress.updated += result.updated;
    progress.unchanged += result.unchanged;
    report(result.rejected, result.rejectedTotal);
    progress.documentsDone += result.documents;
    if (result.added + result.updated > 0 || progress.corpusVersion === undefined) {
      progress.corpusVersion = result.corpusVersion;
    }
    cursor = result.cursor;
    done = result.done;
  }

  const corpusVersion = progress.corpusVersion ?? (await ingestion.describeCorpus({ tenant })).corpusVersion;
  progress.phase = 'done';
  progress.corpusVersion = corpusVersion;
  return { ...progress, tenant, corpusVersion };
}

/** Deletes documents from a tenant's corpus and drops the cached answers that cited them. */
export async function deleteDocumentsWorkflow(input: DeleteDocumentsInput): Promise<DeleteDocumentsResult> {
  const tenant = input.tenant ?? DEFAULT_TENANT;
  checkTenant(tenant);
  if (
    !Array.isArray(input.docIds) ||
    input.docIds.length === 0 ||
    input.docIds.some((id) => typeof id !== 'string' || !id)
  ) {
    throw ApplicationFailure.create({
      type: ErrorType.InvalidInput,
      message: 'docIds must be non-empty strings',
      nonRetryable: true,
    });
  }
  const result = await ingestion.deleteDocuments({ tenant, docIds: input.docIds });
  return { tenant, ...result };
}

/** Corpus figures for `ragline status`: the index lives with the worker, so the question goes through it. */
export async function describeCorpusWorkflow(input: { tenant?: string }) {
  const tenant = input.tenant ?? DEFAULT_TENANT;
  checkTenant(tenant);
  return ingestion.describeCorpus({ tenant });
}
