import { createHash, randomBytes } from 'node:crypto';
import { Client, Connection, WorkflowFailedError, type ClientInterceptors } from '@temporalio/client';
import { ApplicationFailure, TypedSearchAttributes } from '@temporalio/common';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { normalizeQuery } from '../lib/cache/keys.js';
import type { Config } from '../lib/config.js';
import { InvalidInputError, RaglineError, ErrorType } from '../lib/errors.js';
import { DEFAULT_TENANT, type AnswerQueryInput, type AnswerQueryResult } from '../workflows/answer-query-types.js';
import {
  getIngestProgressQuery,
  type DeleteDocumentsResult,
  type IngestDocumentsResult,
  type IngestProgress,
} from '../workflows/ingest-types.js';
import { queryInputProblem } from '../workflows/query-validation.js';
import { batchSizeProblem } from '../lib/ingest-limits.js';
import { tenantProblem } from '../lib/tenant.js';
import { tenantSearchAttribute } from '../workflows/search-attributes.js';

/** Where the Temporal frontend is: configured (TEMPORAL_ADDRESS or an envconfig profile), or the embedded server. */
export interface TemporalTarget {
  address: string;
  namespace: string;
  embedded: boolean;
  connectionOptions: Parameters<typeof Connection.connect>[0];
}

export function temporalTarget(config: Config): TemporalTarget {
  const loaded = loadClientConnectConfig();
  const address = loaded.connectionOptions.address;
  if (address) {
    return {
      address,
      namespace: loaded.namespace ?? config.TEMPORAL_NAMESPACE,
      embedded: false,
      connectionOptions: loaded.connectionOptions,
    };
  }
  const embedded = `127.0.0.1:${config.TEMPORAL_PORT}`;
  return {
    address: embedded,
    namespace: config.TEMPORAL_NAMESPACE,
    embedded: true,
    connectionOptions: { address: embedded },
  };
}

/** `query-<tenant>-<hash of the question>-<UTC time>-<random>`: readable in the Temporal UI, unique under load. */
export function queryWorkflowId(tenant: string, query: string, now = new Date()): string {
  const hash = createHash('sha256').update(normalizeQuery(query)).digest('hex').slice(0, 8);
  const time = now.toISOString().replace(/[-:.]/g, '');
  return `query-${tenant}-${hash}-${time}-${randomBytes(2).toString('hex')}`;
}

/** ragline's client API: what the CLI, the HTTP API and applications use to start ragline's workflows. */
export class RaglineClient {
  constructor(
    readonly client: Client,
    readonly taskQueue: string,
    private readonly limits: { maxQueryChars: number; ingestBatch?: number; deadlineMs?: number },
  ) {}

  static async connect(
    config: Config,
    options: { interceptors?: ClientInterceptors; connectTimeoutMs?: number } = {},
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
    return new RaglineClient(client, config.RAGLINE_TASK_QUEUE, {
      maxQueryChars: config.RAGLINE_MAX_QUERY_CHARS,
      ingestBatch: config.RAGLINE_INGEST_BATCH,
      deadlineMs: config.RAGLINE_QUERY_DEADLINE_MS,
    });
  }

  /** Answers a question through the query workflow. Bad input is rejected here, before any workflow starts. */
  async ask(input: AnswerQueryInput): Promise<AnswerQueryResult> {
    const problem = queryInputProblem(input, this.limits);
    if (problem) throw new InvalidInputError(problem);
    const tenant = input.tenant ?? DEFAULT_TENANT;
    // The configured deadline travels with the query: the workflow cannot read the configuration.
    const deadlineMs = input.options?.deadlineMs ?? this.limits.deadlineMs;
    const args = deadlineMs === undefined ? input : { ...input, options: { ...input.options, deadlineMs } };
    return unwrap(
      () =>
        this.client.workflow.execute('answerQueryWorkflow', {
          taskQueue: this.taskQueue,
          workflowId: queryWorkflowId(tenant, input.query),
          args: [args],
          // A worker that dies holding a query's task costs this, not the 10 s default, before another worker
          // takes it over; a query's tasks are short (local activities over it heartbeat the task).
          workflowTaskTimeout: '3s',
          typedSearchAttributes: new TypedSearchAttributes([{ key: tenantSearchAttribute, value: tenant }]),
        }) as Promise<AnswerQueryResult>,
    );
  }

  /** Ingests files or directories, reporting progress as it goes. */
  async ingest(
    paths: string[],
    options: { tenant?: string; onProgress?: (progress: IngestProgress) => void; pollMs?: number } = {},
  ): Promise<IngestDocumentsResult> {
    const tenant = options.tenant ?? DEFAULT_TENANT;
    const problem = tenantProblem(tenant) ?? batchSizeProblem(this.limits.ingestBatch);
    if (problem) throw new InvalidInputError(problem);
    const handle = await this.client.workflow.start('ingestDocumentsWorkflow', {
      taskQueue: this.taskQueue,
      workflowId: `ingest-${tenant}-${new Date().toISOString().replace(/[-:.]/g, '')}-${randomBytes(2).toString('hex')}`,
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
            onProgress(await handle.query(getIngestProgressQuery));
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
          workflowId: `delete-${tenant}-${new Date().toISOString().replace(/[-:.]/g, '')}-${randomBytes(2).toString('hex')}`,
          args: [{ tenant, docIds }],
        }) as Promise<DeleteDocumentsResult>,
    );
  }

  async describeCorpus(tenant = DEFAULT_TENANT, timeoutMs = 5000) {
    const problem = tenantProblem(tenant);
    if (problem) throw new InvalidInputError(problem);
    return unwrap(
      () =>
        this.client.workflow.execute('describeCorpusWorkflow', {
          taskQueue: this.taskQueue,
          workflowId: `describe-${tenant}-${randomBytes(4).toString('hex')}`,
          args: [{ tenant }],
          workflowExecutionTimeout: timeoutMs,
        }) as Promise<{ tenant: string; store: string; documents: number; chunks: number; corpusVersion: number }>,
    );
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
    await this.client.connection.close();
  }
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
