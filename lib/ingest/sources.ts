import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline, Transform, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { LRUCache } from 'lru-cache';
import type { SourceDocument } from '../domain.js';
import { InvalidInputError } from '../errors.js';

export type SourceKind = 'markdown' | 'text' | 'jsonl';

export interface SourceFile {
  path: string;
  kind: SourceKind;
  /** Documents in the file (1 for Markdown and text; lines for JSONL, bad ones included). */
  documents: number;
  /**
   * Id of a Markdown or text document: its path relative to the ingested root, without extension, so `a/intro.md`
   * and `b/intro.md` stay apart. Absent in files discovered by older code; the basename is used then.
   */
  docId?: string;
}

export interface SourceProblem {
  source: string;
  reason: string;
}

export interface DiscoverOptions {
  /** Largest Markdown or text file, and largest JSONL line, accepted. @default 8 MiB */
  maxDocumentBytes?: number;
  /** Called every few hundred entries and lines, so a long walk can heartbeat. */
  onProgress?: (visited: number) => void;
}

export const DEFAULT_MAX_DOCUMENT_BYTES = 8 * 1024 * 1024;
const PROGRESS_EVERY = 256;

const KINDS: Array<[RegExp, SourceKind]> = [
  [/\.(md|markdown)$/i, 'markdown'],
  [/\.txt$/i, 'text'],
  [/\.jsonl(\.gz)?$/i, 'jsonl'],
];

export function kindOf(file: string): SourceKind | undefined {
  return KINDS.find(([pattern]) => pattern.test(file))?.[1];
}

/** The document id of a Markdown or text file: its path under `root`, with '/' separators and no extension. */
export function documentIdOf(root: string, file: string): string {
  const relative = path.relative(root, file).split(path.sep).join('/');
  return relative.replace(/\.[^./]+$/, '');
}

/**
 * Expands paths (files or directories, recursively) into ingestible files. A missing path, a file of an unknown
 * type, a file over the size cap, a directory reached twice (a symlink loop) and a document id already taken by
 * another file are reported, never thrown, so the rest of a batch still goes in.
 */
export async function discoverSources(
  paths: string[],
  options: DiscoverOptions = {},
): Promise<{ files: SourceFile[]; problems: SourceProblem[] }> {
  const maxBytes = options.maxDocumentBytes ?? DEFAULT_MAX_DOCUMENT_BYTES;
  const files: SourceFile[] = [];
  const problems: SourceProblem[] = [];
  const visitedDirs = new Map<string, string>();
  const ids = new Map<string, string>();
  let visited = 0;
  const tick = () => {
    visited += 1;
    if (visited % PROGRESS_EVERY === 0) options.onProgress?.(visited);
  };
  const visit = async (target: string, root: string, explicit: boolean): Promise<void> => {
    tick();
    let stat;
    try {
      stat = await fs.stat(target);
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code === 'ELOOP' ? 'symlink loop' : 'no such file or directory';
      problems.push({ source: target, reason });
      return;
    }
    if (stat.isDirectory()) {
      const real = await fs.realpath(target);
      const seen = visitedDirs.get(real);
      if (seen !== undefined) {
        problems.push({
          source: target,
          reason: `directory already ingested as ${seen} (symlink loop or second link)`,
        });
        return;
      }
      visitedDirs.set(real, target);
      const entries = (await fs.readdir(target)).filter((name) => !name.startsWith('.')).sort();
      for (const entry of entries) await visit(path.join(target, entry), root, false);
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
    if (kind === 'jsonl') {
      files.push({ path: target, kind, documents: await countLines(target, tick) });
      return;
    }
    if (stat.size > maxBytes) {
      problems.push({ source: target, reason: `file is ${stat.size} bytes; the maximum is ${maxBytes}` });
      return;
    }
    const docId = documentIdOf(root, target);
    const owner = ids.get(docId);
    if (owner !== undefined) {
      problems.push({ source: target, reason: `document id "${docId}" is already used by ${owner}; not ingested` });
      return;
    }
    ids.set(docId, target);
    files.push({ path: target, kind, documents: 1, docId });
  };
  for (const p of paths) {
    const absolute = path.resolve(p);
    const isDir = await fs.stat(absolute).then(
      (s) => s.isDirectory(),
      () => false,
    );
    await visit(absolute, isDir ? absolute : path.dirname(absolute), true);
  }
  return { files, problems };
}

/** A line of a JSONL file and the byte offset just past it (in the decompressed stream for .gz). */
interface Line {
  /** Undefined when the line was longer than the cap and was skipped. */
  text: string | undefined;
  bytes: number;
  end: number;
}

/**
 * Splits a byte stream into lines without holding more than one line (up to `maxBytes`) in memory; a longer line
 * is skipped and reported as such. Positions are byte offsets, so a later read can start where this one stopped.
 */
async function* splitLines(input: Readable, start: number, maxBytes: number): AsyncGenerator<Line> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let oversize = false;
  let position = start;
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      let from = 0;
      while (from < chunk.length) {
        const newline = chunk.indexOf(0x0a, from);
        const until = newline < 0 ? chunk.length : newline;
        if (!oversize) {
          pending.push(chunk.subarray(from, until));
          pendingBytes += until - from;
          if (pendingBytes > maxBytes) {
            oversize = true;
            pending = [];
          }
        } else pendingBytes += until - from;
        if (newline < 0) break;
        position += pendingBytes + 1;
        const text = oversize ? undefined : Buffer.concat(pending).toString('utf8').replace(/\r$/, '');
        const bytes = pendingBytes;
        pending = [];
        pendingBytes = 0;
        oversize = false;
        from = newline + 1;
        yield { text, bytes, end: position };
      }
    }
    if (pendingBytes > 0 || pending.length > 0) {
      position += pendingBytes;
      yield {
        text: oversize ? undefined : Buffer.concat(pending).toString('utf8').replace(/\r$/, ''),
        bytes: pendingBytes,
        end: position,
      };
    }
  } finally {
    input.destroy();
  }
}

/** Lines of a file from byte `start` of its (decompressed) content. */
function openLines(file: string, start: number, maxBytes: number): AsyncGenerator<Line> {
  if (!file.endsWith('.gz')) return splitLines(createReadStream(file, { start }), start, maxBytes);
  // A gzip stream cannot be entered in the middle: decompress from the start and drop what precedes `start`.
  // Batches normally continue a reader kept open by the previous batch (see `readers`), so this happens only
  // after a worker restart or on another worker.
  let left = start;
  const dropHead = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      if (left >= chunk.length) {
        left -= chunk.length;
        done();
        return;
      }
      const rest = left > 0 ? chunk.subarray(left) : chunk;
      left = 0;
      done(null, rest);
    },
  });
  const input = pipeline(createReadStream(file), createGunzip(), dropHead, () => undefined);
  return splitLines(input, start, maxBytes);
}

async function countLines(file: string, tick: () => void): Promise<number> {
  let count = 0;
  for await (const line of openLines(file, 0, Number.MAX_SAFE_INTEGER)) {
    if (line.bytes > 0 && (line.text === undefined || line.text.trim() !== '')) count += 1;
    tick();
  }
  return count;
}

/** Where reading stopped in a file: the next document's index, and the byte and line it starts at. */
export interface FilePosition {
  /** Documents (non-blank lines) already read. */
  doc: number;
  /** Byte offset of the next line, in the decompressed content. */
  byte: number;
  /** Lines already read, blank ones included (for `path:line` in problems). */
  line: number;
}

export const START: FilePosition = { doc: 0, byte: 0, line: 0 };

/**
 * Readers left open by one batch for the next, keyed by file and byte position: a JSONL(.gz) file is read once
 * from start to end across all of its batches, instead of once per batch (which is quadratic in its size).
 */
const readers = new LRUCache<string, { lines: AsyncGenerator<Line>; maxBytes: number; taken?: boolean }>({
  max: 16,
  ttl: 10 * 60_000,
  ttlAutopurge: true,
  // Evicted or expired readers close their file; one taken by the next batch stays open.
  dispose: (reader) => {
    if (!reader.taken) void reader.lines.return(undefined);
  },
});

export interface ParsedSlice {
  documents: SourceDocument[];
  problems: SourceProblem[];
  /** Where the next read of this file starts; `doc` equals `file.documents` once the file is read to its end. */
  next: FilePosition;
  /** True once the file has no more lines. */
  exhausted: boolean;
}

/**
 * Reads up to `limit` documents of a source file from `from`; bad entries become problems naming their line.
 */
export async function readFrom(
  file: SourceFile,
  from: FilePosition,
  limit: number,
  maxDocumentBytes = DEFAULT_MAX_DOCUMENT_BYTES,
): Promise<ParsedSlice> {
  if (file.kind !== 'jsonl') {
    if (from.doc > 0) return { documents: [], problems: [], next: from, exhausted: true };
    const done: FilePosition = { doc: 1, byte: 0, line: 0 };
    const stat = await fs.stat(file.path).catch(() => undefined);
    if (!stat)
      return { documents: [], problems: [{ source: file.path, reason: 'no such file' }], next: done, exhausted: true };
    if (stat.size > maxDocumentBytes) {
      const reason = `file is ${stat.size} bytes; the maximum is ${maxDocumentBytes}`;
      return { documents: [], problems: [{ source: file.path, reason }], next: done, exhausted: true };
    }
    const text = decodeUtf8(await fs.readFile(file.path), file.path);
    if (typeof text !== 'string') return { documents: [], problems: [text], next: done, exhausted: true };
    const id = file.docId ?? path.basename(file.path).replace(/\.[^.]+$/, '');
    const heading = file.kind === 'markdown' ? /^#\s+(.+)$/m.exec(text)?.[1]?.trim() : undefined;
    const title = heading ?? path.basename(id).replace(/[-_]+/g, ' ');
    return { documents: [{ id, title, text, source: file.path }], problems: [], next: done, exhausted: true };
  }
  const documents: SourceDocument[] = [];
  const problems: SourceProblem[] = [];
  const key = (byte: number) => `${file.path}\0${byte}`;
  const kept = readers.get(key(from.byte));
  if (kept) {
    kept.taken = true;
    readers.delete(key(from.byte));
  }
  const lines =
    kept && kept.maxBytes === maxDocumentBytes ? kept.lines : openLines(file.path, from.byte, maxDocumentBytes);
  if (kept && kept.lines !== lines) await kept.lines.return(undefined);
  const position = { ...from };
  let exhausted = true;
  let read = 0;
  while (read < limit) {
    const next = await lines.next();
    if (next.done) break;
    const line = next.value;
    position.line += 1;
    position.byte = line.end;
    if (line.text !== undefined && line.text.trim() === '') continue;
    position.doc += 1;
    read += 1;
    const source = `${file.path}:${position.line}`;
    if (line.text === undefined) {
      problems.push({ source, reason: `line is ${line.bytes} bytes; the maximum is ${maxDocumentBytes}` });
      continue;
    }
    try {
      documents.push({ ...parseJsonlDocument(line.text), source });
    } catch (error) {
      problems.push({ source, reason: error instanceof Error ? error.message : String(error) });
    }
  }
  if (read >= limit) {
    exhausted = false;
    readers.set(key(position.byte), { lines, maxBytes: maxDocumentBytes });
  } else await lines.return(undefined);
  return { documents, problems, next: position, exhausted };
}

/** Reads documents [offset, offset + limit) of a source file (the slices of ingestion runs started by older code). */
export async function readDocuments(file: SourceFile, offset: number, limit: number): Promise<ParsedSlice> {
  if (offset === 0) return readFrom(file, START, limit);
  const skipped = await readFrom(file, START, offset);
  const slice = await readFrom(file, skipped.next, limit);
  return slice;
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
