import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli as ragline } from '../support/cli.js';
import { getEvaluationStatusQuery } from '../../contracts/evaluation.js';
import { freePort } from '../support/redis.js';
import { SAMPLE_CORPUS, startRagline, tempDir, type TestRagline } from '../support/ragline.js';
import { waitUntil } from '../support/wait.js';

const GROUND_TRUTH = path.resolve(import.meta.dirname, '../../sample-corpus/ground-truth.jsonl');

describe('ragline eval CLI', () => {
  let stack: TestRagline;
  let env: Record<string, string>;
  let dir: string;

  beforeAll(async () => {
    stack = await startRagline();
    await stack.ingest([SAMPLE_CORPUS]);
    env = { TEMPORAL_ADDRESS: stack.env.address, RAGLINE_TASK_QUEUE: stack.taskQueue };
    dir = await tempDir('ragline-eval-cli-');
  });
  afterAll(async () => {
    await stack?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('refuses an empty evaluation set with exit code 2 before contacting any server', async () => {
    const file = path.join(dir, 'empty.jsonl');
    await fs.writeFile(file, 'nope\n');
    const run = await ragline(['eval', 'run', '--dataset', file], {
      TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}`,
    });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^ragline: evaluation set empty has no usable question .*empty\.jsonl:1 malformed JSON/);
  });

  it('runs the set once and prints scores as a table or as JSON', async () => {
    const json = await ragline(['eval', 'run', '--limit', '6', '--json'], env);
    expect(json.code).toBe(0);
    const result = JSON.parse(json.stdout) as {
      setName: string;
      observations: unknown[];
      scores: { samples: number; ndcg10: number; k: number };
    };
    expect(result.setName).toBe('sample-corpus');
    expect(result.observations).toHaveLength(6);
    expect(result.scores.samples).toBe(6);

    const table = await ragline(['eval', 'run', '--limit', '3', '--dataset', GROUND_TRUTH], env);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^sample-corpus \(version [0-9a-f]{16}\), tenant default: 3 questions in /);
    expect(table.stdout).toMatch(/^nDCG@10\s+\d\.\d{3}$/m);
    expect(table.stdout).toMatch(/^latency p95 \(ms\)\s+\d+$/m);
  });

  it('starts, reports, pauses, resumes and reconfigures the continuous evaluation, and writes a report', async () => {
    const dataset = path.join(dir, 'cli-set.jsonl');
    await fs.copyFile(GROUND_TRUTH, dataset);
    const target = ['--dataset', dataset];
    const start = await ragline(['eval', 'start', ...target, '--interval', '3600', '--batch-size', '4'], env);
    expect(start.stdout).toMatch(/^started: eval:default:cli-set \(70 questions, set version [0-9a-f]{16}\)$/m);
    expect((await ragline(['eval', 'start', ...target], env)).stdout).toMatch(/^already running: eval:default:cli-set/);

    // Waits and checks go through the client API; the CLI is exercised for each command once.
    const status = () => stack.env.client.workflow.getHandle('eval:default:cli-set').query(getEvaluationStatusQuery);
    await waitUntil('the first batch of eval:default:cli-set', status, (s) => s.batches >= 1, { intervalMs: 200 });
    const readable = await ragline(['eval', 'status', ...target], env);
    expect(readable.stdout).toMatch(/^eval:default:cli-set: waiting, every 3600 s, 4 per batch; 1 batches/m);
    expect(readable.stdout).toMatch(/^last batch 1 at .*: quality \d\.\d{3}/m);

    expect((await ragline(['eval', 'pause', ...target], env)).code).toBe(0);
    expect((await status()).paused).toBe(true);
    expect((await ragline(['eval', 'resume', ...target], env)).code).toBe(0);
    expect((await status()).paused).toBe(false);

    const bad = await ragline(['eval', 'configure', ...target, '--interval', '0'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^ragline: intervalMs must be an integer from 1000/);
    const good = await ragline(['eval', 'configure', ...target, '--batch-size', '7'], env);
    expect(good.stdout.trim()).toBe('every 3600 s, 7 questions per batch');

    expect((await ragline(['eval', 'run-now', ...target], env)).code).toBe(0);
    await waitUntil('the run-now batch of eval:default:cli-set', status, (s) => s.batches >= 2, { intervalMs: 200 });
    const json = JSON.parse((await ragline(['eval', 'status', '--set', 'cli-set', '--json'], env)).stdout) as {
      history: Array<{ batch: number; samples: number }>;
    };
    expect(json.history.map((h) => [h.batch, h.samples])).toEqual([
      [1, 4],
      [2, 7],
    ]);

    const out = path.join(dir, 'report.html');
    const report = await ragline(['eval', 'report', ...target, '--out', out], env);
    expect(report.code).toBe(0);
    const html = await fs.readFile(out, 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('<polyline');
    expect(html).not.toMatch(/<script|<link|src=|@import/);
    await stack.env.client.workflow.getHandle('eval:default:cli-set').terminate('test done');
    // Eleven CLI processes: each starts Node and tsx, which on a loaded machine takes seconds.
  }, 180_000);
});
