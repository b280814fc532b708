/**
 * `npm run bench -- floor [--serial N] [--total N] [--concurrency N]`: the one-no-op-local-activity workflow on a
 * default and on a tuned dev server (see lib/temporal/dev-server.ts), side by side. Last stdout line is JSON:
 * `{ "default": {...}, "tuned": {...} }`, each `{ p50MsSerial, p95MsSerial, qps, ... }`.
 */
import { randomUUID } from 'node:crypto';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { floorWorkflow } from './workflows/index.js';
import { flag, measure, percentile, startBenchStack } from './support.js';

export async function run(args: string[]): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const serial = Number(flag(args, 'serial') ?? 200);
  const total = Number(flag(args, 'total') ?? 1000);
  const concurrency = Number(flag(args, 'concurrency') ?? 16);
  const results: Record<string, unknown> = {};
  for (const variant of ['default', 'tuned'] as const) {
    const stack = await startBenchStack({ tuned: variant === 'tuned' });
    try {
      const serialLatencies: number[] = [];
      const once = async (i: number) => {
        const started = performance.now();
        await stack.client.workflow.execute(floorWorkflow, {
          taskQueue: stack.taskQueue,
          workflowId: `floor-${randomUUID()}`,
        });
        if (i >= 0 && i < serial) serialLatencies.push(performance.now() - started);
      };
      const figures = await measure(once, { serial, total, concurrency });
      serialLatencies.sort((a, b) => a - b);
      results[variant] = {
        p50MsSerial: figures.p50MsSerial,
        p95MsSerial: Math.round(percentile(serialLatencies, 95) * 100) / 100,
        qps: figures.qps,
        p50Ms: figures.p50Ms,
        p95Ms: figures.p95Ms,
        concurrency,
      };
      console.log(`${variant.padEnd(8)} ${JSON.stringify(results[variant])}`);
    } finally {
      await stack.stop();
    }
  }
  console.log(JSON.stringify(results));
}
