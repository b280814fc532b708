import fs from 'node:fs';
import path from 'node:path';
import { DeterminismViolationError } from '@temporalio/workflow';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { workflowBundle } from '../support/ragline.js';

const dir = path.join(import.meta.dirname, 'histories');
const histories = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
const load = (file: string) => JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as Record<string, unknown>;

describe('replay of histories captured from real runs', () => {
  it('has histories to replay', () => {
    expect(histories).toEqual(
      expect.arrayContaining([
        'answer-query-miss.json',
        'answer-query-hit.json',
        'ingest-sample-corpus.json',
        'improvement-approval.json',
      ]),
    );
  });

  it.each(histories)('replays %s without a determinism violation', async (file) => {
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, load(file));
  });

  it('fails when the workflow code no longer matches a recorded history', async () => {
    const error = await Worker.runReplayHistory(
      { workflowsPath: path.join(import.meta.dirname, 'fixtures/reordered-workflows.ts') },
      load('answer-query-miss.json'),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeterminismViolationError);
  });
});
