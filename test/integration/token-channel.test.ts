import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AnswerStream } from '../../client/answer-stream.js';
import { RedisTokenChannel, type StreamMessage } from '../../lib/stream/token-channel.js';
import { freePort, TestRedis } from '../support/redis.js';

describe('Redis token channel', () => {
  let redis: TestRedis;
  const channels: RedisTokenChannel[] = [];
  const open = (url: string) => {
    const channel = new RedisTokenChannel({ url, readyTimeoutMs: 1000 });
    channels.push(channel);
    return channel;
  };

  beforeAll(async () => {
    redis = await TestRedis.start();
  });
  afterAll(async () => {
    for (const channel of channels) await channel.close();
    await redis?.stop();
  });

  it('delivers every message in order to each listener of the channel, and nothing after the last one leaves', async () => {
    const publisher = open(redis.url);
    const subscriber = open(redis.url);
    const name = subscriber.name('acme', 'query-1');
    expect(name).toBe('ragline:stream:acme:query-1');
    const first: StreamMessage[] = [];
    const second: StreamMessage[] = [];
    const other: StreamMessage[] = [];
    const stopFirst = await subscriber.subscribe(name, (m) => first.push(m));
    const stopSecond = await subscriber.subscribe(name, (m) => second.push(m));
    await subscriber.subscribe(subscriber.name('default', 'query-1'), (m) => other.push(m));
    const sent: StreamMessage[] = [
      { type: 'delta', text: 'one' },
      { type: 'reset' },
      ...Array.from({ length: 50 }, (_, i) => ({ type: 'delta' as const, text: ` ${i}` })),
    ];
    await Promise.all(sent.map((m) => publisher.publish(name, m)));
    // A marker published last on the same connection arrives last: once it is heard, everything before it was.
    await new Promise<void>((resolve) => {
      void subscriber
        .subscribe(subscriber.name('acme', 'marker'), () => resolve())
        .then(() => publisher.publish(publisher.name('acme', 'marker'), { type: 'reset' }));
    });
    expect(first).toEqual(sent);
    expect(second).toEqual(sent);
    expect(other).toEqual([]);
    await stopFirst();
    const admin = new Redis(redis.port, '127.0.0.1');
    try {
      // One listener left: the channel stays subscribed; none left: it is dropped.
      expect(await admin.pubsub('NUMSUB', name)).toEqual([name, 1]);
      await stopSecond();
      expect(await admin.pubsub('NUMSUB', name)).toEqual([name, 0]);
    } finally {
      admin.disconnect();
    }
  });

  it('with Redis unreachable, subscribing fails within its wait and a stream falls back to the whole answer', async () => {
    const down = open(`redis://127.0.0.1:${await freePort()}`);
    await expect(down.subscribe(down.name('default', 'q'), () => undefined)).rejects.toThrow(/not ready/);
    await expect(down.publish(down.name('default', 'q'), { type: 'reset' })).rejects.toThrow();
    const stream = new AnswerStream('q');
    await stream.listen(down, 'default');
    expect(stream.channel).toBe('none');
  });
});
