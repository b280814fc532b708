/** Workflow entry point of the bench's second worker: ragline's workflows plus the bench-only ones. */
export * from '../workflows/index.js';
export { naiveHitWorkflow } from './naive-hit-workflow.js';
