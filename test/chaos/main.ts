/**
 * `npm run chaos [-- --scale N] [--store qdrant|embedded] [--only sigkill,redis,...] [--timeline]`: the long fault
 * list on the real stack, one load phase per fault, printing for each the queries sent, answered, degraded by reason,
 * lost, p99 latency, breaker transitions and the slowest query, then the JSON. With Qdrant (the default) both workers
 * share one real Qdrant behind a fault proxy, and the store's faults (failing, hanging) are in the list; the
 * embedded index cannot fail that way. `--only` runs the warm-up and the faults named (sigkill, redis, llm-500,
 * llm-429, llm-hang, store-500, store-hang, temporal); `--timeline` prints the slowest query's history per phase.
 */
import { formatFault, phase, startStack, timeline, untilClosed, type FaultReport } from './harness.js';

const FAULTS = ['sigkill', 'redis', 'llm-500', 'llm-429', 'llm-hang', 'store-500', 'store-hang', 'temporal'] as const;

const arg = (name: string) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const scale = Math.max(1, Number(arg('--scale')) || 1);
const storeArg = arg('--store') ?? 'qdrant';
if (storeArg !== 'qdrant' && storeArg !== 'embedded') {
  console.error(`--store must be qdrant or embedded, got ${storeArg}`);
  process.exit(2);
}
const only = arg('--only')
  ?.split(',')
  .map((f) => f.trim());
const unknown = only?.filter((f) => !(FAULTS as readonly string[]).includes(f)) ?? [];
if (unknown.length > 0 || only?.length === 0) {
  console.error(`--only takes a comma-separated list of ${FAULTS.join(', ')}; got ${arg('--only') ?? 'nothing'}`);
  process.exit(2);
}
const wanted = (fault: (typeof FAULTS)[number]) => !only || only.includes(fault);
const showTimeline = process.argv.includes('--timeline');
const stack = await startStack({ workers: 2, store: storeArg });
const reports: FaultReport[] = [];
const run = async (...args: Parameters<typeof phase>) => {
  const report = await phase(...args);
  reports.push(report);
  console.log(formatFault(report));
  if (showTimeline && report.slowest) console.log(`  ${await timeline(stack, report.slowest.queryId)}`);
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
try {
  await run(stack, 'no fault (warm-up)', { users: 8, queries: 5 * scale });

  let killed = false;
  if (wanted('sigkill'))
    await run(
      stack,
      'worker SIGKILL mid-load',
      { users: 8, queries: 5 * scale },
      {
        during: (done) => {
          if (!killed && done >= 10) {
            killed = true;
            stack.workers[1]?.child.kill('SIGKILL');
          }
        },
        after: async () => {
          await stack.startWorker('worker-3');
        },
      },
    );

  let redisBack: Promise<void> | undefined;
  if (wanted('redis'))
    await run(
      stack,
      'redis-server stopped for 30 s, then restarted',
      { users: 4, queries: 10 * scale },
      {
        before: () => stack.redis.stop(),
        during: (done) => {
          if (done === 1) redisBack ??= sleep(30_000).then(() => stack.redis.restart());
        },
        // The phase's queries may all be answered within the 30 s: the next phases must not run with Redis still
        // down, nor may a restart after the stack has stopped leave a redis-server behind.
        after: async () => {
          await redisBack;
        },
      },
    );
  await sleep(1000);

  for (const [name, fault, mode] of [
    ['llm-500', 'LLM returning 500s', { kind: 'server-error', status: 500 }],
    ['llm-429', 'LLM returning 429 with Retry-After', { kind: 'rate-limit', retryAfter: '1' }],
    ['llm-hang', 'LLM hanging', { kind: 'hang' }],
  ] as const) {
    if (!wanted(name)) continue;
    await run(
      stack,
      fault,
      { users: 4, queries: 5 * scale, seed: fault.length * 7 },
      {
        before: async () => {
          stack.llm.mode = mode;
        },
        after: async () => {
          stack.llm.mode = { kind: 'answer' };
        },
      },
    );
  }

  const proxy = stack.storeProxy;
  if (proxy) {
    for (const [name, fault, mode] of [
      ['store-500', 'vector store returning 500s', 'fail'],
      ['store-hang', 'vector store hanging', 'hang'],
    ] as const) {
      if (!wanted(name)) continue;
      const since = stack.transitions().length;
      // Half the questions are new, so they miss every cache level and reach the store.
      await run(
        stack,
        fault,
        { users: 4, queries: 5 * scale, seed: fault.length * 13, newShare: 0.5 },
        { before: async () => proxy.set(mode), after: async () => proxy.set('pass') },
      );
      const recovery = await untilClosed(stack, 'store', since, { seed: fault.length * 1000 });
      reports.push(...recovery);
      console.log(`  ${recovery.length} recovery phase(s) of new questions until the store breakers closed`);
    }
  }

  let restarted: Promise<void> | undefined;
  if (wanted('temporal'))
    await run(
      stack,
      'Temporal dev server restarted on its SQLite file',
      { users: 4, queries: 5 * scale, seed: 99 },
      {
        during: (done) => {
          if (done === 4) restarted ??= stack.restartTemporal();
        },
        after: async () => {
          await restarted;
        },
      },
    );
} finally {
  await stack.stop();
}
const lost = reports.reduce((n, r) => n + r.lost + r.errors, 0);
console.log(
  JSON.stringify(
    reports.map(({ load: _load, ...r }) => r),
    null,
    2,
  ),
);
console.log(lost === 0 ? 'chaos: nothing lost' : `chaos: ${lost} queries lost or failed`);
process.exit(lost === 0 ? 0 : 1);
