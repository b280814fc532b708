import fs from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EvalSetError, loadEvalSet } from '../../lib/eval/dataset.js';

const root = path.resolve(import.meta.dirname, '../..');
const SCIFACT = path.resolve(root, '../shared/datasets/scifact');
let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ragline-evalset-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const write = async (name: string, text: string) => {
  const file = path.join(dir, name);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, text);
  return file;
};

describe('loadEvalSet', () => {
  it('reads the sample corpus ground truth by default, versioned by content', async () => {
    const set = await loadEvalSet();
    expect(set.name).toBe('sample-corpus');
    expect(set.items).toHaveLength(70);
    expect(set.problems).toEqual([]);
    expect(set.items[0]).toEqual({
      id: 'gt-001',
      question: 'How do I reset my password?',
      relevant: { 'password-reset': 1, 'login-troubleshooting': 1 },
    });
    expect(set.version).toMatch(/^[0-9a-f]{16}$/);
    expect((await loadEvalSet(path.join(root, 'sample-corpus'))).version).toBe(set.version);
  });

  it('reports malformed lines with their numbers and uses the rest', async () => {
    const file = await write(
      'bad/ground-truth.jsonl',
      [
        '{"id": "a", "query": "first?", "relevant": ["d1"]}',
        '{"id": "b", "query": "second?", ',
        '',
        '{"id": "c", "relevant": ["d2"]}',
        '{"id": "d", "query": "fourth?", "relevant": {"d3": 2, "d4": 0}}',
        '{"id": "e", "query": "fifth?", "relevant": []}',
        '{"id": "a", "query": "again?", "relevant": ["d1"]}',
      ].join('\n'),
    );
    const set = await loadEvalSet(file);
    expect(set.name).toBe('bad');
    expect(set.items.map((i) => i.id)).toEqual(['a', 'd']);
    expect(set.items[1]!.relevant).toEqual({ d3: 2 });
    expect(set.problems.map((p) => p.line)).toEqual([2, 4, 6, 7]);
    expect(set.problems[0]!.message).toMatch(/malformed JSON/);
    expect(set.problems[1]!.message).toMatch(/missing "query"/);
  });

  it('reports unknown document ids when the corpus ids are given', async () => {
    const file = await write(
      'known.jsonl',
      '{"id": "a", "query": "q?", "relevant": ["d1", "ghost"]}\n{"id": "b", "query": "q2?", "relevant": ["ghost"]}\n',
    );
    const set = await loadEvalSet(file, { knownDocIds: new Set(['d1']) });
    expect(set.items).toEqual([{ id: 'a', question: 'q?', relevant: { d1: 1 } }]);
    expect(set.problems).toEqual([
      { line: 1, file, message: 'unknown document id(s) ghost in a' },
      { line: 2, file, message: 'unknown document id(s) ghost in b' },
    ]);
  });

  it('refuses an empty set with a typed error naming the problems', async () => {
    const file = await write('empty.jsonl', '\n{"broken"\n');
    const failure = await loadEvalSet(file).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(EvalSetError);
    expect((failure as EvalSetError).problems).toHaveLength(1);
    expect((failure as Error).message).toMatch(/no usable question.*empty\.jsonl:2/);
    await expect(loadEvalSet(path.join(dir, 'missing.jsonl'))).rejects.toThrow(EvalSetError);
  });

  it('reads BEIR queries and qrels, keeping judged questions only', async () => {
    await write('beir/queries.jsonl', '{"_id": "1", "text": "one"}\n{"_id": "2", "text": "two"}\nnot json\n');
    await write('beir/qrels/test.tsv', 'query-id\tcorpus-id\tscore\n1\tdA\t1\n1\tdB\t2\nbroken\n');
    const set = await loadEvalSet(path.join(dir, 'beir'));
    expect(set.name).toBe('beir');
    expect(set.items).toEqual([{ id: '1', question: 'one', relevant: { dA: 1, dB: 2 } }]);
    expect(set.problems.map((p) => [path.basename(p.file), p.line])).toEqual([
      ['test.tsv', 4],
      ['queries.jsonl', 3],
    ]);
  });

  it('reads SciFact', async () => {
    // Part of CI (a clean clone has shared/datasets beside it): a missing dataset fails, saying where it was looked for.
    if (!existsSync(SCIFACT)) {
      throw new Error(
        `SciFact not found at ${SCIFACT}: this test needs it (shared/datasets/scifact beside the project)`,
      );
    }
    const set = await loadEvalSet(SCIFACT);
    expect(set.name).toBe('scifact');
    expect(set.items).toHaveLength(300);
  });
});
