/**
 * `npm run bench -- <name> [args]` runs bench/<name>.ts. Benchmarks print figures and assert nothing about time;
 * the last stdout line of each is JSON.
 */
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
];
if (!name || !known.includes(name)) {
  console.error(`usage: npm run bench -- <${known.join('|')}> [options]`);
  process.exit(2);
}
const bench = (await import(`./${name}.ts`)) as { run(args: string[]): Promise<void> };
await bench.run(args);
process.exit(0);
