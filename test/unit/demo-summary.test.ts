import { describe, expect, it } from 'vitest';
import { formatDemo, type DemoSummary } from '../../cli/commands/demo.js';

describe('ragline demo summary', () => {
  it('says what was measured, which steps were skipped or failed and why, and where to look', () => {
    const summary: DemoSummary = {
      tenant: 'demo-x',
      short: true,
      steps: [
        { step: 'ingest the sample corpus', status: 'done' },
        { step: 'answer sample questions', status: 'done' },
        { step: 'simulate users', status: 'failed', note: 'no worker' },
        { step: 'run an evaluation batch', status: 'skipped', note: 'no evaluation set' },
      ],
      stack: { temporal: '127.0.0.1:7233', embedded: true, taskQueue: 'ragline' },
      ingest: { documents: 50, added: 50, rejected: 0, corpusVersion: 1 },
      answers: { asked: 3, answered: 3, degraded: 0, meanQuality: 0.9, eagerStarts: 3 },
      improvement: {
        outcome: 'proposed',
        version: 2,
        proposal: {
          id: 'p2',
          changes: 'topK 1→20',
          status: 'approved',
          decidedBy: 'demo-operator',
          appliedVersion: 2,
          ndcg10Before: 0.59,
          ndcg10After: 0.81,
        },
      },
      lookAt: { temporalUi: 'http://127.0.0.1:8233', metrics: 'http://127.0.0.1:9464/metrics', health: 'h' },
    };
    const text = formatDemo(summary);
    expect(text).toContain('3/3 answered, 0 degraded, mean quality 0.9, 3 started eagerly');
    expect(text).toContain('p2 (topK 1→20; nDCG@10 0.59 → 0.81), approved by demo-operator → parameters version 2');
    expect(text).toContain('FAILED simulate users: no worker');
    expect(text).toContain('SKIPPED run an evaluation batch: no evaluation set');
    expect(text).toContain('Temporal Web UI  http://127.0.0.1:8233');
    expect(text).toContain('metrics          http://127.0.0.1:9464/metrics');
    expect(text).not.toContain('load ');
  });
});
