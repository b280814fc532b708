/** Input, output and messages of the ingestion workflows. No runtime dependencies beyond the workflow SDK's `define*`. */
import { defineQuery } from '@temporalio/workflow';

export interface IngestDocumentsInput {
  /** Absolute paths of files or directories, readable by the worker. */
  paths: string[];
  tenant?: string;
  /** Documents per activity (1–10000). @default 200 */
  batchSize?: number;
  /** Batches before the workflow continues as new (sooner if Temporal suggests it). @default 500 */
  batchesPerRun?: number;
  /** Set by the workflow itself when it continues as new: where the previous run stopped. */
  resume?: IngestResume;
}

/** What a run hands to the next when it continues as new: the file list's reference, the position, the totals. */
export interface IngestResume {
  manifest: { id: string; paths: string[] };
  cursor: { file: number; doc: number; byte: number; line: number };
  progress: IngestProgress;
  /** Runs so far, this one included. */
  runs: number;
}

export interface IngestProblem {
  source: string;
  reason: string;
}

export interface IngestProgress {
  phase: 'discovering' | 'ingesting' | 'done';
  files: number;
  documentsTotal: number;
  documentsDone: number;
  added: number;
  updated: number;
  unchanged: number;
  rejected: number;
  /** The first 100 problems: unreadable paths, unknown file types, malformed lines, empty documents. */
  problems: IngestProblem[];
  corpusVersion?: number;
  /** Runs of the workflow so far (it continues as new every few hundred batches). Absent before that existed. */
  runs?: number;
}

export type IngestDocumentsResult = IngestProgress & { tenant: string; corpusVersion: number };

export const getIngestProgressQuery = defineQuery<IngestProgress>('getIngestProgress');

export interface DeleteDocumentsInput {
  tenant?: string;
  docIds: string[];
}

export interface DeleteDocumentsResult {
  tenant: string;
  deleted: string[];
  missing: string[];
  corpusVersion: number;
}
