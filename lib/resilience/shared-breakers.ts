import type { Cluster, Redis } from 'ioredis';
import { createRedisClient } from '../cache/redis-cache.js';
import type { Logger } from '../telemetry/logger.js';
import type { BreakerState, Breakers, Dependency } from './breakers.js';

/**
 * The dependencies whose breaker news travels between workers. Not the cache: Redis carries the news, so a Redis
 * outage could not be shared anyway, and each worker's own cache breaker already turns it into instant misses.
 */
export const SHARED_DEPENDENCIES = ['store', 'llm', 'embedder'] as const satisfies readonly Dependency[];
type SharedDependency = (typeof SHARED_DEPENDENCIES)[number];

/** What one worker tells the others; also the value of the key that lets a worker started later catch up. */
export interface BreakerNews {
  dependency: SharedDependency;
  state: 'open' | 'closed';
  /** Epoch ms until which the others hold their breaker open (`open` only). */
  until?: number;
  /** The worker that saw it. */
  by: string;
}

export interface BreakerSharingOptions {
  url?: string;
  clusterNodes?: string[];
  /** REDIS_KEY_PREFIX: the channel and keys live under it. */
  keyPrefix: string;
  /** Names this worker in the news it sends, and lets it ignore its own. */
  workerId: string;
  logger?: Logger;
}

type RedisClient = Redis | Cluster;

/**
 * Shares breaker openings between the workers of one deployment through Redis (RAGLINE_BREAKER_SHARED). When a
 * worker's breaker for the store, the LLM or the embedder opens, it publishes the news and leaves a key that
 * expires with its open period; every other worker holds its own breaker open until then, so the outage costs
 * the deployment one window of failed calls instead of one per worker. When that worker's half-open probe succeeds,
 * it publishes the recovery and the others let calls through again.
 *
 * Sharing is best effort: with Redis unreachable each worker's breakers work on their own, and on reconnecting a
 * worker reads the keys again to catch up with what it missed.
 */
export class BreakerSharing {
  private readonly publisher: RedisClient;
  private readonly subscriber: RedisClient;
  private readonly channel: string;

  private constructor(
    private readonly breakers: Breakers,
    private readonly options: BreakerSharingOptions,
  ) {
    this.channel = `${options.keyPrefix}breakers`;
    this.publisher = this.connect();
    this.subscriber = this.connect();
  }

  /** Starts listening and catching up; it never fails start-up, even with Redis down. */
  static start(breakers: Breakers, options: BreakerSharingOptions): BreakerSharing {
    const sharing = new BreakerSharing(breakers, options);
    sharing.listen();
    for (const dependency of SHARED_DEPENDENCIES) {
      breakers[dependency].onStateChange((state, retryAfterMs) => sharing.tell(dependency, state, retryAfterMs));
    }
    return sharing;
  }

  private connect(): RedisClient {
    const client = createRedisClient({ url: this.options.url, clusterNodes: this.options.clusterNodes });
    client.on('error', (error: unknown) => this.options.logger?.debug({ err: error }, 'breaker sharing: redis error'));
    return client;
  }

  private key(dependency: SharedDependency): string {
    return `${this.options.keyPrefix}breaker:${dependency}`;
  }

  private listen(): void {
    this.subscriber.on('message', (_channel: string, payload: string) => this.hear(payload));
    // On every (re)connection: ioredis resubscribes by itself once a subscription succeeded, but news sent while
    // this worker was cut off is only in the keys.
    this.subscriber.on('ready', () => {
      void this.subscriber.subscribe(this.channel).catch((error: unknown) => {
        this.options.logger?.warn({ err: error }, 'breaker sharing: could not subscribe');
      });
    });
    this.publisher.on('ready', () => void this.catchUp());
  }

  private async catchUp(): Promise<void> {
    try {
      const values = await Promise.all(SHARED_DEPENDENCIES.map((d) => this.publisher.get(this.key(d))));
      for (const value of values) if (value) this.hear(value);
    } catch (error) {
      this.options.logger?.debug({ err: error }, 'breaker sharing: could not read the open breakers');
    }
  }

  private hear(payload: string): void {
    const news = parseNews(payload);
    if (!news || news.by === this.options.workerId) return;
    const breaker = this.breakers[news.dependency];
    if (news.state === 'open' && news.until !== undefined) {
      breaker.holdOpen(news.until, news.by);
      this.options.logger?.warn(
        { dependency: news.dependency, by: news.by, until: new Date(news.until).toISOString() },
        'circuit breaker held open: another worker saw the dependency fail',
      );
    } else if (news.state === 'closed') {
      breaker.release(news.by);
    }
  }

  private tell(dependency: SharedDependency, state: BreakerState, retryAfterMs: number): void {
    const by = this.options.workerId;
    const news: BreakerNews | undefined =
      state === 'open'
        ? { dependency, state, until: Date.now() + retryAfterMs, by }
        : state === 'closed'
          ? { dependency, state, by }
          : undefined;
    if (!news) return;
    const payload = JSON.stringify(news);
    const key = this.key(dependency);
    const write =
      news.state === 'open'
        ? this.publisher.set(key, payload, 'PX', Math.max(1, retryAfterMs))
        : this.publisher.del(key);
    void Promise.all([write, this.publisher.publish(this.channel, payload)]).catch((error: unknown) => {
      this.options.logger?.debug({ err: error, dependency }, 'breaker sharing: could not tell the other workers');
    });
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.publisher.quit(), this.subscriber.quit()]);
  }
}

function parseNews(payload: string): BreakerNews | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const news = value as Partial<BreakerNews>;
  if (!(SHARED_DEPENDENCIES as readonly string[]).includes(news.dependency ?? '')) return undefined;
  if (typeof news.by !== 'string') return undefined;
  if (news.state === 'open' && typeof news.until === 'number' && Number.isFinite(news.until))
    return news as BreakerNews;
  if (news.state === 'closed') return news as BreakerNews;
  return undefined;
}
