import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import { MemoryCache } from '../../lib/cache/memory-cache.js';
import { loadConfig } from '../../lib/config.js';
import type { AnswerGenerator, GeneratedAnswer, GenerateRequest } from '../../lib/domain.js';
import { chunkDocument } from '../../lib/ingest/chunker.js';
import { EmbeddedStore } from '../../lib/retrieval/embedded-store.js';
import { createLogger } from '../../lib/telemetry/logger.js';
import { createMetrics } from '../../lib/telemetry/metrics.js';
import { createRuntime } from '../../workers/runtime.js';

/** MockActivityEnvironment.run loses the activity's result type; this keeps it. */
const call = <I, O>(env: MockActivityEnvironment, activity: (input: I) => Promise<O>, input: I): Promise<O> =>
  env.run(activity, input) as Promise<O>;

/** Cites what it is told to, and for a held request answers only when released or when its signal aborts. */
class ScriptedGenerator implements AnswerGenerator {
  readonly model = 'scripted';
  citations: number[] = [];
  requests: GenerateRequest[] = [];
  aborted = 0;
  private release: (() => void) | undefined;
  hold = false;

  async generate(request: GenerateRequest): Promise<GeneratedAnswer> {
    this.requests.push(request);
    if (this.hold) {
      await new Promise<void>((resolve, reject) => {
        this.release = resolve;
        request.signal?.addEventListener('abort', () => {
          this.aborted += 1;
          reject(new Error('generation aborted'));
        });
      });
    }
    return { answer: 'Rotate keys with the admin CLI [2].', citations: this.citations, model: this.model };
  }

  finish(): void {
    this.release?.();
  }

  async health() {
    return { ok: true, latencyMs: 0 };
  }
}

const TENANT = 'acme';
const QUESTION = 'How do I rotate signing keys?';

describe('generateAnswer', () => {
  let dir: string;
  let store: EmbeddedStore;
  let chunkId: string;
  const generator = new ScriptedGenerator();
  let activities: ReturnType<typeof createActivities>;
  const metrics = createMetrics();

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ragline-generate-'));
    store = await EmbeddedStore.open(dir);
    const doc = chunkDocument(
      { id: 'keys', title: 'Key rotation', text: 'Rotate signing keys with the admin CLI every ninety days.' },
      800,
    );
    await store.upsertDocuments(TENANT, [doc]);
    chunkId = doc.chunks[0]!.id;
    const runtime = await createRuntime(loadConfig({ RAGLINE_DATA_DIR: dir }), {
      store,
      cache: new MemoryCache(),
      generator,
      logger: createLogger({ level: 'silent' }),
      metrics,
    });
    activities = createActivities(runtime.deps);
  });

  afterAll(async () => {
    await store.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('scores citations by their number when an earlier retrieved chunk has gone missing', async () => {
    generator.hold = false;
    // Hit 1 was deleted between retrieval and generation; the surviving chunk keeps its number, [2].
    const hits = [
      { chunkId: 'keys-deleted#0', score: 2 },
      { chunkId, score: 1 },
    ];
    const env = new MockActivityEnvironment();
    generator.citations = [2];
    const cited = await call(env, activities.generateAnswer, { query: QUESTION, tenant: TENANT, hits });
    expect(generator.requests.at(-1)?.chunks.map((c) => c.n)).toEqual([2]);
    generator.citations = [];
    const uncited = await call(env, activities.generateAnswer, { query: QUESTION, tenant: TENANT, hits });
    // Citing the source that covers the question scores above not citing at all, and fully.
    expect(cited.qualityScore).toBe(1);
    expect(uncited.qualityScore).toBeLessThan(cited.qualityScore);
  });

  it('records the groundedness of each generated answer: supported by its cited chunk, or not when it cites another', async () => {
    generator.hold = false;
    const hits = [
      { chunkId: 'keys-deleted#0', score: 2 },
      { chunkId, score: 1 },
    ];
    const env = new MockActivityEnvironment();
    const sum = async () =>
      (await metrics.answerGroundedness.get()).values.find((v) => v.metricName === 'rag_answer_groundedness_sum')
        ?.value ?? 0;
    const before = await sum();
    generator.citations = [2];
    await call(env, activities.generateAnswer, { query: QUESTION, tenant: TENANT, hits });
    // The answer 'Rotate keys with the admin CLI [2].' is held by chunk [2]: fully grounded.
    expect((await sum()) - before).toBe(1);
  });

  it('heartbeats while a generation outlasts a third of its heartbeat timeout, so a dead worker is noticed', async () => {
    generator.hold = true;
    generator.citations = [1];
    const input = { query: QUESTION, tenant: TENANT, hits: [{ chunkId, score: 1 }] };
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 300 });
    let beats = 0;
    env.on('heartbeat', () => {
      beats += 1;
      // Released only by heartbeats: without them this generation would hold until the test times out.
      if (beats === 2) generator.finish();
    });
    const answer = await call(env, activities.generateAnswer, input);
    expect(answer.citations).toEqual([1]);
    expect(beats).toBeGreaterThanOrEqual(2);
    // Scheduled without a heartbeat timeout (older histories), the activity sends none.
    generator.hold = false;
    const quiet = new MockActivityEnvironment();
    let quietBeats = 0;
    quiet.on('heartbeat', () => (quietBeats += 1));
    await call(quiet, activities.generateAnswer, input);
    expect(quietBeats).toBe(0);
  });

  it('keeps a shared generation running when one of the queries that joined it is cancelled', async () => {
    generator.hold = true;
    generator.aborted = 0;
    generator.citations = [1];
    const before = generator.requests.length;
    const input = { query: QUESTION, tenant: TENANT, hits: [{ chunkId, score: 1 }], flightKey: 'flight-one' };
    const first = new MockActivityEnvironment();
    const second = new MockActivityEnvironment();
    const firstRun = call(first, activities.generateAnswer, input);
    const secondRun = call(second, activities.generateAnswer, input);
    await expect.poll(() => generator.requests.length).toBe(before + 1);

    first.cancel();
    await expect(firstRun).rejects.toThrow();
    expect(generator.aborted).toBe(0);

    generator.finish();
    const answer = await secondRun;
    expect(answer.citations).toEqual([1]);
    // One generation served both.
    expect(generator.requests.length).toBe(before + 1);
  });

  it('aborts the shared generation once every query that joined it is cancelled', async () => {
    generator.hold = true;
    generator.aborted = 0;
    const before = generator.requests.length;
    const input = { query: QUESTION, tenant: TENANT, hits: [{ chunkId, score: 1 }], flightKey: 'flight-two' };
    const first = new MockActivityEnvironment();
    const second = new MockActivityEnvironment();
    const firstRun = call(first, activities.generateAnswer, input);
    const secondRun = call(second, activities.generateAnswer, input);
    await expect.poll(() => generator.requests.length).toBe(before + 1);

    second.cancel();
    await expect(secondRun).rejects.toThrow();
    expect(generator.aborted).toBe(0);
    first.cancel();
    await expect(firstRun).rejects.toThrow();
    expect(generator.aborted).toBe(1);
  });
});
