import fs from 'node:fs';
import path from 'node:path';
import { DeterminismViolationError } from '@temporalio/workflow';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { workflowBundle } from '../support/ragline.js';

const dir = path.join(import.meta.dirname, 'histories');
const histories = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
const load = (file: string) => JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as Record<string, unknown>;

/** Workflows whose commands depend on their own id (the evaluation names its child queries after it). */
const WORKFLOW_IDS: Record<string, string> = { 'evaluation-continued-as-new.json': 'eval-default-replay-set' };

describe('replay of histories captured from real runs', () => {
  it('has histories to replay', () => {
    expect(histories).toEqual(
      expect.arrayContaining([
        'answer-query-miss.json',
        'answer-query-hit.json',
        'ingest-sample-corpus.json',
        'improvement-approval.json',
        // A cycle sending well-rated questions to the evaluation workflow, behind patched('improvement-eval-proposals').
        'improvement-eval-proposal.json',
        // The degradation ladder behind patched('deadline-ladder-v1').
        'answer-query-stale-cache.json',
        'answer-query-circuit-open.json',
        'answer-query-retrieval-unavailable.json',
        'ingest-manifest-continued.json',
        // A streamed query (options.stream) whose first generation attempt broke mid-stream: no new command.
        'answer-query-streamed-retry.json',
        // An open LLM or store breaker reported by the cache lookup: no activity for it, behind
        // patched('breaker-shortcut-v1').
        'answer-query-breaker-shortcut-llm.json',
        'answer-query-breaker-shortcut-stale.json',
        'answer-query-breaker-shortcut-message.json',
        // Retrieval and generation with a heartbeat timeout, behind patched('activity-heartbeat-v1').
        'answer-query-heartbeat-miss.json',
        // Under 1.5 s left for generation: extractive at once, behind patched('min-remote-generation-v1').
        'answer-query-min-remote-generation.json',
        // A reindex's first run: begin, two staged batches, then continue-as-new.
        'reindex-embeddings.json',
      ]),
    );
    // Histories recorded by older code stay beside the new ones, named by the commit that recorded them.
    expect(histories.filter((file) => /^[0-9a-f]{7}-/.test(file)).length).toBeGreaterThanOrEqual(4);
  });

  it('has an evaluation history with an Update and a continue-as-new', () => {
    const events = (load('evaluation-continued-as-new.json').events as Array<{ eventType: string }>).map(
      (e) => e.eventType,
    );
    expect(events).toContain('EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED');
    expect(events.at(-1)).toBe('EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW');
  });

  it('has an improvement history whose cycle proposes evaluation-set items behind a patch marker', () => {
    const events = load('improvement-eval-proposal.json').events as Array<{
      eventType: string;
      activityTaskScheduledEventAttributes?: { activityType?: { name?: string } };
    }>;
    expect(events.map((e) => e.eventType)).toContain('EVENT_TYPE_MARKER_RECORDED');
    expect(events.map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)).toContain('proposeEvalItems');
  });

  it.each(histories)('replays %s without a determinism violation', async (file) => {
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, load(file), WORKFLOW_IDS[file]);
  });

  it('fails when the workflow code no longer matches a recorded history', async () => {
    const error = await Worker.runReplayHistory(
      { workflowsPath: path.join(import.meta.dirname, 'fixtures/reordered-workflows.ts') },
      load('answer-query-miss.json'),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeterminismViolationError);
  });
});
