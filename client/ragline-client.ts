import { createHash, randomBytes } from 'node:crypto';
import {
  Client,
  Connection,
  WorkflowFailedError,
  WorkflowNotFoundError,
  type ClientInterceptors,
} from '@temporalio/client';
import { ApplicationFailure, TimeoutFailure, TypedSearchAttributes } from '@temporalio/common';
import { normalizeQuery } from '../lib/cache/keys.js';
import { redactionKey, type Config } from '../lib/config.js';
import { redactQuery } from '../lib/redact.js';
import { temporalTarget } from '../lib/temporal/target.js';
import { InvalidInputError, RaglineError, ErrorType } from '../lib/errors.js';
import {
  DEFAULT_DEADLINE_MS,
  DEFAULT_TENANT,
  type AnswerQueryInput,
  type AnswerQueryResult,
} from '../contracts/query.js';
import { getIngestProgressQuery, type DeleteDocumentsResult, type IngestDocumentsResult } from '../contracts/ingest.js';
import { queryInputProblem } from '../contracts/query.js';
import { batchSizeProblem } from '../lib/ingest-limits.js';
import { tenantProblem, tenantScopedId } from '../lib/tenant.js';
import { tenantSearchAttribute } from '../contracts/search-attributes.js';
import { remoteTokenChannel, type TokenChannel } from '../lib/stream/token-channel.js';
import { AnswerStream } from './answer-stream.js';
import { batchInFlight, type IngestProgressReport } from './ingest-progress.js';
import { EvaluationClient } from './evaluation-client.js';
import { ImprovementClient } from './improvement-client.js';
import { reindexProgress, runReindex } from './reindex-client.js';
import type { ReindexEmbeddingsResult, ReindexProgress } from '../contracts/reindex.js';

export type { IngestProgressReport } from './ingest-progress.js';

/** `<UTC time>-<random>`: orders a tenant's runs in the Temporal UI and keeps them unique under load. */
function runSuffix(now = new Date()): string {
  return `${now.toISOString().replace(/[-:.]/g, '')}-${randomBytes(2).toString('hex')}`;
}

/** `query:<tenant>:<hash of the question>-<UTC time>-<random>`: readable in the Temporal UI, unique under load. */
export function queryWorkflowId(tenant: string, query: string, now = new Date()): string {
  const hash = createHash('sha256').update(normalizeQuery(query)).digest('hex').slice(0, 8);
  return tenantScopedId('query', tenant, `${hash}-${runSuffix(now)}`);
}

/** Characters of the question shown as a query workflow's summary in the Temporal UI's list. */
const SUMMARY_CHARS = 80;

/**
 * What the Temporal UI lists for a query workflow: the question on one line, shortened; or, when query redaction is
 * on, the same hash the logs carry, so an operator can still match a row to its log lines.
 */
export function querySummary(query: string, redactKey: string | undefined): string {
  if (redactKey !== undefined) return `query ${redactQuery(normalizeQuery(query), redactKey)}`;
  const flat = query.replace(/\s+/g, ' ').trim();
  return flat.length <= SUMMARY_CHARS ? flat : `${flat.slice(0, SUMMARY_CHARS - 1)}…`;
}

/**
 * Time a query workflow may wait for a worker and queue behind others, beyond its own deadline, before the client
 * gives up on it. Past deadline + this, the run is timed out by the server, so nothing waits forever.
 */
export const QUEUE_SLACK_MS = 5000;

/** A query run the server timed out; `reason` is a stable code, the message is written for the caller. */
export class QueryTimeoutError extends RaglineError {
  constructor(
    readonly reason: 'NoWorker' | 'QueryTimedOut',
    message: string,
  ) {
    super(ErrorType.Unavailable, message);
  }
}

/** Where an asynchronous query stands, as `GET /v1/queries/:id` reports it. */
export type QueryState =
  | { queryId: string; status: 'running' }
  | { queryId: string; status: 'completed'; result: AnswerQueryResult }
  | { queryId: string; status: 'failed'; error: { type: string; message: string } };

export interface ClientLimits {
  maxQueryChars: number;
  ingestBatch?: number;
  /** Deadline sent with every query that sets none (RAGLINE_QUERY_DEADLINE_MS). */
  deadlineMs?: number;
  /** Show a keyed hash instead of the question in the Temporal UI (RAGLINE_LOG_REDACT_QUERIES): the key. */
  redactKey?: string;
  /** The configured approvers allowlist (RAGLINE_APPROVERS), put in force before every decision. */
  approvers?: readonly string[];
  /**
   * Ask the server to hand the first workflow task straight back to a worker in this process (eager start), saving
   * the matching round trip. Only helps when this client shares its NativeConnection with a worker on the same task
   * queue; without a free slot the server starts the workflow normally.
   */
  eagerStart?: boolean;
  /**
   * Told how each query workflow was started: eagerly (its first task handed to this process's worker) or normally
   * (no worker slot was free, or none shares the connection). The API counts it in `rag_query_starts_total`.
   */
  onStarted?: (start: { queryId: string; eager: boolean }) => void;
}

export interface ClientStreams {
  /**
   * Where `askStream` listens for answer tokens: Redis pub/sub (any worker), or the in-process channel of a worker
   * hosted in this process. Unset: streamed queries deliver their final answer at once.
   */
  tokens?: TokenChannel;
  /** Close `tokens` with the client (the client opened it). */
  ownsTokens?: boolean;
}

/**
 * ragline's client API: what the CLI, the HTTP API and applications use to start ragline's workflows. Like the
 * Temporal `Client` (`client.workflow`, `client.schedule`), the long-running workflows get a sub-client each, made
 * once over the same Temporal client and task queue: `ragline.evaluation`, `ragline.improvement`.
 */
export class RaglineClient {
  /** Continuous evaluation of a tenant's sets, and one-off passes over a set. */
  readonly evaluation: EvaluationClient;
  /** The improvement loop (its proposals, approvals and parameters) and feedback on answers. */
  readonly improvement: ImprovementClient;

  constructor(
    readonly client: Client,
    readonly taskQueue: string,
    private readonly limits: ClientLimits,
    private readonly streams: ClientStreams = {},
  ) {
    this.evaluation = new EvaluationClient(client, taskQueue);
    this.improvement = new ImprovementClient(client, taskQueue, limits.approvers);
  }

  static async connect(
    config: Config,
    options: { interceptors?: ClientInterceptors; connectTimeoutMs?: number; tokens?: TokenChannel } = {},
  ): Promise<RaglineClient> {
    const target = temporalTarget(config);
    let connection: Connection;
    try {
      connection = await Connection.connect({
        ...target.connectionOptions,
        connectTimeout: options.connectTimeoutMs ?? 5000,
      });
    } catch (error) {
      const hint = target.embedded ? ' — start it with `make start` (or `ragline up`)' : '';
      throw new RaglineError(
        ErrorType.Unavailable,
        `no Temporal server at ${target.address}${hint} (${error instanceof Error ? error.message : String(error)})`,
      );
    }
    const client = new Client({ connection, namespace: target.namespace, interceptors: options.interceptors });
    // A worker hosted in this process lends its channel; otherwise Redis's, opened on the first askStream only.
    const tokens = options.tokens ?? remoteTokenChannel(config);
    return new RaglineClient(
      client,
      config.RAGLINE_TASK_QUEUE,
      {
        maxQueryChars: config.RAGLINE_MAX_QUERY_CHARS,
        ingestBatch: config.RAGLINE_INGEST_BATCH,
        deadlineMs: config.RAGLINE_QUERY_DEADLINE_MS,
        redactKey: redactionKey(config),
        approvers: config.RAGLINE_APPROVERS,
      },
      { tokens, ownsTokens: options.tokens === undefined },
    );
  }

  /**
   * Answers a question through the query workflow. Bad input is rejected here, before any workflow starts. The run
   * is bounded by its deadline plus {@link QUEUE_SLACK_MS}: with no worker polling, the caller gets a clear
   * `DependencyUnavailable` naming the task queue instead of waiting forever.
   */
  async ask(input: AnswerQueryInput): Promise<AnswerQueryResult> {
    const handle = await this.startQuery(input);
    return this.unwrapQuery(() => handle.result() as Promise<AnswerQueryResult>);
  }

  /** How streamed answers reach this client: see {@link AnswerStream.channel}. */
  get streaming(): 'redis' | 'in-process' | 'none' {
    return this.streams.tokens?.kind ?? 'none';
  }

  /**
   * Answers a question as it is written: listens on the query's stream channel, then starts the workflow, and yields
   * its tokens followed by the final result (the same one {@link ask} returns). Bad input is rejected here, before
   * anything starts. With no channel reaching this process (`stream.channel === 'none'`) the final result arrives at
   * once when the workflow completes. Abandoning the stream never cancels the workflow.
   */
  async askStream(input: AnswerQueryInput): Promise<AnswerStream> {
    const problem = queryInputProblem(input, this.limits);
    if (problem) throw new InvalidInputError(problem);
    const tenant = input.tenant ?? DEFAULT_TENANT;
    const stream = new AnswerStream(queryWorkflowId(tenant, input.query));
    await stream.listen(this.streams.tokens, tenant);
    let handle;
    try {
      handle = await this.startQuery({ ...input, options: { ...input.options, stream: true } }, stream.queryId);
    } catch (error) {
      await stream.close();
      throw error;
    }
    const started = handle;
    stream.follow(this.unwrapQuery(() => started.result() as Promise<AnswerQueryResult>));
    return stream;
  }

  /** Starts the query workflow and returns its id at once; {@link queryState} reports how it went. */
  async startAsk(input: AnswerQueryInput): Promise<{ queryId: string; eagerlyStarted: boolean }> {
    const handle = await this.startQuery(input);
    return { queryId: handle.workflowId, eagerlyStarted: handle.eagerlyStarted };
  }

  private async startQuery(input: AnswerQueryInput, workflowId?: string) {
    const problem = queryInputProblem(input, this.limits);
    if (problem) throw new InvalidInputError(problem);
    const tenant = input.tenant ?? DEFAULT_TENANT;
    // The configured deadline travels with the query: the workflow cannot read the configuration.
    const deadlineMs = input.options?.deadlineMs ?? this.limits.deadlineMs;
    const args = deadlineMs === undefined ? input : { ...input, options: { ...input.options, deadlineMs } };
    const summary = querySummary(input.query, this.limits.redactKey);
    const handle = await this.client.workflow.start('answerQueryWorkflow', {
      taskQueue: this.taskQueue,
      workflowId: workflowId ?? queryWorkflowId(tenant, input.query),
      args: [args],
      workflowExecutionTimeout: queryTimeoutMs(args),
      // A worker that dies holding a query's task costs this, not the 10 s default, before another worker
      // takes it over; a query's tasks are short (local activities over it heartbeat the task).
      workflowTaskTimeout: '3s',
      typedSearchAttributes: new TypedSearchAttributes([{ key: tenantSearchAttribute, value: tenant }]),
      // Start options, not workflow commands: the UI's list shows them and the histories' command sequence is unchanged.
      staticSummary: summary,
      memo: { tenant, question: summary },
      requestEagerStart: this.limits.eagerStart,
    });
    this.limits.onStarted?.({ queryId: handle.workflowId, eager: handle.eagerlyStarted });
    return handle;
  }

  /**
   * State of a query workflow, or `undefined` when there is none with that id in `tenant` (another tenant's query
   * is reported as missing, so its existence does not leak).
   */
  async queryState(queryId: string, tenant: string): Promise<QueryState | undefined> {
    const handle = this.client.workflow.getHandle(queryId);
    let description;
    try {
      description = await handle.describe();
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return undefined;
      throw error;
    }
    if (description.type !== 'answerQueryWorkflow') return undefined;
    if ((description.typedSearchAttributes.get(tenantSearchAttribute) ?? DEFAULT_TENANT) !== tenant) return undefined;
    if (description.status.name === 'RUNNING') return { queryId, status: 'running' };
    try {
      const result = await this.unwrapQuery(() => handle.result() as Promise<AnswerQueryResult>);
      return { queryId, status: 'completed', result };
    } catch (error) {
      if (error instanceof RaglineError)
        return { queryId, status: 'failed', error: { type: error.type, message: error.message } };
      throw error;
    }
  }

  /** A run that timed out is reported as what it most likely was: no worker on the queue, or a stuck query. */
  private async unwrapQuery<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await unwrap(run);
    } catch (error) {
      if (error instanceof WorkflowFailedError && error.cause instanceof TimeoutFailure) {
        const workers = await this.workerCount().catch(() => undefined);
        throw workers === 0
          ? new QueryTimeoutError(
              'NoWorker',
              `no worker is polling task queue "${this.taskQueue}" — start one with \`make start\` (or \`ragline up\`)`,
            )
          : new QueryTimeoutError(
              'QueryTimedOut',
              `the query did not finish within its deadline plus ${QUEUE_SLACK_MS} ms`,
            );
      }
      throw error;
    }
  }

  /**
   * Ingests files or directories, reporting progress as it goes: documents per finished batch, and within the
   * batch in flight the chunks embedded so far (from its activity's heartbeat), so a long batch shows movement.
   */
  async ingest(
    paths: string[],
    options: { tenant?: string; onProgress?: (progress: IngestProgressReport) => void; pollMs?: number } = {},
  ): Promise<IngestDocumentsResult> {
    const tenant = options.tenant ?? DEFAULT_TENANT;
    const batch = this.limits.ingestBatch;
    const problem = tenantProblem(tenant) ?? (batch === undefined ? undefined : batchSizeProblem(batch));
    if (problem) throw new InvalidInputError(problem);
    const handle = await this.client.workflow.start('ingestDocumentsWorkflow', {
      taskQueue: this.taskQueue,
      workflowId: tenantScopedId('ingest', tenant, runSuffix()),
      args: [{ paths, tenant, batchSize: this.limits.ingestBatch }],
      typedSearchAttributes: new TypedSearchAttributes([{ key: tenantSearchAttribute, value: tenant }]),
    });
    const result = unwrap(() => handle.result() as Promise<IngestDocumentsResult>);
    if (options.onProgress) {
      const onProgress = options.onProgress;
      let done = false;
      void result.finally(() => (done = true)).catch(() => undefined);
      const poll = async () => {
        while (!done) {
          try {
            const [progress, batch] = await Promise.all([handle.query(getIngestProgressQuery), batchInFlight(handle)]);
            onProgress(batch ? { ...progress, batch } : progress);
          } catch {
            // The workflow may complete between the check and the query; the result reports the end state.
          }
          await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 250));
        }
      };
      void poll();
    }
    return result;
  }

  async deleteDocuments(docIds: string[], tenant = DEFAULT_TENANT): Promise<DeleteDocumentsResult> {
    const problem = tenantProblem(tenant);
    if (problem) throw new InvalidInputError(problem);
    return unwrap(
      () =>
        this.client.workflow.execute('deleteDocumentsWorkflow', {
          taskQueue: this.taskQueue,
          workflowId: tenantScopedId('delete', tenant, runSuffix()),
          args: [{ tenant, docIds }],
        }) as Promise<DeleteDocumentsResult>,
    );
  }

  /**
   * Re-embeds a tenant with the workers' configured embedder (or joins the reindex already running) and waits for the
   * switch, reporting progress as it goes. Queries keep answering from the current index meanwhile.
   */
  async reindexEmbeddings(
    options: {
      tenant?: string;
      batchChunks?: number;
      heartbeatTimeoutSeconds?: number;
      onProgress?: (progress: ReindexProgress) => void;
      pollMs?: number;
    } = {},
  ): Promise<ReindexEmbeddingsResult> {
    return runReindex(this.client, { ...options, taskQueue: this.taskQueue });
  }

  /** The tenant's latest reindex progress, or undefined when it never had one. */
  async reindexProgress(tenant = DEFAULT_TENANT): Promise<ReindexProgress | undefined> {
    return reindexProgress(this.client, tenant);
  }

  /** Workers polling ragline's task queue, so the CLI can say so instead of waiting on a queue nobody serves. */
  async workerCount(): Promise<number> {
    const response = await this.client.workflowService.describeTaskQueue({
      namespace: this.client.options.namespace,
      taskQueue: { name: this.taskQueue },
    });
    return response.pollers?.length ?? 0;
  }

  async close(): Promise<void> {
    if (this.streams.ownsTokens) await this.streams.tokens?.close();
    await this.client.connection.close();
  }
}

/** How long a query workflow may run in all: its deadline plus the time to reach a worker. */
export function queryTimeoutMs(input: AnswerQueryInput): number {
  return (input.options?.deadlineMs ?? DEFAULT_DEADLINE_MS) + QUEUE_SLACK_MS;
}

/** A failed workflow surfaces as the RaglineError its ApplicationFailure describes. */
async function unwrap<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof WorkflowFailedError && error.cause instanceof ApplicationFailure) {
      const type = (error.cause.type ?? ErrorType.Unavailable) as ErrorType;
      throw new RaglineError(type, error.cause.message);
    }
    throw error;
  }
}
