/** Input, output and messages of the ingestion workflows. No runtime dependencies beyond the workflow SDK's `define*`. */
import { defineQuery } from '@temporalio/workflow';

export interface IngestDocumentsInput {
  /** Absolute paths of files or directories, readable by the worker. */
  paths: string[];
  tenant?: string;
  /** Documents per activity. @default 200 */
  batchSize?: number;
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
