import { mkdir, open, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import { ErrorType, InvalidInputError, RaglineError } from '../errors.js';
import { paramChanges, paramsProblem, SUPERSEDED_REFUSAL, type ParamVersion, type RetrievalParams } from './params.js';

/** What a change measured before it was applied: the evaluation set's mean nDCG@10 before and after, and the noise. */
export interface MeasuredEffect {
  metric: 'ndcg10';
  before: number;
  after: number;
  /** Two standard errors of the mean per-question difference: a smaller gain is not told apart from chance. */
  noise: number;
  questions: number;
  evalSet: string;
}

export type AuditAction = 'apply' | 'auto-apply' | 'rollback';

/** One line of a tenant's parameter audit log; the log is also the version history. */
export interface AuditEntry {
  seq: number;
  at: string;
  /** The operator, or `improvement-loop` for an automatic change. */
  actor: string;
  action: AuditAction;
  reason: string;
  fromVersion: number;
  toVersion: number;
  params: RetrievalParams;
  changes: ReturnType<typeof paramChanges>;
  effect?: MeasuredEffect;
  proposalId?: string;
  /** Id of the request that made the change, so a retried request finds it instead of writing it twice. */
  changeId?: string;
}

export interface ApplyParamsInput {
  /** The values to change: merged over the version current when the change is written, so a concurrent change to
   * other parameters is kept. */
  params: Partial<RetrievalParams>;
  actor: string;
  action: Exclude<AuditAction, 'rollback'>;
  reason: string;
  effect?: MeasuredEffect;
  proposalId?: string;
  changeId?: string;
  /**
   * The version the change was measured against or decided on. When given, the change is refused if another version
   * is current by the time it is written, instead of silently replacing an operator's change made meanwhile.
   */
  expectedVersion?: number;
}

/** Concurrent writers retry this many times before the change is reported as contended. */
const APPEND_ATTEMPTS = 20;

/** Where audit entries live: one append-only list per tenant. */
export interface AuditBackend {
  entries(tenant: string): Promise<AuditEntry[]>;
  /**
   * Appends only if the tenant's log still holds `expectedLength` entries, atomically; false when another writer got
   * there first. This is what makes version numbers unique under concurrent changes.
   */
  appendAt(tenant: string, entry: AuditEntry, expectedLength: number): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * A tenant's retrieval parameters, versioned and audited. Version 0 is the configured defaults; every apply writes a
 * new version (one more than the highest so far) and a rollback returns to the version that was current before.
 * Reads are memoised for `refreshMs`, so the query path costs no round trip per query and another worker's change
 * is seen within that time; this process's own changes are seen at once.
 */
export class ParamStore {
  private readonly memo = new Map<string, { value: ParamVersion; at: number }>();
  /** One read per tenant at a time, shared by every query that finds the memo expired. */
  private readonly reading = new Map<string, Promise<ParamVersion>>();
  /** Tenants whose last read failed: their queries keep the last version while one read retries behind them. */
  private readonly failing = new Set<string>();

  constructor(
    private readonly backend: AuditBackend,
    private readonly defaults: RetrievalParams,
    private readonly refreshMs = 1000,
    private readonly onReadError?: (tenant: string, error: unknown) => void,
    /** A read that takes longer counts as failed: a Redis client queueing commands while it reconnects must not
     * hold a query's retrieval until its deadline. */
    private readonly readTimeoutMs = 1000,
  ) {}

  /**
   * The live version. When the backend cannot be read (Redis down) the query path keeps the last version it read —
   * or the defaults if it never read one — and tries again after `refreshMs`: a parameter store outage must not
   * turn into a retrieval outage. While it is failing, queries do not wait for those retries (each would cost them up
   * to `readTimeoutMs`, several times per query): one read runs in the background and the next query sees its result.
   */
  async current(tenant: string): Promise<ParamVersion> {
    const memo = this.memo.get(tenant);
    if (memo && performance.now() - memo.at < this.refreshMs) return memo.value;
    const read = this.reading.get(tenant) ?? this.read(tenant);
    return memo && this.failing.has(tenant) ? memo.value : read;
  }

  /** The read in flight for `tenant` if there is one (a query just got the last version without it), else `current`. */
  async settled(tenant: string): Promise<ParamVersion> {
    return this.reading.get(tenant) ?? this.current(tenant);
  }

  private read(tenant: string): Promise<ParamVersion> {
    const read = (async () => {
      let value: ParamVersion;
      try {
        value = currentOf(await this.boundedEntries(tenant), this.defaults);
        this.failing.delete(tenant);
      } catch (error) {
        this.onReadError?.(tenant, error);
        this.failing.add(tenant);
        value = this.memo.get(tenant)?.value ?? { version: 0, params: this.defaults };
      }
      this.memo.set(tenant, { value, at: performance.now() });
      this.reading.delete(tenant);
      return value;
    })();
    this.reading.set(tenant, read);
    return read;
  }

  private async boundedEntries(tenant: string): Promise<AuditEntry[]> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`parameter store did not answer within ${this.readTimeoutMs} ms`)),
        this.readTimeoutMs,
      );
    });
    try {
      return await Promise.race([this.backend.entries(tenant), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  async history(tenant: string): Promise<AuditEntry[]> {
    return this.backend.entries(tenant);
  }

  /** Applies a whole parameter set as a new version. Out-of-bounds values are refused and nothing is written. */
  async apply(tenant: string, input: ApplyParamsInput): Promise<AuditEntry> {
    if (input.reason.trim() === '') throw new InvalidInputError('a parameter change needs a reason');
    return this.write(tenant, input.changeId, (entries, current) => {
      if (input.expectedVersion !== undefined && current.version !== input.expectedVersion)
        throw new InvalidInputError(
          `the change was measured against version ${input.expectedVersion}, but version ${current.version} ${SUPERSEDED_REFUSAL}`,
        );
      // Merged and checked against the version this write appends to, not one read earlier.
      const params = { ...current.params, ...input.params };
      const problem = paramsProblem(params as unknown as Record<string, unknown>);
      if (problem) throw new InvalidInputError(`parameters refused: ${problem}`);
      return {
        actor: input.actor,
        action: input.action,
        reason: input.reason,
        fromVersion: current.version,
        toVersion: Math.max(0, ...entries.map((e) => e.toVersion)) + 1,
        params,
        changes: paramChanges(current.params, params),
        effect: input.effect,
        proposalId: input.proposalId,
        changeId: input.changeId,
      };
    });
  }

  /** Returns to the version that was current before the current one. */
  async rollback(tenant: string, actor: string, reason: string, changeId?: string): Promise<AuditEntry> {
    if (reason.trim() === '') throw new InvalidInputError('a rollback needs a reason');
    return this.write(tenant, changeId, (entries, current) => {
      if (current.version === 0)
        throw new RaglineError(ErrorType.NotFound, `tenant ${tenant} has no version to roll back`);
      const made = [...entries].reverse().find((e) => e.toVersion === current.version && e.action !== 'rollback');
      const previous = made?.fromVersion ?? 0;
      const params = paramsOf(entries, previous, this.defaults);
      return {
        actor,
        action: 'rollback',
        reason,
        fromVersion: current.version,
        toVersion: previous,
        params,
        changes: paramChanges(current.params, params),
        changeId,
      };
    });
  }

  /**
   * Reads the log, builds the next entry from it and appends it only if nobody appended meanwhile; otherwise reads
   * again. Two concurrent changes so get distinct versions, each computed from the other's result. A change whose
   * id is already in the log it appends to was written before (a retried request): that entry is returned and
   * nothing is written, which the append's length check makes atomic.
   */
  private async write(
    tenant: string,
    changeId: string | undefined,
    next: (entries: AuditEntry[], current: ParamVersion) => Omit<AuditEntry, 'seq' | 'at'>,
  ): Promise<AuditEntry> {
    for (let attempt = 0; attempt < APPEND_ATTEMPTS; attempt++) {
      const entries = await this.backend.entries(tenant);
      const done = changeId === undefined ? undefined : entries.find((e) => e.changeId === changeId);
      if (done) return done;
      const entry: AuditEntry = {
        seq: entries.length + 1,
        at: new Date().toISOString(),
        ...next(entries, currentOf(entries, this.defaults)),
      };
      if (await this.backend.appendAt(tenant, entry, entries.length)) {
        this.memo.set(tenant, { value: { version: entry.toVersion, params: entry.params }, at: performance.now() });
        return entry;
      }
      // Another writer won this round: a short random pause keeps the next rounds from colliding in step.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * (attempt + 1)));
    }
    throw new RaglineError(
      ErrorType.Unavailable,
      `the parameters of tenant ${tenant} kept changing under ${APPEND_ATTEMPTS} attempts to write; try again`,
    );
  }

  close(): Promise<void> {
    return this.backend.close();
  }
}

function currentOf(entries: AuditEntry[], defaults: RetrievalParams): ParamVersion {
  const last = entries.at(-1);
  // A version written before a parameter existed meant the configured value for it.
  return last ? { version: last.toVersion, params: { ...defaults, ...last.params } } : { version: 0, params: defaults };
}

function paramsOf(entries: AuditEntry[], version: number, defaults: RetrievalParams): RetrievalParams {
  if (version === 0) return defaults;
  const params = [...entries].reverse().find((e) => e.toVersion === version)?.params;
  return params ? { ...defaults, ...params } : defaults;
}

/** Audit lines in `<dataDir>/params/<tenant>.audit.jsonl`; one process owns a data directory. */
export class DiskAuditBackend implements AuditBackend {
  /**
   * @param onTornLine told of a line that is not an entry (a write cut short by a crash); the line is skipped, so one
   * torn line never makes a tenant's parameters unreadable.
   */
  constructor(
    private readonly dir: string,
    private readonly onTornLine?: (tenant: string, line: number) => void,
  ) {}

  private file(tenant: string): string {
    return path.join(this.dir, `${encodeURIComponent(tenant)}.audit.jsonl`);
  }

  private async text(tenant: string): Promise<string> {
    return readFile(this.file(tenant), 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
  }

  async entries(tenant: string): Promise<AuditEntry[]> {
    return this.parse(tenant, await this.text(tenant));
  }

  private parse(tenant: string, text: string): AuditEntry[] {
    const entries: AuditEntry[] = [];
    text.split('\n').forEach((line, i) => {
      if (line.trim() === '') return;
      try {
        entries.push(JSON.parse(line) as AuditEntry);
      } catch {
        this.onTornLine?.(tenant, i + 1);
      }
    });
    return entries;
  }

  /** Writers of one tenant's file in this process, one after another (one process owns a data directory). */
  private readonly queues = new Map<string, Promise<unknown>>();

  async appendAt(tenant: string, entry: AuditEntry, expectedLength: number): Promise<boolean> {
    const run = async () => {
      const text = await this.text(tenant);
      if (this.parse(tenant, text).length !== expectedLength) return false;
      await mkdir(this.dir, { recursive: true });
      const handle = await open(this.file(tenant), 'a');
      try {
        // After a torn last line (no newline), the entry starts a line of its own instead of extending the torn one.
        const separator = text === '' || text.endsWith('\n') ? '' : '\n';
        await handle.writeFile(`${separator}${JSON.stringify(entry)}\n`);
        // An acknowledged change survives a crash: the audit log is the version history.
        await handle.sync();
      } finally {
        await handle.close();
      }
      return true;
    };
    const queued = (this.queues.get(tenant) ?? Promise.resolve()).then(run, run);
    this.queues.set(
      tenant,
      queued.catch(() => undefined),
    );
    return queued;
  }

  async close(): Promise<void> {}
}

/** Appends an entry only if the list still has the expected length (KEYS[1] list, ARGV[1] length, ARGV[2] entry). */
const APPEND_AT_SCRIPT = `if redis.call('LLEN', KEYS[1]) == tonumber(ARGV[1]) then redis.call('RPUSH', KEYS[1], ARGV[2]) return 1 end return 0`;

/** Audit entries in one Redis list per tenant, shared by every worker. */
export class RedisAuditBackend implements AuditBackend {
  constructor(
    private readonly client: Redis | Cluster,
    private readonly prefix: string,
  ) {}

  private key(tenant: string): string {
    return `${this.prefix}params:{${encodeURIComponent(tenant)}}:audit`;
  }

  async entries(tenant: string): Promise<AuditEntry[]> {
    const rows = await this.client.lrange(this.key(tenant), 0, -1);
    return rows.map((row) => JSON.parse(row) as AuditEntry);
  }

  async appendAt(tenant: string, entry: AuditEntry, expectedLength: number): Promise<boolean> {
    const written = await this.client.eval(
      APPEND_AT_SCRIPT,
      1,
      this.key(tenant),
      expectedLength,
      JSON.stringify(entry),
    );
    return written === 1;
  }

  async close(): Promise<void> {}
}
