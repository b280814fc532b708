import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import type { SourceDocument } from '../domain.js';
import { InvalidInputError } from '../errors.js';

export type SourceKind = 'markdown' | 'text' | 'jsonl';

export interface SourceFile {
  path: string;
  kind: SourceKind;
  /** Documents in the file (1 for Markdown and text; lines for JSONL, bad ones included). */
  documents: number;
}

export interface SourceProblem {
  source: string;
  reason: string;
}

const KINDS: Array<[RegExp, SourceKind]> = [
  [/\.(md|markdown)$/i, 'markdown'],
  [/\.txt$/i, 'text'],
  [/\.jsonl(\.gz)?$/i, 'jsonl'],
];

export function kindOf(file: string): SourceKind | undefined {
  return KINDS.find(([pattern]) => pattern.test(file))?.[1];
}

/**
 * Expands paths (files or directories, recursively) into ingestible files. A missing path or a file of an
 * unknown type is reported, never thrown, so the rest of a batch still goes in.
 */
export async function discoverSources(paths: string[]): Promise<{ files: SourceFile[]; problems: SourceProblem[] }> {
  const files: SourceFile[] = [];
  const problems: SourceProblem[] = [];
  const visit = async (target: string, explicit: boolean): Promise<void> => {
    let stat;
    try {
      stat = await fs.stat(target);
    } catch {
      problems.push({ source: target, reason: 'no such file or directory' });
      return;
    }
    if (stat.isDirectory()) {
      const entries = (await fs.readdir(target)).filter((name) => !name.startsWith('.')).sort();
      for (const entry of entries) await visit(path.join(target, entry), false);
      return;
    }
    const kind = kindOf(target);
    if (!kind) {
      // Inside a directory, other files (images, READMEs in other formats) are skipped quietly only if they are
      // obviously not documents; a file named explicitly is always reported.
      if (explicit || !/\.(png|jpe?g|gif|svg|ico|pdf|zip)$/i.test(target)) {
        problems.push({
          source: target,
          reason: 'unknown file type (expected .md, .markdown, .txt, .jsonl or .jsonl.gz)',
        });
      }
      return;
    }
    files.push({ path: target, kind, documents: kind === 'jsonl' ? await countLines(target) : 1 });
  };
  for (const p of paths) await visit(path.resolve(p), true);
  return { files, problems };
}

async function* lines(file: string): AsyncGenerator<string> {
  const stream = createReadStream(file);
  const input = file.endsWith('.gz') ? stream.pipe(createGunzip()) : stream;
  const reader = createInterface({ input, crlfDelay: Infinity });
  for await (const line of reader) yield line;
}

async function countLines(file: string): Promise<number> {
  let count = 0;
  for await (const line of lines(file)) if (line.trim()) count += 1;
  return count;
}

export interface ParsedSlice {
  documents: SourceDocument[];
  problems: SourceProblem[];
}

/** Reads documents [offset, offset + limit) of a source file; bad entries become problems naming their line. */
export async function readDocuments(file: SourceFile, offset: number, limit: number): Promise<ParsedSlice> {
  if (file.kind !== 'jsonl') {
    if (offset > 0) return { documents: [], problems: [] };
    const raw = await fs.readFile(file.path);
    const text = decodeUtf8(raw, file.path);
    if (typeof text !== 'string') return { documents: [], problems: [text] };
    const id = path.basename(file.path).replace(/\.[^.]+$/, '');
    const heading = file.kind === 'markdown' ? /^#\s+(.+)$/m.exec(text)?.[1]?.trim() : undefined;
    const title = heading ?? id.replace(/[-_]+/g, ' ');
    return { documents: [{ id, title, text, source: file.path }], problems: [] };
  }
  const documents: SourceDocument[] = [];
  const problems: SourceProblem[] = [];
  let index = -1;
  let lineNumber = 0;
  for await (const line of lines(file.path)) {
    lineNumber += 1;
    if (!line.trim()) continue;
    index += 1;
    if (index < offset) continue;
    if (index >= offset + limit) break;
    const source = `${file.path}:${lineNumber}`;
    try {
      documents.push({ ...parseJsonlDocument(line), source });
    } catch (error) {
      problems.push({ source, reason: error instanceof Error ? error.message : String(error) });
    }
  }
  return { documents, problems };
}

/** A BEIR-style line: `{"_id": "...", "title": "...", "text": "..."}` (`id` accepted for `_id`). */
export function parseJsonlDocument(line: string): Omit<SourceDocument, 'source'> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new InvalidInputError('malformed JSON');
  }
  if (typeof value !== 'object' || value === null) throw new InvalidInputError('expected a JSON object');
  const record = value as Record<string, unknown>;
  const id = record._id ?? record.id;
  if (typeof id !== 'string' && typeof id !== 'number') throw new InvalidInputError('missing "_id"');
  if (typeof record.text !== 'string') throw new InvalidInputError(`document ${id}: missing "text"`);
  const title = typeof record.title === 'string' ? record.title : '';
  return { id: String(id), title, text: record.text };
}

function decodeUtf8(raw: Buffer, source: string): string | SourceProblem {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    return { source, reason: 'not valid UTF-8 text' };
  }
}
