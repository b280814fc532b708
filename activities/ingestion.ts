import { createHash } from 'node:crypto';
import { Context, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { invalidateDeletedDocuments, invalidateDocuments } from '../lib/cache/index.js';
import type { DocumentChunks, SourceDocument, UpsertResult } from '../lib/domain.js';
import { ErrorType, RaglineError } from '../lib/errors.js';
import { chunkDocument } from '../lib/ingest/chunker.js';
import { documentFieldsProblem } from '../lib/ingest-limits.js';
import { readManifest, removeManifest, writeManifest, type ManifestRef } from '../lib/ingest/manifest.js';
import {
  discoverSources,
  readDocuments,
  readFrom,
  START,
  type FilePosition,
  type SourceFile,
  type SourceProblem,
} from '../lib/ingest/sources.js';
import { validateDocument } from '../lib/retrieval/embedded-store.js';
import { tenantProblem } from '../lib/tenant.js';
import type { ActivityDeps } from './deps.js';
import { atBoundary, atIngestionBoundary } from './failures.js';
import { keepAlive } from './heartbeat.js';

export interface IngestBatchInput {
  tenant: string;
  slices: Array<{ file: SourceFile; offset: number; limit: number }>;
}

export interface IngestBatchResult {
  added: number;
  updated: number;
  unchanged: number;
  rejected: SourceProblem[];
  corpusVersion: number;
}

/** A position in an ingestion run: the manifest's file index and where reading stopped in that file. */
export type IngestCursor = FilePosition & { file: number };

export interface DiscoverManifestResult {
  manifest: ManifestRef;
  files: number;
  documentsTotal: number;
  /** The first problems found (at most 100), so the result stays small for any tree. */
  problems: SourceProblem[];
  problemsTotal: number;
}

export interface IngestManifestBatchInput {
  tenant: string;
  manifest: ManifestRef;
  cursor: IngestCursor;
  /** Documents to read in this batch. */
  limit: number;
}

export interface IngestManifestBatchResult extends IngestBatchResult {
  /** Documents read (bad ones included), for progress. */
  documents: number;
  /** Rejected documents in this batch; `rejected` lists at most 100 of them. */
  rejectedTotal: number;
  cursor: IngestCursor;
  done: boolean;
}

const MAX_REPORTED_PROBLEMS = 100;

/**
 * A failure caused by what was sent rather than by the embedder's health: a vector of the wrong size or NaN, the
 * wrong number of vectors, or a text too large for it. Isolating the documents is worth it; a retry of the same
 * batch is not.
 */
const isDocumentFault = (error: unknown): boolean =>
  error instanceof RaglineError && (error.type === ErrorType.BadResponse || error.type === ErrorType.ContextLength);

/**
 * The corpus activities (workflows/ingest-documents.ts, and the evaluation workflow's check of document ids): discover,
 * read, chunk and upsert documents, delete them, and read what a tenant's corpus holds.
 */
export const createIngestionActivities = (deps: ActivityDeps) => {
  const { store, cache, metrics, settings } = deps;

  const checkTenant = (tenant: string) => {
    const problem = tenantProblem(tenant);
    if (problem)
      throw ApplicationFailure.create({ type: ErrorType.InvalidInput, message: problem, nonRetryable: true });
  };

  /**
   * Upserts `docs` in one step, heartbeating as their chunks are embedded, so a slow embedder that is making
   * progress keeps the activity alive while a stuck one is found out at the heartbeat timeout. When the embedder
   * answers something unusable for the batch (wrong count, dimensions or NaN; a text too large for it), each
   * document is tried alone: its vectors are cached, so only the failing part is asked for again, and only the
   * document at fault is rejected, by name.
   */
  const upsertIsolating = async (
    tenant: string,
    docs: DocumentChunks[],
    result: IngestBatchResult,
    sourceOf: (docId: string) => string,
  ) => {
    const context = Context.current();
    let details: Record<string, unknown> = { stage: 'upsert', documents: docs.length };
    const upsert = (batch: DocumentChunks[]) =>
      store.upsertDocuments(tenant, batch, {
        onEmbedded: (embedded, total) => {
          details = { stage: 'embedding', documents: docs.length, embedded, total };
          context.heartbeat(details);
        },
        signal: context.cancellationSignal,
      });
    return keepAlive(
      async () => {
        try {
          return await upsert(docs);
        } catch (error) {
          if (!isDocumentFault(error) || docs.length === 1) throw error;
          log.warn('embedding a batch failed on its content; trying its documents one by one', {
            documents: docs.length,
            error: (error as Error).message,
          });
        }
        const outcomes: UpsertResult[] = [];
        for (const doc of docs) {
          try {
            outcomes.push(...(await upsert([doc])));
          } catch (error) {
            if (!isDocumentFault(error)) throw error;
            result.rejected.push({ source: sourceOf(doc.docId), reason: (error as Error).message });
          }
        }
        return outcomes;
      },
      () => details,
    );
  };

  /** Chunks and stores parsed documents in one upsert (one corpus-version step); bad ones go to `result.rejected`. */
  const indexDocuments = async (tenant: string, parsed: SourceDocument[], result: IngestBatchResult) => {
    const changedDocIds: string[] = [];
    const docs = [];
    for (const doc of parsed) {
      // Sizes first: a megabyte id or title is refused before chunking copies it into every chunk.
      const fieldsProblem = documentFieldsProblem(doc);
      if (fieldsProblem) {
        result.rejected.push({ source: doc.source ?? '(document with an oversized id)', reason: fieldsProblem });
        continue;
      }
      const chunked = chunkDocument(doc, settings.chunkChars);
      const problem = doc.text.trim() === '' ? `document ${doc.id} has no text` : validateDocument(chunked);
      if (problem) result.rejected.push({ source: doc.source ?? doc.id, reason: problem });
      else docs.push(chunked);
    }
    if (docs.length > 0) {
      const sources = new Map(parsed.map((doc) => [doc.id, doc.source ?? doc.id]));
      for (const outcome of await upsertIsolating(tenant, docs, result, (id) => sources.get(id) ?? id)) {
        result[outcome.status] += 1;
        if (outcome.status === 'updated') changedDocIds.push(outcome.docId);
      }
    }
    // Results that cited a changed document are dropped now, not when the TTL runs out.
    if (changedDocIds.length > 0) await invalidateDocuments(cache, tenant, changedDocIds);
    for (const outcome of ['added', 'updated', 'unchanged'] as const) {
      metrics.ingestedDocuments.inc({ outcome }, result[outcome]);
    }
    metrics.ingestedDocuments.inc({ outcome: 'rejected' }, result.rejected.length);
    if (result.rejected.length > 0) log.warn('ingestion rejected documents', { rejected: result.rejected.length });
    result.corpusVersion = await store.corpusVersion(tenant);
  };

  const discover = (paths: string[]) =>
    discoverSources(paths, {
      maxDocumentBytes: settings.maxDocumentBytes,
      onProgress: (visited) => Context.current().heartbeat({ visited }),
    });

  return {
    /** Discovery as started by ingestion runs of older code, which carry the whole file list in their history. */
    async discoverSources(input: { paths: string[] }): Promise<{ files: SourceFile[]; problems: SourceProblem[] }> {
      return atBoundary(() => discover(input.paths));
    },

    /** Walks the paths, writes the file list to the data dir and returns a reference to it with the totals. */
    async discoverIngestManifest(input: { paths: string[] }): Promise<DiscoverManifestResult> {
      return atBoundary(async () => {
        const { workflowExecution: run, activityId } = Context.current().info;
        const owner = run ? `${run.workflowId}\0${run.runId}` : `activity\0${activityId}`;
        const id = createHash('sha256').update(owner).digest('hex').slice(0, 32);
        const { files, problems } = await discover(input.paths);
        await writeManifest(settings.ingestDir, id, files);
        return {
          manifest: { id, paths: input.paths },
          files: files.length,
          documentsTotal: files.reduce((sum, file) => sum + file.documents, 0),
          problems: problems.slice(0, MAX_REPORTED_PROBLEMS),
          problemsTotal: problems.length,
        };
      });
    },

    /**
     * Reads, chunks and stores the next `limit` documents of a run from its cursor, across files; a bad document is
     * reported and the rest go in. A JSONL file is read on from the byte where the previous batch stopped.
     */
    async ingestManifestBatch(input: IngestManifestBatchInput): Promise<IngestManifestBatchResult> {
      return atIngestionBoundary(async () => {
        checkTenant(input.tenant);
        if (!Number.isInteger(input.limit) || input.limit < 1) {
          throw ApplicationFailure.create({
            type: ErrorType.InvalidInput,
            message: `batch limit must be a positive integer, not ${input.limit}`,
            nonRetryable: true,
          });
        }
        const files = await readManifest(
          settings.ingestDir,
          input.manifest,
          async (paths) => (await discover(paths)).files,
        );
        const result: IngestBatchResult = { added: 0, updated: 0, unchanged: 0, rejected: [], corpusVersion: 0 };
        const parsed: SourceDocument[] = [];
        let cursor = { ...input.cursor };
        let documents = 0;
        while (documents < input.limit && cursor.file < files.length) {
          Context.current().heartbeat({ cursor });
          const slice = await readFrom(files[cursor.file]!, cursor, input.limit - documents, settings.maxDocumentBytes);
          documents += slice.next.doc - cursor.doc;
          result.rejected.push(...slice.problems);
          parsed.push(...slice.documents);
          cursor = slice.exhausted ? { file: cursor.file + 1, ...START } : { file: cursor.file, ...slice.next };
        }
        await indexDocuments(input.tenant, parsed, result);
        const done = cursor.file >= files.length;
        if (done) await removeManifest(settings.ingestDir, input.manifest);
        return {
          ...result,
          rejected: result.rejected.slice(0, MAX_REPORTED_PROBLEMS),
          rejectedTotal: result.rejected.length,
          documents,
          cursor,
          done,
        };
      });
    },

    /** Batches of ingestion runs started by older code: slices by document offset. */
    async ingestBatch(input: IngestBatchInput): Promise<IngestBatchResult> {
      return atIngestionBoundary(async () => {
        checkTenant(input.tenant);
        const result: IngestBatchResult = { added: 0, updated: 0, unchanged: 0, rejected: [], corpusVersion: 0 };
        const parsed: SourceDocument[] = [];
        for (const slice of input.slices) {
          Context.current().heartbeat({ file: slice.file.path, offset: slice.offset });
          const read = await readDocuments(slice.file, slice.offset, slice.limit);
          result.rejected.push(...read.problems);
          parsed.push(...read.documents);
        }
        await indexDocuments(input.tenant, parsed, result);
        return result;
      });
    },

    async deleteDocuments(input: {
      tenant: string;
      docIds: string[];
    }): Promise<{ deleted: string[]; missing: string[]; corpusVersion: number }> {
      return atIngestionBoundary(async () => {
        checkTenant(input.tenant);
        const outcome = await store.deleteDocuments(input.tenant, input.docIds);
        // Every requested id, not only those deleted now: a retry after the cache refused finds the documents
        // already gone from the store, and must still drop what cited them.
        await invalidateDeletedDocuments(cache, input.tenant, input.docIds);
        if (outcome.deleted.length > 0) metrics.ingestedDocuments.inc({ outcome: 'deleted' }, outcome.deleted.length);
        return { ...outcome, corpusVersion: await store.corpusVersion(input.tenant) };
      });
    },

    /** Which of these document ids the tenant's corpus does not hold (evaluation sets name documents by id). */
    async findUnknownDocIds(input: { tenant: string; docIds: string[] }): Promise<{ unknown: string[] }> {
      return atBoundary(async () => {
        const unknown: string[] = [];
        for (const docId of input.docIds) {
          if ((await store.documentHash(input.tenant, docId)) === undefined) unknown.push(docId);
        }
        return { unknown };
      });
    },

    async describeCorpus(input: { tenant: string }) {
      return atBoundary(async () => {
        checkTenant(input.tenant);
        return { tenant: input.tenant, store: store.kind, ...(await store.stats(input.tenant)) };
      });
    },
  };
};
