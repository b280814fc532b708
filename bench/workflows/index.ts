/**
 * The workflow entry point of benches and tests: ragline's production workflows (workflows/index.ts, all the
 * production worker bundles) plus the bench-only ones, under their usual type names, so the saved histories of
 * `floorWorkflow` still replay (test/replay bundles this entry through test/support/ragline.ts).
 */
export * from '../../workflows/index.js';
export { floorWorkflow } from './floor.js';
export { naiveHitWorkflow } from './naive-hit.js';
