import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { HealthStatus } from '../domain.js';
import type { Logger } from '../telemetry/logger.js';
import type { Cache, CacheLock, CacheLookup, CacheSetOptions, InvalidateOptions } from './cache.js';
import { ErrorType, RaglineError } from '../errors.js';
import { decodeEntry, encodeEntry } from './codec.js';

export type RedisCacheOperation = 'get' | 'set' | 'delete' | 'invalidate' | 'lock';

export interface RedisConnectionOptions {
  /** redis:// or rediss:// (TLS); user and password in the URL. With clusterNodes, only its credentials and TLS apply. */
  url?: string;
  /** host:port seeds of a Redis Cluster. */
  clusterNodes?: string[];
  /** Longest a command may take before it counts as failed. @default 200 */
  commandTimeoutMs?: number;
  /** @default 1000 */
  connectTimeoutMs?: number;
}

export interface RedisCacheOptions extends RedisConnectionOptions {
  /** Prefix of every key written. @default ragline: */
  keyPrefix?: string;
  logger?: Logger;
  /** Called for every failed command, so the composition root can count them. */
  onError?: (operation: RedisCacheOperation, error: unknown) => void;
  /** How long a tag keeps naming an entry after the entry expired, for invalidations racing the expiry. @default 60000 */
  tagGraceMs?: number;
}

type Client = Redis | Cluster;

/** Scripts touch one key each, so they run unchanged on a single node and on a cluster. */
interface ScriptedClient {
  ragTagAdd(tagKey: string, member: string, expiresAt: number, now: number, ttlMs: number): Promise<number>;
  ragUnlock(lockKey: string, token: string): Promise<number>;
  ragExtendLock(lockKey: string, token: string, ttlMs: number): Promise<number>;
}

// A tag is a sorted set of entry keys scored by when each entry expires. Every add trims the members already gone,
// so a tag that keeps being used (a popular document) holds only live entries instead of growing for ever; the set's
// own TTL only ever moves up, so it outlives its longest-lived member. PEXPIRE GT would do that but needs Redis 7.
// One key per script, so this runs unchanged on a cluster.
const TAG_ADD_LUA = `
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local ttl = tonumber(ARGV[4])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return redis.call('ZCARD', KEYS[1])`;

// Deletes the lock only if we still hold it: after our TTL lapsed another worker may own it.
const UNLOCK_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

const EXTEND_LOCK_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

/** Keeps reconnecting forever, backing off to 2 s, so the cache comes back by itself when Redis does. */
const reconnectDelay = (times: number): number => Math.min(100 * times, 2000);

function parseNode(seed: string): { host: string; port: number } {
  const [host, port] = seed.trim().split(':');
  return { host: host || '127.0.0.1', port: Number(port || 6379) };
}

/** Connects without waiting: commands fail fast (no offline queue) until the connection is ready. */
export function createRedisClient(options: RedisConnectionOptions): Client {
  const common: RedisOptions = {
    commandTimeout: options.commandTimeoutMs ?? 200,
    connectTimeout: options.connectTimeoutMs ?? 1000,
    maxRetriesPerRequest: 1,
    enableAutoPipelining: true,
  };
  if (options.clusterNodes && options.clusterNodes.length > 0) {
    const auth: RedisOptions = {};
    if (options.url) {
      const url = new URL(options.url);
      if (url.username) auth.username = decodeURIComponent(url.username);
      if (url.password) auth.password = decodeURIComponent(url.password);
      if (url.protocol === 'rediss:') auth.tls = {};
    }
    return new Cluster(options.clusterNodes.map(parseNode), {
      redisOptions: { ...common, ...auth },
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      clusterRetryStrategy: reconnectDelay,
    });
  }
  if (!options.url) throw new TypeError('createRedisClient needs a url or cluster nodes');
  return new Redis(options.url, { ...common, enableOfflineQueue: false, retryStrategy: reconnectDelay });
}

/**
 * The shared cache on Redis or Redis Cluster. A Redis outage never fails a caller: lookups miss, writes are dropped,
 * and both are reported through `onError`; the client reconnects on its own.
 *
 * Cluster: every command touches one key, so no operation is cross-slot. An entry's tags are added before its value
 * is written, so an invalidation can miss an entry only if it races with that entry's own write; results are also
 * versioned by corpus, so such a straggler is never read after the corpus changes.
 */
export class RedisCache implements Cache {
  readonly kind = 'redis' as const;
  readonly client: Client;
  /** Prefix of every key this cache writes. */
  readonly prefix: string;
  private readonly logger: Logger | undefined;
  private readonly onError: RedisCacheOptions['onError'];
  private readonly tagGraceMs: number;
  private degraded = false;

  constructor(options: RedisCacheOptions & { client?: Client }) {
    this.client = options.client ?? createRedisClient(options);
    this.prefix = options.keyPrefix ?? 'ragline:';
    this.logger = options.logger;
    this.onError = options.onError;
    this.tagGraceMs = options.tagGraceMs ?? 60_000;
    this.client.defineCommand('ragTagAdd', { numberOfKeys: 1, lua: TAG_ADD_LUA });
    this.client.defineCommand('ragUnlock', { numberOfKeys: 1, lua: UNLOCK_LUA });
    this.client.defineCommand('ragExtendLock', { numberOfKeys: 1, lua: EXTEND_LOCK_LUA });
    // Without a listener ioredis reports connection errors as unhandled; the commands report their own failures.
    this.client.on('error', (error: unknown) => this.markDegraded('connection', error));
    this.client.on('ready', () => this.recovered());
  }

  /** Resolves true once connected, false if that takes longer than timeoutMs; never rejects. */
  async ready(timeoutMs = 2000): Promise<boolean> {
    if (this.client.status === 'ready') return true;
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.client.off('ready', onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.client.on('ready', onReady);
    });
  }

  async get<T>(key: string): Promise<T | undefined> {
    return (await this.lookup<T>(key)).value;
  }

  async lookup<T>(key: string): Promise<CacheLookup<T>> {
    let raw: string | null;
    try {
      raw = await this.client.get(this.prefix + key);
    } catch (error) {
      this.fail('get', error);
      return { outcome: 'error' };
    }
    this.recovered();
    if (raw === null) return { outcome: 'miss' };
    const value = decodeEntry<T>(raw);
    return value === undefined ? { outcome: 'miss' } : { outcome: 'hit', value };
  }

  async set<T>(key: string, value: T, options: CacheSetOptions): Promise<void> {
    const fullKey = this.prefix + key;
    const raw = encodeEntry(value);
    const ttlMs = Math.max(1, Math.round(options.ttlMs));
    try {
      const scripted = this.client as unknown as ScriptedClient;
      // Members are trimmed a grace period after their entry expires, so an invalidation racing an expiry finds them.
      const now = Date.now();
      const expiresAt = now + ttlMs + this.tagGraceMs;
      await Promise.all(
        [...new Set(options.tags ?? [])].map((tag) =>
          scripted.ragTagAdd(this.tagKey(tag), fullKey, expiresAt, now, ttlMs + this.tagGraceMs),
        ),
      );
      await this.client.set(fullKey, raw, 'PX', ttlMs);
    } catch (error) {
      this.fail('set', error);
    }
  }

  async delete(keys: string[]): Promise<void> {
    try {
      await Promise.all(keys.map((key) => this.client.del(this.prefix + key)));
    } catch (error) {
      this.fail('delete', error);
    }
  }

  async invalidateTags(tags: string[], options?: InvalidateOptions): Promise<number> {
    let dropped = 0;
    try {
      for (const tag of new Set(tags)) {
        const tagKey = this.tagKey(tag);
        const legacyKey = this.legacyTagKey(tag);
        const [members, legacy] = await Promise.all([
          this.client.zrange(tagKey, 0, -1),
          this.client.smembers(legacyKey),
        ]);
        const deleted = await Promise.all([...new Set([...members, ...legacy])].map((m) => this.client.del(m)));
        dropped += deleted.reduce((sum, n) => sum + n, 0);
        await Promise.all([this.client.del(tagKey), this.client.del(legacyKey)]);
      }
    } catch (error) {
      this.fail('invalidate', error);
      if (options?.required)
        throw new RaglineError(ErrorType.Unavailable, `redis cache could not drop tagged entries: ${String(error)}`, {
          cause: error,
        });
    }
    return dropped;
  }

  async tryLock(name: string, ttlMs: number): Promise<CacheLock | 'busy' | 'unavailable'> {
    const lockKey = `${this.prefix}lock:${name}`;
    const token = randomUUID();
    try {
      const acquired = await this.client.set(lockKey, token, 'PX', Math.max(1, Math.round(ttlMs)), 'NX');
      if (acquired !== 'OK') return 'busy';
    } catch (error) {
      this.fail('lock', error);
      return 'unavailable';
    }
    return {
      release: async () => {
        try {
          await (this.client as unknown as ScriptedClient).ragUnlock(lockKey, token);
        } catch (error) {
          // The lock's TTL frees it anyway.
          this.fail('lock', error);
        }
      },
      extend: async (extendMs) => {
        try {
          const scripted = this.client as unknown as ScriptedClient;
          return (await scripted.ragExtendLock(lockKey, token, Math.max(1, Math.round(extendMs)))) === 1;
        } catch (error) {
          this.fail('lock', error);
          return false;
        }
      },
    };
  }

  async health(): Promise<HealthStatus> {
    const started = performance.now();
    try {
      await this.client.ping();
      return { ok: true, latencyMs: performance.now() - started, detail: `redis ${this.client.status}` };
    } catch (error) {
      return {
        ok: false,
        latencyMs: performance.now() - started,
        detail: `redis ${this.client.status}`,
        error: error instanceof Error ? error.message : String(error),
      };
    }
  }

  async close(): Promise<void> {
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }

  /** The sorted set of a tag's entry keys; public so tests and operators can see its size. */
  tagKey(tag: string): string {
    return `${this.prefix}tags:${tag}`;
  }

  /** Plain sets written by versions before trimming; still read by invalidation until they expire on their own. */
  private legacyTagKey(tag: string): string {
    return `${this.prefix}tag:${tag}`;
  }

  private fail(operation: RedisCacheOperation, error: unknown): void {
    this.onError?.(operation, error);
    this.markDegraded(operation, error);
  }

  private recovered(): void {
    if (!this.degraded) return;
    this.degraded = false;
    this.logger?.info('redis cache reachable again');
  }

  /** Logs the first failure of an outage only: a down Redis would otherwise log once per query. */
  private markDegraded(operation: string, error: unknown): void {
    if (this.degraded) return;
    this.degraded = true;
    this.logger?.warn(
      { operation, err: error instanceof Error ? error.message : String(error) },
      'redis cache unavailable; serving without it until it reconnects',
    );
  }
}
