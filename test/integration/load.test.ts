import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import type { LoadReport } from '../../cli/load.js';
import { freePort } from '../support/redis.js';
import { SAMPLE_CORPUS, startRagline, tempDir, type TestRagline } from '../support/ragline.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

const ragline = (args: string[], env: Record<string, string>) => runCli(args, env, { cwd: ROOT, timeoutMs: 120_000 });

describe('ragline load', () => {
  let service: TestRagline;
  let out: string;

  beforeAll(async () => {
    service = await startRagline();
    await service.ingest([SAMPLE_CORPUS]);
    out = path.join(await tempDir('ragline-load-'), 'report.json');
  });
  afterAll(async () => {
    await service?.stop();
  });

  it('refuses impossible arguments in one line with exit code 2, before connecting', async () => {
    const nowhere = { TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}` };
    const cases: Array<[string[], string]> = [
      [['--users', '0'], 'ragline: --users must be a positive integer, got 0\n'],
      [['--rate', '-2'], 'ragline: --rate must be zero or more, got -2\n'],
      [['--new-share', '1.5'], 'ragline: --new-share must be between 0 and 1, got 1.5\n'],
    ];
    const runs = await Promise.all(cases.map(([args]) => ragline(['load', ...args], nowhere)));
    runs.forEach((run, i) => expect(run).toEqual({ code: 2, stdout: '', stderr: cases[i]?.[1] }));
  });

  it('runs every query through the service and reports paths, cache levels and question kinds', async () => {
    const run = await ragline(
      ['load', '--users', '4', '--queries', '5', '--concurrency', '3', '--new-share', '0.2', '--out', out],
      { TEMPORAL_ADDRESS: service.env.address, RAGLINE_TASK_QUEUE: service.taskQueue },
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/20 queries sent by 4 users \(concurrency 3\)/);
    expect(run.stdout).toMatch(/answered 20, errors 0, lost 0/);
    const report = JSON.parse(await fs.readFile(out, 'utf8')) as LoadReport;
    expect(report).toMatchObject({ sent: 20, answered: 20, errors: 0, lost: 0 });
    expect(report.latencyMs.all.count).toBe(20);
    expect(report.latencyMs.hit.count + report.latencyMs.miss.count + report.latencyMs.degraded.count).toBe(20);
    // A Zipf mix repeats its top questions, so some of 20 queries are answered from the cache.
    expect(report.latencyMs.hit.count).toBeGreaterThan(0);
    expect(report.hitRatio.result).toBeGreaterThan(0);
    expect(report.byKind.sample + report.byKind.paraphrase + report.byKind.new).toBe(20);
    expect(report.latencyMs.all.p50).toBeLessThanOrEqual(report.latencyMs.all.p99);
  });
});
