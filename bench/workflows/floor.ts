import { proxyLocalActivities } from '@temporalio/workflow';
import type { createActivities } from '../../activities/index.js';

const { noop } = proxyLocalActivities<ReturnType<typeof createActivities>>({ startToCloseTimeout: '5s' });

/**
 * The cheapest useful workflow: one no-op local activity. Every latency goal is a ratio to this one, measured on
 * the same server in the same run, so figures carry over between machines. Bench-only: the benches and the replay
 * test run it from bench/workflows/index.ts; the production worker's bundle (workflows/index.ts) leaves it out.
 */
export async function floorWorkflow(): Promise<void> {
  await noop();
}
