import { continueAsNew } from '@temporalio/workflow';
import { ImprovementLoop } from './improvement-loop.js';
import type { ImprovementInput } from '../contracts/improvement.js';

/**
 * Learns from the query log, measures parameter changes before proposing them, applies the small ones itself and
 * holds the large ones for a person. One per tenant (`improve-<tenant>`), long-running: a cycle every interval or on
 * the run-now signal, continue-as-new with its whole state. Its state and handlers live in `ImprovementLoop`.
 */
export async function improvementWorkflow(input: ImprovementInput): Promise<void> {
  const loop = new ImprovementLoop(input);
  loop.registerHandlers();
  await loop.runCycles();
  const state = await loop.handOver();
  // The settings travel inside the state from the first run on.
  await continueAsNew<typeof improvementWorkflow>({ ...input, settings: undefined, state });
}
