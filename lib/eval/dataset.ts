import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { InvalidInputError } from '../errors.js';

/** One question of an evaluation set and the documents that answer it. */
export interface EvalItem {
  id: string;
  question: string;
  /** document id → relevance grade (> 0; ground-truth lists give every listed document grade 1). */
  relevant: Record<string, number>;
}

/** A line that was left out of the set (or partly: unknown document ids), and why. */
export interface EvalProblem {
  line: number;
  file: string;
  message: string;
}

export interface EvalSet {
  /** Short, id-safe name (`sample-corpus`, `scifact`): part of the evaluation workflow's id. */
  name: string;
  /** Content hash of the parsed items: the same questions and judgements give the same version. */
  version: string;
  items: EvalItem[];
  problems: EvalProblem[];
}

export interface LoadEvalSetOptions {
  /** Document ids the corpus holds; relevant ids outside it are reported and dropped. */
  knownDocIds?: ReadonlySet<string>;
  /** Overrides the name derived from the path. */
  name?: string;
}

/** The set cannot be used at all: missing, unreadable, or no usable question left. */
export class EvalSetError extends InvalidInputError {
  constructor(
    message: string,
    readonly problems: EvalProblem[] = [],
  ) {
    super(message);
  }
}

export const DEFAULT_EVAL_SET = 'sample-corpus/ground-truth.jsonl';
const GROUND_TRUTH_FILE = 'ground-truth.jsonl';

/**
 * Reads an evaluation set: a ground-truth JSONL file (`{"id", "query", "relevant": [docId…] | {docId: grade}}`
 * per line), a directory holding `ground-truth.jsonl`, or a BEIR directory (`queries*.jsonl[.gz]` and
 * `qrels/*.tsv`; `qrels/test.tsv` alone when present, since BEIR's other splits are for training). Malformed lines
 * are reported with their line numbers and the rest is used; a set with no usable question is an
 * {@link EvalSetError}.
 */
export async function loadEvalSet(
  dirOrFile: string = DEFAULT_EVAL_SET,
  options: LoadEvalSetOptions = {},
): Promise<EvalSet> {
  const info = await stat(dirOrFile).catch(() => undefined);
  if (!info) throw new EvalSetError(`evaluation set not found: ${dirOrFile}`);
  let parsed: { items: Array<EvalItem & { line: number; file: string }>; problems: EvalProblem[] };
  let name: string;
  if (info.isFile()) {
    parsed = parseGroundTruth(dirOrFile, await readText(dirOrFile));
    const base = path.basename(dirOrFile).replace(/\.jsonl(\.gz)?$/, '');
    name = base === 'ground-truth' ? path.basename(path.dirname(path.resolve(dirOrFile))) : base;
  } else {
    const entries = await readdir(dirOrFile);
    name = path.basename(path.resolve(dirOrFile));
    if (entries.includes(GROUND_TRUTH_FILE)) {
      const file = path.join(dirOrFile, GROUND_TRUTH_FILE);
      parsed = parseGroundTruth(file, await readText(file));
    } else {
      parsed = await readBeir(dirOrFile, entries);
    }
  }

  const problems = [...parsed.problems];
  const items: EvalItem[] = [];
  const seen = new Set<string>();
  for (const { line, file, ...item } of parsed.items) {
    if (seen.has(item.id)) {
      problems.push({ line, file, message: `duplicate question id ${item.id}; the first one is used` });
      continue;
    }
    if (options.knownDocIds) {
      const unknown = Object.keys(item.relevant).filter((docId) => !options.knownDocIds!.has(docId));
      if (unknown.length > 0) {
        problems.push({ line, file, message: `unknown document id(s) ${unknown.join(', ')} in ${item.id}` });
        for (const docId of unknown) delete item.relevant[docId];
        if (Object.keys(item.relevant).length === 0) continue;
      }
    }
    seen.add(item.id);
    items.push(item);
  }
  problems.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
  const setName = sanitizeName(options.name ?? name);
  if (items.length === 0) {
    throw new EvalSetError(
      `evaluation set ${setName} has no usable question (${problems.length} problem(s)${problems[0] ? `, first: ${problems[0].file}:${problems[0].line} ${problems[0].message}` : ''})`,
      problems,
    );
  }
  return { name: setName, version: evalSetVersion(items), items, problems };
}

/** sha256 of the items in order with sorted judgements, 16 hex digits: whitespace and key order do not count. */
export function evalSetVersion(items: EvalItem[]): string {
  const hash = createHash('sha256');
  for (const item of items) {
    const relevant = Object.entries(item.relevant).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    hash.update(JSON.stringify([item.id, item.question, relevant]));
    hash.update('\n');
  }
  return hash.digest('hex').slice(0, 16);
}

function sanitizeName(name: string): string {
  const clean = name
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return clean === '' ? 'eval' : clean.slice(0, 60);
}

async function readText(file: string): Promise<string> {
  const buffer = await readFile(file).catch((error: unknown) => {
    throw new EvalSetError(`cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`);
  });
  return file.endsWith('.gz') ? (await promisify(gunzip)(buffer)).toString('utf8') : buffer.toString('utf8');
}

function parseJsonLine(text: string): { value?: Record<string, unknown>; error?: string } {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return { error: 'not a JSON object' };
    return { value: value as Record<string, unknown> };
  } catch (error) {
    return { error: `malformed JSON (${error instanceof Error ? error.message : String(error)})` };
  }
}

function parseGroundTruth(file: string, text: string) {
  const items: Array<EvalItem & { line: number; file: string }> = [];
  const problems: EvalProblem[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === '') return;
    const { value, error } = parseJsonLine(raw);
    if (!value) return problems.push({ line, file, message: error ?? 'unreadable' });
    const id = value.id ?? value._id;
    const question = value.query ?? value.question ?? value.text;
    if (typeof id !== 'string' || id.trim() === '') return problems.push({ line, file, message: 'missing "id"' });
    if (typeof question !== 'string' || question.trim() === '') {
      return problems.push({ line, file, message: `missing "query" in ${id}` });
    }
    const relevant = parseRelevant(value.relevant);
    if (typeof relevant === 'string') return problems.push({ line, file, message: `${relevant} in ${id}` });
    items.push({ id, question: question.trim(), relevant, line, file });
  });
  return { items, problems };
}

function parseRelevant(value: unknown): Record<string, number> | string {
  const relevant: Record<string, number> = {};
  if (Array.isArray(value)) {
    for (const docId of value) {
      if (typeof docId !== 'string' || docId === '') return '"relevant" holds a non-string document id';
      relevant[docId] = 1;
    }
  } else if (typeof value === 'object' && value !== null) {
    for (const [docId, grade] of Object.entries(value)) {
      if (typeof grade !== 'number' || !Number.isFinite(grade)) return `grade of ${docId} is not a number`;
      if (grade > 0) relevant[docId] = grade;
    }
  } else {
    return '"relevant" must be a list of document ids or an object of grades';
  }
  return Object.keys(relevant).length === 0 ? 'no relevant document' : relevant;
}

async function readBeir(dir: string, entries: string[]) {
  const problems: EvalProblem[] = [];
  const queryFiles = entries.filter((file) => /^queries.*\.jsonl(\.gz)?$/.test(file)).sort();
  const qrelsDir = path.join(dir, 'qrels');
  const qrelsEntries = (await readdir(qrelsDir).catch(() => [] as string[])).filter((f) => f.endsWith('.tsv')).sort();
  const qrelsFiles = qrelsEntries.includes('test.tsv') ? ['test.tsv'] : qrelsEntries;
  if (queryFiles.length === 0 || qrelsFiles.length === 0) {
    throw new EvalSetError(`${dir} holds neither ${GROUND_TRUTH_FILE} nor BEIR queries*.jsonl with qrels/*.tsv`);
  }

  const judgements = new Map<string, Record<string, number>>();
  for (const name of qrelsFiles) {
    const file = path.join(qrelsDir, name);
    (await readText(file)).split('\n').forEach((raw, index) => {
      const line = index + 1;
      if (raw.trim() === '') return;
      const cells = raw.trim().split(/\t|\s+/);
      // BEIR puts the column names in the first line; TREC-style qrels (4 columns) carry an iteration column.
      if (line === 1 && cells[0] === 'query-id') return;
      const [queryId, docId, grade] = cells.length === 4 ? [cells[0], cells[2], cells[3]] : cells;
      const value = Number(grade);
      if (cells.length < 3 || cells.length > 4 || !queryId || !docId || !Number.isFinite(value)) {
        return problems.push({ line, file, message: 'expected "query-id<TAB>corpus-id<TAB>score"' });
      }
      if (value <= 0) return;
      const relevant = judgements.get(queryId) ?? {};
      relevant[docId] = value;
      judgements.set(queryId, relevant);
    });
  }

  const items: Array<EvalItem & { line: number; file: string }> = [];
  for (const name of queryFiles) {
    const file = path.join(dir, name);
    (await readText(file)).split('\n').forEach((raw, index) => {
      const line = index + 1;
      if (raw.trim() === '') return;
      const { value, error } = parseJsonLine(raw);
      if (!value) return problems.push({ line, file, message: error ?? 'unreadable' });
      const id = value._id ?? value.id;
      const question = value.text ?? value.query;
      if (typeof id !== 'string' || id === '') return problems.push({ line, file, message: 'missing "_id"' });
      if (typeof question !== 'string' || question.trim() === '') {
        return problems.push({ line, file, message: `missing "text" in ${id}` });
      }
      // A BEIR queries file holds every split's questions; only the judged ones belong to the set.
      const relevant = judgements.get(id);
      if (relevant) items.push({ id, question: question.trim(), relevant: { ...relevant }, line, file });
    });
  }
  return { items, problems };
}
