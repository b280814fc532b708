import { EventEmitter } from 'node:events';
import type { Cluster, Redis } from 'ioredis';
import { redisClusterNodes, type Config } from '../config.js';
import { createRedisClient } from '../cache/redis-cache.js';
import type { Logger } from '../telemetry/logger.js';

/**
 * What travels on a query's stream channel while its answer is written. The workflow's result stays the answer of
 * record: a `reset` tells listeners to drop what they showed, because a retry or the extractive fallback is writing
 * the answer again from the start. `end` closes an attempt's tokens, so a listener whose result arrives first (it
 * travels another way) knows whether tokens are still in flight.
 */
export type StreamMessage = { type: 'delta'; text: string } | { type: 'reset' } | { type: 'end' };

export type StreamListener = (message: StreamMessage) => void;

/**
 * A side channel for answer tokens, outside Temporal's history (which would otherwise hold every token). Delivery
 * is best effort: a listener that misses messages still gets the whole answer from the workflow's result.
 */
export interface TokenChannel {
  /** `redis`: any process reaches any other; `in-process`: only a worker in the listener's own process does. */
  readonly kind: 'redis' | 'in-process';
  /** The channel of one query, named by its workflow id and scoped by tenant. */
  name(tenant: string, queryId: string): string;
  publish(channel: string, message: StreamMessage): Promise<void>;
  /** Resolves once listening, so anything published after it (a workflow started next) is heard; returns the stop. */
  subscribe(channel: string, listener: StreamListener): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** `<prefix>stream:<tenant>:<query id>`: a tenant never contains ':', so no tenant reads another's channel. */
export function channelName(prefix: string, tenant: string, queryId: string): string {
  return `${prefix}stream:${tenant}:${queryId}`;
}

/** One emitter per process: it reaches a listener only when the worker running the query lives in the same process. */
export class InProcessTokenChannel implements TokenChannel {
  readonly kind = 'in-process' as const;
  private readonly emitter = new EventEmitter().setMaxListeners(0);

  name(tenant: string, queryId: string): string {
    return channelName('ragline:', tenant, queryId);
  }

  async publish(channel: string, message: StreamMessage): Promise<void> {
    this.emitter.emit(channel, message);
  }

  async subscribe(channel: string, listener: StreamListener): Promise<() => Promise<void>> {
    this.emitter.on(channel, listener);
    return async () => {
      this.emitter.off(channel, listener);
    };
  }

  async close(): Promise<void> {
    this.emitter.removeAllListeners();
  }
}

type RedisClient = Redis | Cluster;

export interface RedisTokenChannelOptions {
  url?: string;
  clusterNodes?: string[];
  /** Prefix of channel names, the cache's key prefix. @default ragline: */
  prefix?: string;
  logger?: Logger;
  /** How long a first publish or subscribe waits for Redis (a listener then gets the answer at once). @default 1000 */
  readyTimeoutMs?: number;
}

/**
 * Redis pub/sub: workers publish, API processes and CLIs subscribe, wherever they run. Two connections, opened on
 * first use: a subscriber connection can run nothing else. One subscriber connection serves every listener of the
 * process; each channel is subscribed once and dropped with its last listener.
 */
export class RedisTokenChannel implements TokenChannel {
  readonly kind = 'redis' as const;
  readonly prefix: string;
  private publisher?: RedisClient;
  private subscriber?: RedisClient;
  private readonly listeners = new Map<string, Set<StreamListener>>();

  constructor(private readonly options: RedisTokenChannelOptions) {
    this.prefix = options.prefix ?? 'ragline:';
  }

  name(tenant: string, queryId: string): string {
    return channelName(this.prefix, tenant, queryId);
  }

  private connect(): RedisClient {
    const client = createRedisClient({ url: this.options.url, clusterNodes: this.options.clusterNodes });
    // Without a listener ioredis reports connection errors as unhandled; publish and subscribe report their own.
    client.on('error', (error: unknown) => this.options.logger?.debug({ err: error }, 'stream channel: redis error'));
    return client;
  }

  async publish(channel: string, message: StreamMessage): Promise<void> {
    this.publisher ??= this.connect();
    await ready(this.publisher, this.options.readyTimeoutMs ?? 1000);
    await this.publisher.publish(channel, JSON.stringify(message));
  }

  async subscribe(channel: string, listener: StreamListener): Promise<() => Promise<void>> {
    if (!this.subscriber) {
      const subscriber = this.connect();
      subscriber.on('message', (from: string, payload: string) => {
        let message: StreamMessage;
        try {
          message = JSON.parse(payload) as StreamMessage;
        } catch {
          return;
        }
        for (const deliver of this.listeners.get(from) ?? []) deliver(message);
      });
      this.subscriber = subscriber;
    }
    const subscriber = this.subscriber;
    await ready(subscriber, this.options.readyTimeoutMs ?? 1000);
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
      try {
        await subscriber.subscribe(channel);
      } catch (error) {
        this.listeners.delete(channel);
        throw error;
      }
    }
    set.add(listener);
    return async () => {
      const current = this.listeners.get(channel);
      if (!current?.delete(listener) || current.size > 0) return;
      this.listeners.delete(channel);
      await subscriber.unsubscribe(channel).catch(() => undefined);
    };
  }

  async close(): Promise<void> {
    this.listeners.clear();
    for (const client of [this.publisher, this.subscriber]) client?.disconnect();
    this.publisher = this.subscriber = undefined;
  }
}

/** Resolves once the client is connected; rejects after timeoutMs naming the wait, since commands fail fast offline. */
async function ready(client: RedisClient, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const done = (error?: Error) => {
      clearTimeout(timer);
      client.off('ready', onReady);
      if (error) reject(error);
      else resolve();
    };
    const onReady = () => done();
    const timer = setTimeout(() => done(new Error(`redis not ready after ${timeoutMs} ms`)), timeoutMs);
    client.on('ready', onReady);
  });
}

/**
 * Redis pub/sub when Redis is configured (single node or cluster), else the in-process channel, which reaches a
 * listener only from a worker in the same process (`ragline serve --worker`, `ragline up --api`).
 */
export function createTokenChannel(config: Config, logger?: Logger): TokenChannel {
  const clusterNodes = redisClusterNodes(config);
  if (config.REDIS_URL || (clusterNodes && clusterNodes.length > 0)) {
    return new RedisTokenChannel({ url: config.REDIS_URL, clusterNodes, prefix: config.REDIS_KEY_PREFIX, logger });
  }
  return new InProcessTokenChannel();
}

/** The Redis channel when Redis is configured; undefined otherwise (a process with no worker in it hears nothing). */
export function remoteTokenChannel(config: Config, logger?: Logger): TokenChannel | undefined {
  const channel = createTokenChannel(config, logger);
  return channel.kind === 'redis' ? channel : undefined;
}
