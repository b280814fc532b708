import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli as ragline } from '../support/cli.js';
import { RaglineClient } from '../../client/ragline-client.js';
import { fetchHistory, readHistoryFile, replayHistory } from '../../cli/replay.js';
import { SAMPLE_CORPUS, startRagline, tempDir, workflowBundle, type TestRagline } from '../support/ragline.js';

const HISTORIES = path.resolve(import.meta.dirname, '../replay/histories');

/** The Temporal UI shows and downloads event types as `WorkflowExecutionStarted`, not `EVENT_TYPE_…`. */
const uiEventType = (type: string) =>
  type
    .replace(/^EVENT_TYPE_/, '')
    .toLowerCase()
    .replace(/(^|_)([a-z])/g, (_, __, c: string) => c.toUpperCase());

describe('ragline replay', () => {
  let ragline_: TestRagline;
  let dir: string;
  let broken: string;

  beforeAll(async () => {
    ragline_ = await startRagline();
    dir = await tempDir('ragline-replay-');
    const history = JSON.parse(await fs.readFile(path.join(HISTORIES, 'answer-query-miss.json'), 'utf8')) as {
      events: Array<
        Record<string, unknown> & { activityTaskScheduledEventAttributes?: { activityType: { name: string } } }
      >;
    };
    const scheduled = history.events.find(
      (e) => e.activityTaskScheduledEventAttributes?.activityType.name === 'retrieveChunks',
    );
    scheduled!.activityTaskScheduledEventAttributes!.activityType.name = 'searchChunks';
    broken = path.join(dir, 'broken.json');
    await fs.writeFile(broken, JSON.stringify(history));
  });
  afterAll(async () => {
    await ragline_?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('replays a history in the UI download format', async () => {
    const history = JSON.parse(await fs.readFile(path.join(HISTORIES, 'answer-query-hit.json'), 'utf8')) as {
      events: Array<{ eventType: string }>;
    };
    for (const event of history.events) event.eventType = uiEventType(event.eventType);
    expect(history.events[0]?.eventType).toBe('WorkflowExecutionStarted');
    const file = path.join(dir, 'ui.json');
    await fs.writeFile(file, JSON.stringify(history));
    const report = await replayHistory(await readHistoryFile(file), { workflowBundle: await workflowBundle() });
    expect(report).toMatchObject({ ok: true, workflowType: 'answerQueryWorkflow', events: history.events.length });
  });

  it('fetches a history by workflow id and replays it; an unknown id is bad input', async () => {
    await ragline_.ingest([path.join(SAMPLE_CORPUS, 'webhooks.md')]);
    const client = new RaglineClient(ragline_.env.client, ragline_.taskQueue, { maxQueryChars: 4000 });
    const { queryId } = await client.ask({ query: 'How do I set up webhooks?' });
    const history = await fetchHistory(ragline_.env.client, queryId);
    const report = await replayHistory(history, { workflowId: queryId, workflowBundle: await workflowBundle() });
    expect(report).toMatchObject({ ok: true, workflowId: queryId, workflowType: 'answerQueryWorkflow' });
    await expect(fetchHistory(ragline_.env.client, 'query-default-unknown')).rejects.toThrow(
      /no workflow "query-default-unknown"/,
    );
  });

  it('reports the first non-deterministic event of a broken history, from the CLI', async () => {
    const run = await ragline(['replay', '--file', broken, '--json']);
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as {
      ok: boolean;
      nondeterminism: { eventId: number; eventType: string; message: string };
    };
    expect(report.ok).toBe(false);
    expect(report.nondeterminism).toMatchObject({ eventId: 6, eventType: 'EVENT_TYPE_ACTIVITY_TASK_SCHEDULED' });
    expect(report.nondeterminism.message).toMatch(/searchChunks.*retrieveChunks/);

    const missing = await ragline(['replay', '--file', path.join(dir, 'nope.json')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read');
    const unknown = await ragline(['replay', 'query-default-unknown'], { TEMPORAL_ADDRESS: ragline_.env.address });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no workflow "query-default-unknown"');
  });
});
