import { appendFile, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../telemetry/logger.js';

/** One answered query as the improvement loop reads it. */
export interface QueryRecord {
  queryId: string;
  /** ISO time the answer was returned. */
  at: string;
  tenant: string;
  /**
   * The question, normalised (case, whitespace, trailing punctuation folded); with query redaction on
   * (RAGLINE_LOG_REDACT_QUERIES) its hash, `sha256:<16 hex>`, instead, and `redacted` is set.
   */
  question: string;
  /** The question is stored as a hash: identical questions are recognisable, their words are not. */
  redacted?: boolean;
  cache: { result: string; semantic?: string; llm?: string };
  cacheHit: boolean;
  /** Document ids of the sources, best first. */
  sources: string[];
  qualityScore: number;
  degraded: boolean;
  fallbackReason?: string;
  latencyMs: number;
}

export interface FeedbackRecord {
  queryId: string;
  tenant: string;
  at: string;
  /** 1 (useless) to 5 (exactly right). */
  score: number;
  comment?: string;
}

export interface QueryLogWindow {
  queries: QueryRecord[];
  feedback: FeedbackRecord[];
}

export interface QueryLogLimits {
  /** Records older than this are dropped. */
  retentionMs: number;
  /** Records kept per tenant at most (the oldest go first). */
  maxEntries: number;
}

/** The query log's storage: Redis Streams when Redis is configured, JSON Lines files on disk otherwise. */
export interface QueryLogStore {
  append(records: QueryRecord[]): Promise<void>;
  /** The tenant of a logged query, or undefined when it is not in the log (unknown or aged out). */
  find(queryId: string): Promise<{ tenant: string } | undefined>;
  addFeedback(feedback: FeedbackRecord): Promise<void>;
  /** A tenant's records and feedback since `sinceMs` (epoch ms), oldest first. */
  read(tenant: string, sinceMs: number): Promise<QueryLogWindow>;
  close(): Promise<void>;
}

/**
 * Redis Streams, one for queries and one for feedback per tenant. Every XADD trims by size (MAXLEN ~) and each
 * batch trims by age (XTRIM MINID ~), so a stream is bounded both ways without a sweeper. A `qlog:id:<queryId>`
 * key with the retention as TTL answers "is this a logged query" in one round trip.
 */
export class RedisQueryLog implements QueryLogStore {
  constructor(
    private readonly client: Redis | Cluster,
    private readonly prefix: string,
    private readonly limits: QueryLogLimits,
  ) {}

  private stream(tenant: string, kind: 'queries' | 'feedback'): string {
    return `${this.prefix}qlog:{${encodeURIComponent(tenant)}}:${kind}`;
  }

  private idKey(queryId: string): string {
    return `${this.prefix}qlog:id:${queryId}`;
  }

  async append(records: QueryRecord[]): Promise<void> {
    const minId = String(Date.now() - this.limits.retentionMs);
    // Every command of a batch is issued at once, not one MULTI (on a cluster the id keys live in other slots than
    // the stream): the client's auto-pipelining sends them in one write per node. Trimming by age once per stream
    // per batch is enough, since MINID drops everything older at once; each XADD still trims by size.
    const streams = new Set<string>();
    const commands: Array<Promise<unknown>> = [];
    for (const record of records) {
      const stream = this.stream(record.tenant, 'queries');
      streams.add(stream);
      commands.push(
        this.client.xadd(stream, 'MAXLEN', '~', this.limits.maxEntries, '*', 'r', JSON.stringify(record)),
        this.client.set(this.idKey(record.queryId), record.tenant, 'PX', this.limits.retentionMs),
      );
    }
    await Promise.all(commands);
    await Promise.all([...streams].map((stream) => this.client.xtrim(stream, 'MINID', '~', minId)));
  }

  async find(queryId: string): Promise<{ tenant: string } | undefined> {
    const tenant = await this.client.get(this.idKey(queryId));
    return tenant === null ? undefined : { tenant };
  }

  async addFeedback(feedback: FeedbackRecord): Promise<void> {
    const stream = this.stream(feedback.tenant, 'feedback');
    await this.client.xadd(stream, 'MAXLEN', '~', this.limits.maxEntries, '*', 'r', JSON.stringify(feedback));
    await this.client.xtrim(stream, 'MINID', '~', String(Date.now() - this.limits.retentionMs));
  }

  async read(tenant: string, sinceMs: number): Promise<QueryLogWindow> {
    const rows = async <T>(kind: 'queries' | 'feedback'): Promise<T[]> =>
      (await this.client.xrange(this.stream(tenant, kind), String(sinceMs), '+')).flatMap(([, fields]) => {
        const at = fields.indexOf('r');
        return at >= 0 && fields[at + 1] !== undefined ? [JSON.parse(fields[at + 1]!) as T] : [];
      });
    return { queries: await rows<QueryRecord>('queries'), feedback: await rows<FeedbackRecord>('feedback') };
  }

  /** The client is shared with the parameter store; its owner disconnects it. */
  async close(): Promise<void> {}
}

type DiskLine = ({ kind: 'query' } & QueryRecord) | ({ kind: 'feedback' } & FeedbackRecord);

/**
 * JSON Lines per tenant under `<dataDir>/query-log/`. Appends are cheap; a file is rewritten (temp + rename) without
 * its aged-out or surplus lines once it holds a fifth more than `maxEntries`, or at the first append of a new hour.
 * One process owns a data directory, so an in-memory id index answers `find`.
 */
export class DiskQueryLog implements QueryLogStore {
  private ids: Map<string, string> | undefined;
  private readonly lineCounts = new Map<string, number>();
  private lastCompactionHour = new Map<string, number>();

  constructor(
    private readonly dir: string,
    private readonly limits: QueryLogLimits,
  ) {}

  private file(tenant: string): string {
    return path.join(this.dir, `${encodeURIComponent(tenant)}.jsonl`);
  }

  private async lines(tenant: string): Promise<DiskLine[]> {
    const text = await readFile(this.file(tenant), 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
    return text.split('\n').flatMap((line) => {
      if (line.trim() === '') return [];
      try {
        return [JSON.parse(line) as DiskLine];
      } catch {
        // A torn last line after a crash loses that one record, not the log.
        return [];
      }
    });
  }

  private async index(): Promise<Map<string, string>> {
    if (this.ids) return this.ids;
    const ids = new Map<string, string>();
    await mkdir(this.dir, { recursive: true });
    for (const name of await readdir(this.dir)) {
      if (!name.endsWith('.jsonl')) continue;
      const tenant = decodeURIComponent(name.slice(0, -'.jsonl'.length));
      const lines = await this.lines(tenant);
      this.lineCounts.set(tenant, lines.length);
      for (const line of lines) if (line.kind === 'query') ids.set(line.queryId, tenant);
    }
    this.ids = ids;
    return ids;
  }

  async append(records: QueryRecord[]): Promise<void> {
    const ids = await this.index();
    const byTenant = new Map<string, QueryRecord[]>();
    for (const r of records) byTenant.set(r.tenant, [...(byTenant.get(r.tenant) ?? []), r]);
    for (const [tenant, rows] of byTenant) {
      await appendFile(this.file(tenant), rows.map((r) => `${JSON.stringify({ kind: 'query', ...r })}\n`).join(''));
      for (const r of rows) ids.set(r.queryId, tenant);
      this.lineCounts.set(tenant, (this.lineCounts.get(tenant) ?? 0) + rows.length);
      await this.compactIfDue(tenant);
    }
  }

  async find(queryId: string): Promise<{ tenant: string } | undefined> {
    const tenant = (await this.index()).get(queryId);
    return tenant === undefined ? undefined : { tenant };
  }

  async addFeedback(feedback: FeedbackRecord): Promise<void> {
    await this.index();
    await appendFile(this.file(feedback.tenant), `${JSON.stringify({ kind: 'feedback', ...feedback })}\n`);
    this.lineCounts.set(feedback.tenant, (this.lineCounts.get(feedback.tenant) ?? 0) + 1);
  }

  async read(tenant: string, sinceMs: number): Promise<QueryLogWindow> {
    const window: QueryLogWindow = { queries: [], feedback: [] };
    for (const { kind, ...line } of await this.lines(tenant)) {
      if (Date.parse(line.at) < sinceMs) continue;
      if (kind === 'query') window.queries.push(line as QueryRecord);
      else window.feedback.push(line as FeedbackRecord);
    }
    return window;
  }

  private async compactIfDue(tenant: string): Promise<void> {
    const hour = Math.floor(Date.now() / 3_600_000);
    const count = this.lineCounts.get(tenant) ?? 0;
    if (count <= this.limits.maxEntries * 1.2 && this.lastCompactionHour.get(tenant) === hour) return;
    this.lastCompactionHour.set(tenant, hour);
    const cutoff = Date.now() - this.limits.retentionMs;
    const kept = (await this.lines(tenant))
      .filter((line) => Date.parse(line.at) >= cutoff)
      .slice(-this.limits.maxEntries);
    const tmp = `${this.file(tenant)}.tmp`;
    await writeFile(tmp, kept.map((line) => `${JSON.stringify(line)}\n`).join(''));
    await rename(tmp, this.file(tenant));
    this.lineCounts.set(tenant, kept.length);
    const ids = await this.index();
    for (const [id, owner] of ids) if (owner === tenant) ids.delete(id);
    for (const line of kept) if (line.kind === 'query') ids.set(line.queryId, tenant);
  }

  async close(): Promise<void> {}
}

/**
 * Takes records from the query workflow's sink without waiting and writes them in batches, so logging never adds
 * latency to a query and a log outage never fails one (the batch is dropped and a warning logged).
 */
export class QueryLogWriter {
  private buffer: QueryRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    readonly store: QueryLogStore,
    private readonly options: { flushMs?: number; batch?: number; logger?: Logger } = {},
  ) {}

  enqueue(record: QueryRecord): void {
    this.buffer.push(record);
    if (this.buffer.length >= (this.options.batch ?? 100)) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.options.flushMs ?? 250);
  }

  /** Writes whatever is buffered; resolves once it and every earlier flush are done. */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.buffer;
    this.buffer = [];
    this.flushing = this.flushing.then(async () => {
      if (batch.length === 0) return;
      try {
        await this.store.append(batch);
      } catch (error) {
        this.options.logger?.warn(
          { err: error instanceof Error ? error.message : String(error), records: batch.length },
          'query log write dropped',
        );
      }
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    await this.flush();
    await this.store.close();
  }
}
