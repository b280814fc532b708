import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { SerializedError } from 'vitest';
import type { Reporter, TestCase, TestModule, TestSuite } from 'vitest/node';

/** What .ci/run prints: counts that make a red run read red, whatever failed. */
export interface RunSummary {
  passed: number;
  /** Failed tests, plus one per file or describe whose own code failed (a hook, an import), plus unhandled errors. */
  failed: number;
  /** Tests skipped on purpose: those a failed hook or import kept from running are covered by its failure. */
  skipped: number;
  setupFailures: string[];
  unhandledErrors: string[];
}

export const SUMMARY_FILE = 'test-results/summary.json';

/**
 * Writes {@link SUMMARY_FILE} at the end of a run. Vitest's JSON report cannot say why a test was skipped, so it
 * reports a file whose beforeAll failed as skipped tests, and it leaves out errors thrown outside any test: a run
 * that exits 1 could read "0 failed". This reporter reads both from the run itself.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): void {
    const summary: RunSummary = { passed: 0, failed: 0, skipped: 0, setupFailures: [], unhandledErrors: [] };
    const visit = (entity: TestModule | TestSuite, setupFailed: boolean) => {
      const own = entity.errors();
      if (own.length > 0) {
        const name =
          entity.type === 'module' ? entity.relativeModuleId : `${entity.module.relativeModuleId} > ${entity.fullName}`;
        summary.setupFailures.push(`${name}: ${own.map((error) => error.message).join('; ')}`);
      }
      const failed = setupFailed || own.length > 0;
      for (const child of entity.children) {
        if (child.type === 'suite') visit(child, failed);
        else count(child, failed);
      }
    };
    const count = (test: TestCase, setupFailed: boolean) => {
      const state = test.result().state;
      if (state === 'passed') summary.passed += 1;
      else if (state === 'failed') summary.failed += 1;
      else if (!setupFailed) summary.skipped += 1;
    };
    for (const module of modules) visit(module, false);
    summary.unhandledErrors = unhandledErrors.map((error) => `${error.name ?? 'Error'}: ${error.message}`);
    summary.failed += summary.setupFailures.length + summary.unhandledErrors.length;
    mkdirSync(path.dirname(SUMMARY_FILE), { recursive: true });
    writeFileSync(SUMMARY_FILE, `${JSON.stringify(summary, null, 2)}\n`);
  }
}
