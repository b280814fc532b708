import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { invalidateDocuments } from '../../lib/cache/index.js';
import { docTag, resultKey, type ResultScope } from '../../lib/cache/keys.js';
import { RedisCache } from '../../lib/cache/redis-cache.js';
import { cachedCompute } from '../../lib/cache/single-flight.js';
import { CLUSTER_BUS_OFFSET, freeClusterPorts, ownRedisServer } from '../support/redis.js';

/** A three-master Redis Cluster on loopback, so keys and their tag sets land on different nodes. */
const children: ChildProcess[] = [];
const ports: number[] = [];
let dir: string;
const caches: RedisCache[] = [];

const cli = (...args: string[]) => spawnSync('redis-cli', args, { encoding: 'utf8', timeout: 10_000 });

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'ragline-cluster-'));
  // Below the ephemeral range, each with its bus port (port + 10000) free too: Redis refuses a cluster port above
  // 55535, and nothing reserves the bus port of an ephemeral one.
  ports.push(...(await freeClusterPorts(3)));
  const outputs = ports.map((port) => {
    const child = spawn(
      'redis-server',
      [
        '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
        '--cluster-enabled', 'yes', '--cluster-port', String(port + CLUSTER_BUS_OFFSET),
        '--cluster-config-file', `nodes-${port}.conf`, '--dir', dir,
      ], // prettier-ignore
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(child);
    let output = '';
    child.stdout?.on('data', (data: Buffer) => (output = (output + data.toString()).slice(-2000)));
    child.stderr?.on('data', (data: Buffer) => (output = (output + data.toString()).slice(-2000)));
    return () => output;
  });
  // Each node is our own child answering, not another process's server on a port taken since it was probed free.
  await Promise.all(children.map((child, i) => ownRedisServer(child, ports[i]!, outputs[i], 10_000)));
  const created = cli(
    '--cluster',
    'create',
    ...ports.map((p) => `127.0.0.1:${p}`),
    '--cluster-replicas',
    '0',
    '--cluster-yes',
  );
  expect(created.status, created.stdout + created.stderr).toBe(0);
  await vi.waitFor(
    () =>
      ports.forEach((port) => expect(cli('-p', String(port), 'cluster', 'info').stdout).toContain('cluster_state:ok')),
    { timeout: 15_000, interval: 100 },
  );
});

afterAll(async () => {
  await Promise.all(caches.map((cache) => cache.close()));
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const open = async () => {
  const cache = new RedisCache({ clusterNodes: ports.map((p) => `127.0.0.1:${p}`), keyPrefix: 'cl:' });
  caches.push(cache);
  expect(await cache.ready(10_000)).toBe(true);
  return cache;
};

describe('redis cluster cache', () => {
  const scope: ResultScope = { tenant: 'acme', corpusVersion: 1, topK: 5, generatorModel: 'extractive' };

  it('stores, tags and invalidates entries spread over every node without cross-slot errors', async () => {
    const cache = await open();
    const keys = Array.from({ length: 30 }, (_, i) => resultKey(scope, `question ${i}`));
    await Promise.all(
      keys.map((key, i) =>
        cache.set(key, { i }, { ttlMs: 60_000, tags: [docTag('acme', `doc-${i % 3}`), docTag('acme', 'all')] }),
      ),
    );
    expect(await Promise.all(keys.map((key) => cache.get(key)))).toEqual(keys.map((_, i) => ({ i })));
    expect(await invalidateDocuments(cache, 'acme', ['doc-0'])).toBe(10);
    expect(await cache.get(keys[0]!)).toBeUndefined();
    expect(await cache.get(keys[1]!)).toEqual({ i: 1 });
    expect(await invalidateDocuments(cache, 'acme', ['all'])).toBe(20);
    await cache.delete(keys);
    expect((await cache.health()).ok).toBe(true);
  });

  it('computes once across two cluster clients', async () => {
    const [a, b] = [await open(), await open()];
    let runs = 0;
    const compute = async () => {
      runs += 1;
      await new Promise((resolve) => setTimeout(resolve, 100));
      return 'once';
    };
    const key = resultKey(scope, 'cluster stampede');
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => cachedCompute(i % 2 ? a : b, key, { ttlMs: 60_000 }, compute)),
    );
    expect(runs).toBe(1);
    expect(results.every((r) => r.value === 'once')).toBe(true);
  });
});
