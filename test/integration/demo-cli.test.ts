import fs from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import type { DemoSummary } from '../../cli/commands/demo.js';
import { cliStackEnv, runCli } from '../support/cli.js';

describe('ragline demo --short, through the real CLI', () => {
  // Each test starts its demo stack on a data dir and ports of its own: neither needs the other's.
  const dataDirs: string[] = [];
  const stack = async () => {
    const made = await cliStackEnv('ragline-demo-');
    dataDirs.push(made.dataDir);
    return made;
  };
  afterAll(async () => {
    for (const dir of dataDirs) await fs.rm(dir, { recursive: true, force: true });
  });

  it('starts the stack, answers, simulates load, evaluates, approves an improvement and summarises it', async () => {
    const { env } = await stack();
    const run = await runCli(['demo', '--short', '--exit', '--json'], env, { timeoutMs: 240_000 });
    expect(run.stderr).not.toMatch(/failed/);
    expect(run.code).toBe(0);
    const summary = JSON.parse(run.stdout) as DemoSummary;
    expect(summary.steps.map((s) => `${s.step}: ${s.status}`)).toEqual([
      'ingest the sample corpus: done',
      'answer sample questions: done',
      'simulate users: done',
      'run an evaluation batch: done',
      'run an improvement cycle and approve its proposal: done',
    ]);
    expect(summary.stack).toMatchObject({ temporal: `127.0.0.1:${env.TEMPORAL_PORT}`, embedded: true });
    expect(summary.ingest).toMatchObject({ documents: 50, added: 50, rejected: 0 });
    // Every sample question answered, each started eagerly on the demo's own worker.
    expect(summary.answers).toMatchObject({ asked: 3, answered: 3, eagerStarts: 3 });
    expect(summary.load).toMatchObject({ sent: 6, answered: 6, errors: 0 });
    expect(summary.evaluation).toMatchObject({ questions: 5, errors: 0 });
    expect(summary.evaluation!.ndcg10).toBeGreaterThan(0);
    // The cycle measured a gain too large to apply alone, raised an approval request, and the approval applied it.
    expect(summary.improvement).toMatchObject({
      outcome: 'proposed',
      version: 2,
      proposal: { status: 'approved', decidedBy: 'demo-operator', appliedVersion: 2 },
    });
    expect(summary.improvement!.proposal!.ndcg10After).toBeGreaterThan(summary.improvement!.proposal!.ndcg10Before);
    expect(summary.lookAt).toEqual({
      temporalUi: `http://127.0.0.1:${env.TEMPORAL_UI_PORT}`,
      metrics: `http://127.0.0.1:${env.RAGLINE_METRICS_PORT}/metrics`,
      health: `http://127.0.0.1:${env.RAGLINE_METRICS_PORT}/readyz`,
    });
  }, 300_000);

  it('skips the steps whose input is missing, with a note, and still runs the rest', async () => {
    const { dataDir, env } = await stack();
    const missing = `${dataDir}/no-such-set.jsonl`;
    const run = await runCli(
      ['demo', '--short', '--exit', '--json'],
      { ...env, RAGLINE_EVAL_SET: missing },
      {
        timeoutMs: 240_000,
      },
    );
    expect(run.code).toBe(0);
    const summary = JSON.parse(run.stdout) as DemoSummary;
    expect(summary.steps[0]).toEqual({ step: 'ingest the sample corpus', status: 'done' });
    expect(summary.steps.slice(1).map((s) => s.status)).toEqual(['skipped', 'skipped', 'skipped', 'skipped']);
    for (const step of summary.steps.slice(1)) expect(step.note).toContain(missing);
    expect(summary.answers).toBeUndefined();
    expect(summary.improvement).toBeUndefined();
  }, 300_000);
});
