/**
 * `npm run chaos [-- --scale N] [--store qdrant|embedded]`: the long fault list on the real stack, one load phase per
 * fault, printing for each the queries sent, answered, degraded by reason, lost, p99 latency and breaker
 * transitions, then the JSON. With Qdrant (the default) both workers share one real Qdrant behind a fault proxy, and
 * the store's faults (failing, hanging) are in the list; the embedded index cannot fail that way.
 */
import { formatFault, phase, startStack, untilClosed, type FaultReport } from './harness.js';

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
const stack = await startStack({ workers: 2, store: storeArg });
const reports: FaultReport[] = [];
const run = async (...args: Parameters<typeof phase>) => {
  const report = await phase(...args);
  reports.push(report);
  console.log(formatFault(report));
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
try {
  await run(stack, 'no fault (warm-up)', { users: 8, queries: 5 * scale });

  let killed = false;
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

  await run(
    stack,
    'redis-server stopped for 30 s, then restarted',
    { users: 4, queries: 10 * scale },
    {
      before: () => stack.redis.stop(),
      during: (done) => {
        if (done === 1) void sleep(30_000).then(() => stack.redis.restart());
      },
    },
  );
  await sleep(1000);

  for (const [fault, mode] of [
    ['LLM returning 500s', { kind: 'server-error', status: 500 }],
    ['LLM returning 429 with Retry-After', { kind: 'rate-limit', retryAfter: '1' }],
    ['LLM hanging', { kind: 'hang' }],
  ] as const) {
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
    for (const [fault, mode] of [
      ['vector store returning 500s', 'fail'],
      ['vector store hanging', 'hang'],
    ] as const) {
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
