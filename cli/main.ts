import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig, type Config } from '../lib/config.js';
import { ErrorType, InvalidInputError, RaglineError } from '../lib/errors.js';
import { runHealthChecks, startTelemetryServer } from '../lib/telemetry/telemetry-server.js';
import { createMetrics } from '../lib/telemetry/metrics.js';
import { createLogger } from '../lib/telemetry/logger.js';
import { createApiToken } from '../lib/api-tokens.js';
import { startTracing, temporalClientInterceptors, type Tracing } from '../lib/telemetry/tracing.js';
import type { AnswerQueryResult } from '../contracts/query.js';
import type { IngestDocumentsResult } from '../contracts/ingest.js';
import type { ReindexEmbeddingsResult, ReindexProgress } from '../contracts/reindex.js';
import { queryInputProblem } from '../contracts/query.js';
import { Client } from '@temporalio/client';
import { registerDemoCommand } from './commands/demo.js';
import { registerEvalCommands } from './commands/eval.js';
import { DEFAULT_LOAD, formatReport, readSampleQuestions, runLoad, validateLoadOptions } from './load.js';
import { RaglineClient, type IngestProgressReport } from '../client/ragline-client.js';
import { temporalTarget } from '../lib/temporal/target.js';
import type { AnswerStream } from '../client/answer-stream.js';
import { ImprovementClient, improvementSettings } from '../client/improvement-client.js';
import { feedbackProblem } from '../lib/improve/feedback.js';
import { PARAM_BOUNDS, paramsProblem, type RetrievalParams } from '../lib/improve/params.js';
import type { ImprovementStatus, ParamProposal } from '../contracts/improvement.js';

/** Exit codes: 1 a failure, 2 bad input or configuration, 3 done but some documents were rejected. */
const EXIT = { failure: 1, badInput: 2, partial: 3 } as const;

const program = new Command('ragline')
  .description('Retrieval-augmented generation on Temporal')
  .showHelpAfterError()
  .configureOutput({ outputError: (text, write) => write(text) });

const positiveInt = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
};

program
  .command('up')
  .description('start the Temporal dev server (unless one is configured), the worker, and ingest the sample corpus')
  .option('--no-sample', 'do not ingest the sample corpus into an empty index')
  .option('--api', 'serve the HTTP API too, on RAGLINE_HTTP_PORT')
  .action(async (options: { sample: boolean; api?: boolean }) => {
    const config = loadConfig();
    const { startWorkerProcess } = await import('../workers/main.js');
    const target = temporalTarget(config);
    console.error(
      target.embedded ? 'starting the embedded Temporal dev server…' : `using Temporal at ${target.address}`,
    );
    const proc = await startWorkerProcess(config);
    let api: { url: string; close: () => Promise<void> } | undefined;
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      console.error(`\n${signal}: stopping the worker${proc.server ? ' and the dev server' : ''}…`);
      await api?.close().catch(() => undefined);
      await proc.stop();
      process.exit(0);
    };
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGTERM', () => void stop('SIGTERM'));

    // Streamed answers reach the API here from this process's worker, through Redis or in-process.
    const client = await RaglineClient.connect(config, { tokens: proc.runtime.deps.tokens });
    // Read from the worker in this process: no workflow per call in the Temporal UI's list.
    const stats = await proc.runtime.deps.store.stats(config.RAGLINE_DEFAULT_TENANT);
    if (options.api) {
      // A port clash must not leave the embedded dev server running without its parent.
      api = await startApi(config, client).catch(async (error: unknown) => {
        await proc.stop();
        throw error;
      });
    }
    if (options.sample && stats.documents === 0) {
      const sample = path.resolve(config.RAGLINE_SAMPLE_CORPUS);
      console.error(`the index is empty: ingesting the sample corpus from ${sample}`);
      printIngest(await withProgressBar((onProgress) => client.ingest([sample], { onProgress })));
    } else {
      console.error(`corpus: ${stats.documents} documents, ${stats.chunks} chunks, version ${stats.corpusVersion}`);
    }
    if (config.RAGLINE_IMPROVE_INTERVAL_SECONDS > 0) {
      await new ImprovementClient(client.client, client.taskQueue).ensure(
        config.RAGLINE_DEFAULT_TENANT,
        improvementSettings(config),
      );
    }
    console.log(
      [
        '',
        `ragline is up — Temporal at ${proc.address} (namespace ${proc.namespace}), task queue ${config.RAGLINE_TASK_QUEUE}`,
        proc.uiUrl ? `  Temporal Web UI:   ${proc.uiUrl}` : undefined,
        `  metrics and health: http://127.0.0.1:${proc.telemetry.port}/metrics  /healthz  /readyz`,
        api ? `  HTTP API:          ${api.url}  (OpenAPI at ${api.url}/openapi.json)` : undefined,
        `  ask a question:    npx ragline ask "How do I reset my password?"`,
        'Press Ctrl-C to stop.',
      ]
        .filter(Boolean)
        .join('\n'),
    );
    await proc.running;
  });

program
  .command('setup')
  .description('find the temporal CLI (TEMPORAL_CLI_PATH, PATH, .tools/bin) or build it with go install')
  .action(async () => {
    const { ensureTemporalCli } = await import('../workers/dev-server.js');
    console.error(`temporal CLI: ${ensureTemporalCli(loadConfig().TEMPORAL_CLI_PATH)}`);
  });

program
  .command('worker')
  .description('run only the worker, against the configured Temporal (TEMPORAL_ADDRESS or an envconfig profile)')
  .action(async () => {
    const config = loadConfig();
    const { startWorkerProcess } = await import('../workers/main.js');
    const proc = await startWorkerProcess(config, { embeddedServer: false });
    const stop = () => void proc.stop().then(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    console.error(`worker polling ${config.RAGLINE_TASK_QUEUE} at ${proc.address}`);
    await proc.running;
  });

program
  .command('serve')
  .description('serve the HTTP API (see /openapi.json) on RAGLINE_HTTP_PORT')
  .option('--host <host>', 'address to listen on (default 0.0.0.0 with tokens, 127.0.0.1 without)')
  .option('--worker', 'host a worker in this process too and start query workflows on it eagerly (lower latency)')
  .action(async (options: { host?: string; worker?: boolean }) => {
    const config = loadConfig();
    let client: RaglineClient;
    let stopWorker: (() => Promise<void>) | undefined;
    let telemetry: { port: number; close(): Promise<void> };
    if (options.worker) {
      const { startWorkerProcess } = await import('../workers/main.js');
      const proc = await startWorkerProcess(config, { embeddedServer: false });
      stopWorker = () => proc.stop();
      telemetry = { port: proc.telemetry.port, close: async () => undefined };
      // Eager start needs the client on the worker's own connection: the server hands the first task back inline.
      client = new RaglineClient(
        new Client({ connection: proc.connection, namespace: proc.namespace }),
        config.RAGLINE_TASK_QUEUE,
        {
          maxQueryChars: config.RAGLINE_MAX_QUERY_CHARS,
          redactQueries: config.RAGLINE_LOG_REDACT_QUERIES,
          eagerStart: true,
          onStarted: ({ eager }) => proc.runtime.deps.metrics.queryStarts.inc({ start: eager ? 'eager' : 'normal' }),
        },
        // Without Redis, in-process tokens reach this API only from queries this worker generates.
        { tokens: proc.runtime.deps.tokens },
      );
    } else {
      client = await connect(config);
      const metrics = createMetrics();
      const queryClient = client;
      telemetry = await startTelemetryServer({
        port: config.RAGLINE_METRICS_PORT,
        registry: metrics.registry,
        checks: {
          temporal: async () => {
            const started = performance.now();
            const workers = await queryClient.workerCount();
            return {
              ok: workers > 0,
              latencyMs: Math.round(performance.now() - started),
              detail: `${workers} workers polling`,
            };
          },
        },
      });
    }
    const api = await startApi(config, client, options.host);
    console.error(`metrics on ${telemetry.port}${options.worker ? '; worker hosted here, eager starts on' : ''}`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await Promise.allSettled([api.close(), telemetry.close()]);
    if (stopWorker) await stopWorker();
    else await client.close();
  });

program
  .command('token')
  .description('API tokens')
  .command('create')
  .description('make a bearer token for the HTTP API, and the RAGLINE_API_TOKENS entry that accepts it')
  .requiredOption('--tenant <tenant>', 'the only tenant the token may act for')
  .option('--expires <YYYY-MM-DD>', 'the UTC day from which the token is refused')
  .option(
    '--operator <name>',
    "an operator's token: may decide approvals as <name> (checked against RAGLINE_APPROVERS)",
  )
  .action((options: { tenant: string; expires?: string; operator?: string }) => {
    let made;
    try {
      made = createApiToken(options.tenant, { expires: options.expires, operator: options.operator });
    } catch (error) {
      throw new RaglineError(ErrorType.InvalidInput, error instanceof Error ? error.message : String(error));
    }
    console.log(`token (shown once, give it to the app): ${made.token}`);
    console.log(`add to RAGLINE_API_TOKENS (comma-separated): ${made.entry}`);
  });

interface AskOptions {
  tenant?: string;
  topK?: number;
  cache: boolean;
  json?: boolean;
  stream?: boolean;
}

program
  .command('ask')
  .description('answer a question through the query workflow')
  .argument('<question>')
  .option('--tenant <tenant>', 'tenant whose corpus answers')
  .option('--top-k <n>', 'chunks to retrieve', positiveInt)
  .option('--no-cache', 'skip the result cache')
  .option('--json', 'print the whole result as JSON (with --stream: one JSON line per event)')
  .option('--stream', 'print the answer as it is written (needs Redis, REDIS_URL; without it the answer comes whole)')
  .action(async (question: string, options: AskOptions) => {
    const config = loadConfig();
    const input = {
      query: question,
      tenant: options.tenant ?? config.RAGLINE_DEFAULT_TENANT,
      options: { topK: options.topK, bypassCache: options.cache ? undefined : true },
    };
    // Bad input is reported as such even when no server is running.
    const problem = queryInputProblem(input, { maxQueryChars: config.RAGLINE_MAX_QUERY_CHARS });
    if (problem) throw new RaglineError(ErrorType.InvalidInput, problem);
    const client = await connectWithWorker(config);
    if (options.stream) {
      try {
        await printStream(await client.askStream(input), options.json ?? false);
      } finally {
        await client.close();
      }
      return;
    }
    const result = await client.ask(input);
    await client.close();
    if (options.json) console.log(JSON.stringify(result, null, 2));
    else printAnswer(result);
  });

program
  .command('ingest')
  .description('ingest files or directories (Markdown, text, BEIR JSONL, gzipped or not)')
  .argument('<paths...>')
  .option('--tenant <tenant>', 'tenant whose corpus receives the documents')
  .option('--json', 'print the summary as JSON')
  .action(async (paths: string[], options: { tenant?: string; json?: boolean }) => {
    const missing = paths.filter((p) => !fs.existsSync(p));
    if (missing.length > 0)
      throw new RaglineError(ErrorType.InvalidInput, `no such file or directory: ${missing.join(', ')}`);
    const config = loadConfig();
    const client = await connectWithWorker(config);
    const absolute = paths.map((p) => path.resolve(p));
    const tenant = options.tenant ?? config.RAGLINE_DEFAULT_TENANT;
    const result = options.json
      ? await client.ingest(absolute, { tenant })
      : await withProgressBar((onProgress) => client.ingest(absolute, { tenant, onProgress }));
    await client.close();
    if (options.json) console.log(JSON.stringify(result, null, 2));
    else printIngest(result);
    if (result.rejected > 0) process.exitCode = EXIT.partial;
  });

program
  .command('reindex')
  .description(
    "re-embed a tenant's corpus with the configured embedding model, in the background (queries keep answering)",
  )
  .option('--embeddings', 'compute new vectors for every chunk and switch to them in one step when all are ready')
  .option('--tenant <tenant>', 'tenant to re-embed')
  .option('--batch-chunks <n>', 'chunks embedded per batch activity', positiveInt)
  .option('--json', 'print the result as JSON')
  .action(async (options: { embeddings?: boolean; tenant?: string; batchChunks?: number; json?: boolean }) => {
    if (!options.embeddings) {
      throw new RaglineError(ErrorType.InvalidInput, 'say what to rebuild: `ragline reindex --embeddings`');
    }
    const config = loadConfig();
    const client = await connectWithWorker(config);
    const tenant = options.tenant ?? config.RAGLINE_DEFAULT_TENANT;
    const run = (onProgress?: (progress: ReindexProgress) => void) =>
      client.reindexEmbeddings({
        tenant,
        batchChunks: options.batchChunks ?? config.RAGLINE_REINDEX_BATCH_CHUNKS,
        heartbeatTimeoutSeconds: config.RAGLINE_REINDEX_HEARTBEAT_SECONDS,
        onProgress,
      });
    const result = options.json ? await run() : await withReindexBar(run);
    await client.close();
    if (options.json) console.log(JSON.stringify(result, null, 2));
    else printReindex(result);
  });

program
  .command('docs')
  .description('manage documents')
  .command('delete')
  .description('delete documents by id; answers that cited them are dropped from the cache')
  .argument('<ids...>')
  .option('--tenant <tenant>')
  .option('--json')
  .action(async (ids: string[], options: { tenant?: string; json?: boolean }) => {
    const config = loadConfig();
    const client = await connectWithWorker(config);
    const result = await client.deleteDocuments(ids, options.tenant ?? config.RAGLINE_DEFAULT_TENANT);
    await client.close();
    if (options.json) console.log(JSON.stringify(result, null, 2));
    else {
      if (result.deleted.length)
        console.log(`deleted: ${result.deleted.join(', ')} (corpus version ${result.corpusVersion})`);
      if (result.missing.length) console.error(`not found: ${result.missing.join(', ')}`);
    }
    if (result.missing.length > 0) process.exitCode = EXIT.partial;
  });

program
  .command('status')
  .description('Temporal, worker, corpus and dependency health')
  .option('--tenant <tenant>')
  .option('--json')
  .action(async (options: { tenant?: string; json?: boolean }) => {
    const config = loadConfig();
    const target = temporalTarget(config);
    const report: Record<string, unknown> = {
      temporal: { address: target.address, namespace: target.namespace, embedded: target.embedded },
    };
    let ok = true;
    try {
      const client = await connect(config, 3000);
      const workers = await client.workerCount();
      report.workers = workers;
      if (workers === 0) ok = false;
      // A re-embedding under way (or its last outcome) explains lexical-only answers; reading it starts nothing.
      const reindex = await client
        .reindexProgress(options.tenant ?? config.RAGLINE_DEFAULT_TENANT)
        .catch(() => undefined);
      if (reindex) report.reindex = reindex;
      await client.close();
    } catch (error) {
      ok = false;
      report.error = error instanceof Error ? error.message : String(error);
    }
    const readiness = await runHealthChecks({
      worker: async () => {
        const started = performance.now();
        const response = await fetch(`http://127.0.0.1:${config.RAGLINE_METRICS_PORT}/readyz`, {
          signal: AbortSignal.timeout(3000),
        });
        const body = (await response.json()) as { ok: boolean; checks: unknown };
        report.checks = body.checks;
        // The worker reads its own store: no workflow is started, so `status` leaves nothing in the UI's list.
        const corpus = await fetch(
          `http://127.0.0.1:${config.RAGLINE_METRICS_PORT}/corpus?tenant=${encodeURIComponent(options.tenant ?? config.RAGLINE_DEFAULT_TENANT)}`,
          { signal: AbortSignal.timeout(3000) },
        );
        if (corpus.ok) report.corpus = await corpus.json();
        return { ok: body.ok, latencyMs: Math.round(performance.now() - started) };
      },
    });
    ok &&= readiness.ok;
    report.ok = ok;
    if (options.json) console.log(JSON.stringify(report, null, 2));
    else printStatus(report);
    if (!ok) process.exitCode = EXIT.failure;
  });

const scoreArg = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 5) throw new InvalidArgumentError('must be an integer from 1 to 5');
  return n;
};

program
  .command('feedback')
  .description('rate an answer from 1 (useless) to 5 (exactly right), by the query id `ask` printed')
  .argument('<queryId>')
  .argument('<score>', 'an integer from 1 to 5', scoreArg)
  .option('--comment <text>', 'what was wrong or right')
  .action(async (queryId: string, score: number, options: { comment?: string }) => {
    const problem = feedbackProblem({ queryId, score, comment: options.comment });
    if (problem) throw new RaglineError(ErrorType.InvalidInput, problem);
    const improvement = await improvementClient(loadConfig());
    const result = await improvement.feedback({ queryId, score, comment: options.comment });
    console.log(`feedback recorded for ${result.queryId} (tenant ${result.tenant})`);
  });

/** Who the CLI acts as: --operator, RAGLINE_OPERATOR, or the login name. It is checked against RAGLINE_APPROVERS. */
const operatorOf = (config: Config, option?: string) => option ?? config.RAGLINE_OPERATOR ?? os.userInfo().username;

const improve = program.command('improve').description('the continuous-improvement workflow of a tenant');
improve
  .command('start')
  .description('start the improvement workflow (idempotent: a running one is left alone)')
  .option('--tenant <tenant>')
  .action(async (options: { tenant?: string }) => {
    const config = loadConfig();
    const improvement = await improvementClient(config);
    const id = await improvement.ensure(options.tenant ?? config.RAGLINE_DEFAULT_TENANT, improvementSettings(config));
    console.log(`improvement workflow ${id} is running`);
  });
improve
  .command('run')
  .description('run an improvement cycle now')
  .option('--tenant <tenant>')
  .action(async (options: { tenant?: string }) => {
    const config = loadConfig();
    await (await improvementClient(config)).runNow(options.tenant ?? config.RAGLINE_DEFAULT_TENANT);
    console.log('cycle requested');
  });
improve
  .command('status')
  .description('last analysis, cycles and proposals')
  .option('--tenant <tenant>')
  .option('--json')
  .action(async (options: { tenant?: string; json?: boolean }) => {
    const config = loadConfig();
    const status = await (await improvementClient(config)).status(options.tenant ?? config.RAGLINE_DEFAULT_TENANT);
    if (options.json) console.log(JSON.stringify(status, null, 2));
    else printImprovement(status);
  });

const approvals = program.command('approvals').description('parameter changes waiting for a person');
approvals
  .command('list')
  .option('--tenant <tenant>')
  .option('--all', 'decided and expired proposals too')
  .option('--json')
  .action(async (options: { tenant?: string; all?: boolean; json?: boolean }) => {
    const config = loadConfig();
    const status = await (await improvementClient(config)).status(options.tenant ?? config.RAGLINE_DEFAULT_TENANT);
    const shown = options.all ? status.proposals : status.pending;
    if (options.json) console.log(JSON.stringify(shown, null, 2));
    else if (shown.length === 0) console.log('no proposals waiting');
    else for (const p of shown) console.log(describeProposal(p));
  });
for (const decision of ['approve', 'reject'] as const) {
  approvals
    .command(decision)
    .description(`${decision} a proposal (an Update: the verdict comes back at once)`)
    .argument('<id>')
    .requiredOption('--reason <text>', 'why; written to the audit log')
    .option('--operator <name>', 'who decides (default RAGLINE_OPERATOR or the login name)')
    .option('--tenant <tenant>')
    .option('--async', 'send a signal and return without waiting for the verdict')
    .action(async (id: string, options: { reason: string; operator?: string; tenant?: string; async?: boolean }) => {
      const config = loadConfig();
      const improvement = await improvementClient(config);
      const tenant = options.tenant ?? config.RAGLINE_DEFAULT_TENANT;
      const operator = operatorOf(config, options.operator);
      if (options.async) {
        await improvement.decideAsync(tenant, decision, id, operator, options.reason);
        console.log(`${decision} of ${id} sent`);
        return;
      }
      const proposal =
        decision === 'approve'
          ? await improvement.approve(tenant, id, operator, options.reason)
          : await improvement.reject(tenant, id, operator, options.reason);
      console.log(describeProposal(proposal));
    });
}

const params = program.command('params').description("a tenant's retrieval parameters, versioned and audited");
params
  .command('show')
  .option('--tenant <tenant>')
  .option('--json')
  .action(async (options: { tenant?: string; json?: boolean }) => {
    const config = loadConfig();
    const status = await (await improvementClient(config)).status(options.tenant ?? config.RAGLINE_DEFAULT_TENANT);
    if (options.json) console.log(JSON.stringify(status.current, null, 2));
    else console.log(`version ${status.current?.version ?? 0}: ${JSON.stringify(status.current?.params ?? {})}`);
  });
params
  .command('set')
  .description(`set parameters by hand, e.g. topK=8 bm25B=0.6 (${Object.keys(PARAM_BOUNDS).join(', ')})`)
  .argument('<assignments...>')
  .requiredOption('--reason <text>')
  .option('--operator <name>')
  .option('--tenant <tenant>')
  .action(async (assignments: string[], options: { reason: string; operator?: string; tenant?: string }) => {
    const config = loadConfig();
    const changes: Record<string, number> = {};
    for (const assignment of assignments) {
      const [name, value] = assignment.split('=');
      if (!name || value === undefined || value.trim() === '' || Number.isNaN(Number(value)))
        throw new RaglineError(ErrorType.InvalidInput, `expected name=number, got "${assignment}"`);
      changes[name] = Number(value);
    }
    const problem = paramsProblem(changes);
    if (problem) throw new RaglineError(ErrorType.InvalidInput, problem);
    const entry = await (
      await improvementClient(config)
    ).setParams(
      options.tenant ?? config.RAGLINE_DEFAULT_TENANT,
      changes as Partial<RetrievalParams>,
      operatorOf(config, options.operator),
      options.reason,
    );
    console.log(`version ${entry.fromVersion} → ${entry.toVersion}: ${JSON.stringify(entry.changes)}`);
  });
params
  .command('rollback')
  .description('return to the version that was current before this one; its cached answers retire with it')
  .requiredOption('--reason <text>')
  .option('--operator <name>')
  .option('--tenant <tenant>')
  .action(async (options: { reason: string; operator?: string; tenant?: string }) => {
    const config = loadConfig();
    const entry = await (
      await improvementClient(config)
    ).rollback(options.tenant ?? config.RAGLINE_DEFAULT_TENANT, operatorOf(config, options.operator), options.reason);
    console.log(`rolled back: version ${entry.fromVersion} → ${entry.toVersion}`);
  });

async function improvementClient(config: Config): Promise<ImprovementClient> {
  const client = await connectWithWorker(config);
  return new ImprovementClient(client.client, client.taskQueue);
}

function describeProposal(p: ParamProposal): string {
  const decided = p.decidedBy ? ` by ${p.decidedBy} (${p.decisionReason ?? ''})` : '';
  return (
    `${p.id}  ${p.status}${decided}  ${p.changes}  nDCG@10 ${p.effect.before} → ${p.effect.after} ` +
    `(noise ±${p.effect.noise}, ${p.effect.questions} questions)  expires ${p.expiresAt}` +
    (p.appliedVersion !== undefined ? `  applied as version ${p.appliedVersion}` : '')
  );
}

function printImprovement(status: ImprovementStatus): void {
  console.log(`tenant ${status.tenant}: parameters version ${status.current?.version ?? 0}, ${status.cycles} cycles`);
  const a = status.lastAnalysis;
  if (a) {
    console.log(
      `last ${a.from} → ${a.to}: ${a.volume} queries, hit ratio ${a.hitRatio.any} (result ${a.hitRatio.result}, ` +
        `semantic ${a.hitRatio.semantic}, llm ${a.hitRatio.llm}), mean quality ${a.meanQuality}, ` +
        `degraded ${a.degradedShare} ${JSON.stringify(a.degradedByReason)}`,
    );
    // Absent from analyses made before it was counted.
    if (a.semanticHits)
      console.log(
        `  semantic-cache hits ${a.semanticHits.served}, rated ${a.semanticHits.rated}, ` +
          `rated poorly ${a.semanticHits.poorlyRated}`,
      );
    for (const s of a.documentSuggestions)
      console.log(`  suggest a document on "${s.topic}" (${s.priority}, ${s.estimatedImpact.queries} queries)`);
  }
  for (const h of status.history.slice(-5)) {
    console.log(`  cycle ${h.cycle} ${h.outcome}${h.changes ? `: ${h.changes}` : ''} → version ${h.version}`);
    const e = h.evalProposal;
    if (e)
      console.log(
        `    evaluation-set proposal: ${e.outcome}${e.proposalId ? ` ${e.proposalId}` : ''}, ${e.questions} question(s)` +
          `${e.workflowId ? ` to ${e.workflowId}` : ''}${e.skipped ? `, ${e.skipped} already known` : ''}` +
          `${e.detail ? ` (${e.detail})` : ''}`,
      );
  }
  for (const p of status.pending) console.log(`  awaiting approval: ${describeProposal(p)}`);
}
program
  .command('load')
  .description('simulate users: N users × M queries (Zipf mix of sample questions, paraphrases, new ones) and report')
  .option('--users <n>', 'simulated users', '16')
  .option('--queries <m>', 'queries per user', '10')
  .option('--concurrency <n>', 'queries in flight at most', String(DEFAULT_LOAD.concurrency))
  .option('--think-ms <ms>', "mean pause between one user's queries", String(DEFAULT_LOAD.thinkMs))
  .option('--rate <q/s>', 'cap on queries started per second (0: none)', String(DEFAULT_LOAD.rate))
  .option('--zipf <s>', 'Zipf exponent of the question mix', String(DEFAULT_LOAD.zipf))
  .option('--new-share <0..1>', 'share of never-seen questions', String(DEFAULT_LOAD.newShare))
  .option('--paraphrase-share <0..1>', 'share of sample picks paraphrased', String(DEFAULT_LOAD.paraphraseShare))
  .option('--questions <file>', 'JSONL with a "query" per line', 'sample-corpus/ground-truth.jsonl')
  .option('--tenant <tenant>')
  .option('--seed <n>', 'seed of the question mix', String(DEFAULT_LOAD.seed))
  .option('--out <file>', 'where to write the JSON report', 'load-report.json')
  .option('--json', 'print the JSON report instead of the summary')
  .action(async (options: Record<string, string | boolean | undefined>) => {
    const num = (name: string) => Number(options[name]);
    // Validated before connecting: impossible arguments cost one line and exit 2, not a connection attempt.
    const loadOptions = validateLoadOptions({
      users: num('users'),
      queriesPerUser: num('queries'),
      concurrency: num('concurrency'),
      thinkMs: num('thinkMs'),
      rate: num('rate'),
      zipf: num('zipf'),
      newShare: num('newShare'),
      paraphraseShare: num('paraphraseShare'),
      tenant: typeof options.tenant === 'string' ? options.tenant : undefined,
      seed: num('seed'),
    });
    const questionsFile = String(options.questions);
    if (!fs.existsSync(questionsFile)) throw new InvalidInputError(`--questions: no such file ${questionsFile}`);
    const questions = readSampleQuestions(questionsFile);
    const client = await connectWithWorker(loadConfig());
    const total = loadOptions.users * loadOptions.queriesPerUser;
    const bar = process.stderr.isTTY
      ? new SingleBar(
          {
            format: 'load [{bar}] {percentage}% | {value}/{total} queries | {degraded} degraded {errors} errors',
            stream: process.stderr,
          },
          Presets.shades_classic,
        )
      : undefined;
    bar?.start(total, 0, { degraded: 0, errors: 0 });
    let degraded = 0;
    let errors = 0;
    try {
      const report = await runLoad(client, questions, loadOptions, {
        onDone(sample, done) {
          if (sample.path === 'degraded') degraded += 1;
          if (sample.error !== undefined) errors += 1;
          bar?.update(done, { degraded, errors });
        },
      });
      bar?.stop();
      fs.writeFileSync(String(options.out), `${JSON.stringify(report, null, 2)}\n`);
      if (options.json) console.log(JSON.stringify(report, null, 2));
      else console.log(`${formatReport(report)}\nreport written to ${String(options.out)}`);
      if (report.errors > 0 || report.lost > 0) process.exitCode = EXIT.failure;
    } finally {
      bar?.stop();
      await client.close();
    }
  });

program
  .command('replay')
  .description('replay a workflow history against the workflow code of this checkout, reporting where it diverges')
  .argument('[workflowId]', "fetch this workflow's history from Temporal")
  .option('--file <history.json>', 'a history downloaded from the Web UI or `temporal workflow show --output json`')
  .option('--json', 'print the report as JSON')
  .action(async (workflowId: string | undefined, options: { file?: string; json?: boolean }) => {
    if ((workflowId === undefined) === (options.file === undefined)) {
      throw new RaglineError(ErrorType.InvalidInput, 'give either a workflow id or --file <history.json>');
    }
    const { fetchHistory, readHistoryFile, replayHistory } = await import('./replay.js');
    const { DefaultLogger, Runtime, makeTelemetryFilterString } = await import('@temporalio/worker');
    // The replay worker's lifecycle lines and core's own warning are noise here; the report says what happened.
    Runtime.install({
      logger: new DefaultLogger('ERROR'),
      telemetryOptions: { logging: { forward: {}, filter: makeTelemetryFilterString({ core: 'ERROR' }) } },
    });
    let history;
    if (options.file) history = await readHistoryFile(options.file);
    else {
      const client = await connect(loadConfig());
      try {
        history = await fetchHistory(client.client, workflowId ?? '');
      } finally {
        await client.close();
      }
    }
    const report = await replayHistory(history, { workflowId });
    if (options.json) console.log(JSON.stringify(report, null, 2));
    else if (report.ok) {
      console.log(`replayed ${report.events} events of ${report.workflowType ?? 'the workflow'}: deterministic`);
    } else {
      const at = report.nondeterminism?.eventId
        ? ` at event ${report.nondeterminism.eventId}${report.nondeterminism.eventType ? ` (${report.nondeterminism.eventType})` : ''}`
        : '';
      console.log(`NON-DETERMINISTIC${at}: ${report.nondeterminism?.message ?? ''}`);
    }
    if (!report.ok) process.exitCode = EXIT.failure;
  });

registerEvalCommands(program, { loadConfig, connectWithWorker });
registerDemoCommand(program, { loadConfig });

let tracing: Tracing | undefined;

/** Connects with tracing on, so a trace starts at the client's StartWorkflow call. */
async function connect(config: Config, connectTimeoutMs?: number): Promise<RaglineClient> {
  tracing ??= startTracing({ serviceName: config.OTEL_SERVICE_NAME, otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT });
  return RaglineClient.connect(config, {
    interceptors: tracing.enabled ? temporalClientInterceptors() : undefined,
    connectTimeoutMs,
  });
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * Starts the HTTP API. Without tokens it has no authentication, so it listens on loopback only and says so; asking
 * for another address then is refused rather than silently exposing every tenant.
 */
async function startApi(
  config: Config,
  client: RaglineClient,
  host?: string,
): Promise<{ url: string; close: () => Promise<void> }> {
  const tokens = config.RAGLINE_API_TOKENS;
  if (tokens.length === 0 && host !== undefined && !LOOPBACK.has(host)) {
    throw new RaglineError(
      ErrorType.Configuration,
      `refusing to serve the API on ${host} without authentication: set RAGLINE_API_TOKENS (ragline token create --tenant <tenant>)`,
    );
  }
  const bind = host ?? (tokens.length > 0 ? '0.0.0.0' : '127.0.0.1');
  const { createHttpApi, operatorRoutes } = await import('../http/server.js');
  const api = await createHttpApi(client, {
    tokens,
    rateLimitPerMinute: config.RAGLINE_API_RATE_LIMIT,
    routes: [operatorRoutes(client.client, client.taskQueue, { evalSet: config.RAGLINE_EVAL_SET })],
    logger: createLogger({ level: config.LOG_LEVEL, format: config.LOG_FORMAT, name: 'ragline-api' }),
  });
  await api.listen({ port: config.RAGLINE_HTTP_PORT, host: bind });
  console.error(
    {
      redis: 'streamed answers (?stream=true): tokens over Redis pub/sub from any worker',
      'in-process': 'streamed answers (?stream=true): tokens from the worker in this process only (no Redis)',
      none: 'streamed answers (?stream=true) arrive whole: no Redis and no worker here (see serve --worker)',
    }[client.streaming],
  );
  const url = `http://${bind.includes(':') ? `[${bind}]` : bind}:${config.RAGLINE_HTTP_PORT}`;
  console.error(
    tokens.length > 0
      ? `ragline API on ${url}: ${tokens.length} tokens configured, each bound to its tenant`
      : `ragline API on ${url}: no RAGLINE_API_TOKENS configured, so loopback only and no authentication`,
  );
  return { url, close: () => api.close() };
}

async function connectWithWorker(config: Config): Promise<RaglineClient> {
  const client = await connect(config);
  if ((await client.workerCount()) === 0) {
    await client.close();
    throw new RaglineError(
      ErrorType.Unavailable,
      `no worker is polling task queue "${config.RAGLINE_TASK_QUEUE}" — start one with \`make start\` (or \`ragline up\`)`,
    );
  }
  return client;
}

/**
 * A progress bar over documents that also moves within a batch as its chunks are embedded (the slow part with an
 * embedder), with cli-progress's ETA from the rate so far.
 */
async function withProgressBar(
  run: (onProgress: (progress: IngestProgressReport) => void) => Promise<IngestDocumentsResult>,
): Promise<IngestDocumentsResult> {
  if (!process.stderr.isTTY) return run(() => undefined);
  const bar = new SingleBar(
    {
      format:
        'ingesting [{bar}] {percentage}% | {documents}/{total} documents | {chunks} | {added} added {updated} updated | ETA {eta_formatted}',
      stream: process.stderr,
      etaBuffer: 20,
    },
    Presets.shades_classic,
  );
  bar.start(1, 0, { documents: 0, chunks: '', added: 0, updated: 0 });
  try {
    const result = await run((p) => {
      const batch = p.batch;
      // The batch in flight counts as far as its chunks are embedded.
      const inBatch = batch && batch.chunksTotal > 0 ? (batch.documents * batch.chunksEmbedded) / batch.chunksTotal : 0;
      bar.setTotal(Math.max(p.documentsTotal, 1));
      bar.update(Math.min(p.documentsDone + inBatch, p.documentsTotal), {
        documents: p.documentsDone,
        chunks: batch ? `${batch.chunksEmbedded}/${batch.chunksTotal} chunks embedded in this batch` : '',
        added: p.added,
        updated: p.updated,
      });
    });
    bar.update(Math.max(result.documentsTotal, 1), {
      documents: result.documentsTotal,
      chunks: '',
      added: result.added,
      updated: result.updated,
    });
    return result;
  } finally {
    bar.stop();
  }
}

async function withReindexBar(
  run: (onProgress: (progress: ReindexProgress) => void) => Promise<ReindexEmbeddingsResult>,
): Promise<ReindexEmbeddingsResult> {
  if (!process.stderr.isTTY) return run(() => undefined);
  // The ETA is the workflow's (the rate since the reindex started, which may predate this command), not the bar's.
  const bar = new SingleBar(
    {
      format: 're-embedding [{bar}] {percentage}% | {value}/{total} chunks | {phase} | ETA {eta_left}',
      stream: process.stderr,
    },
    Presets.shades_classic,
  );
  bar.start(1, 0, { phase: 'starting', eta_left: '…' });
  try {
    const result = await run((p) => {
      bar.setTotal(Math.max(p.chunksTotal, 1));
      bar.update(p.chunksDone, { phase: p.phase, eta_left: p.etaSeconds === undefined ? '…' : `${p.etaSeconds}s` });
    });
    bar.update(Math.max(result.chunksTotal, 1), { phase: result.phase, eta_left: '0s' });
    return result;
  } finally {
    bar.stop();
  }
}

function printReindex(result: ReindexEmbeddingsResult): void {
  if (!result.switched) {
    console.log(
      `tenant ${result.tenant} needs no re-embedding: its ${result.chunksTotal} chunks already have vectors from ` +
        `${result.to ?? 'the configured embedder (or none is configured)'}`,
    );
    return;
  }
  console.log(
    `re-embedded tenant ${result.tenant}: ${result.chunksTotal} chunks now have vectors from ${result.to} ` +
      `(was ${result.from ?? 'lexical only'}), ${result.chunksEmbedded} embedded in ${result.batches} batches; ` +
      `corpus version ${result.corpusVersion}`,
  );
}

/**
 * Prints tokens as they arrive, then the sources and flags. The final result's answer is the answer of record: it is
 * printed again only when what was streamed differs from it (a rewrite after a reset, or citations it corrected).
 */
async function printStream(stream: AnswerStream, json: boolean): Promise<void> {
  if (stream.channel === 'none' && !json) {
    console.error(
      '(no token channel reaches this process — set REDIS_URL on workers and here; the answer comes whole)',
    );
  }
  let shown = '';
  for await (const event of stream) {
    if (json) {
      console.log(JSON.stringify(event));
    } else if (event.type === 'delta') {
      process.stdout.write(event.text);
      shown += event.text;
    } else if (event.type === 'reset') {
      if (shown) {
        process.stdout.write('\n');
        console.error('(the answer is being written again)');
      }
      shown = '';
    } else {
      const same = shown.trim() === event.result.answer;
      if (shown && !same) process.stdout.write('\n\n');
      printAnswer(event.result, same);
    }
  }
}

function printAnswer(result: AnswerQueryResult, answerShown = false): void {
  console.log(answerShown ? '' : result.answer);
  const cited = new Set(result.citations ?? []);
  const show = (title: string, sources: AnswerQueryResult['sources']) => {
    if (sources.length === 0) return;
    console.log(`\n${title}:`);
    for (const s of sources) console.log(`  [${s.n}] ${s.title} (${s.docId}, score ${s.score.toFixed(2)})`);
  };
  show(
    'Sources',
    result.sources.filter((s) => cited.has(s.n)),
  );
  show(
    cited.size > 0 ? 'Also retrieved' : 'Retrieved (not cited)',
    result.sources.filter((s) => !cited.has(s.n)),
  );
  const flags = [
    `quality ${result.qualityTier} (${result.qualityScore.toFixed(2)})`,
    `cache ${result.cache.result}`,
    `model ${result.model}`,
    `${result.timingsMs.total} ms`,
    result.degraded ? `DEGRADED: ${result.fallbackReason}` : undefined,
  ].filter(Boolean);
  console.log(`\n${flags.join(' · ')}\nworkflow ${result.queryId}`);
}

function printIngest(result: IngestDocumentsResult): void {
  console.log(
    `ingested ${result.documentsDone} documents from ${result.files} files into tenant ${result.tenant}: ` +
      `${result.added} added, ${result.updated} updated, ${result.unchanged} unchanged, ${result.rejected} rejected ` +
      `(corpus version ${result.corpusVersion})`,
  );
  for (const p of result.problems) console.error(`  rejected ${p.source}: ${p.reason}`);
}

function printStatus(report: Record<string, unknown>): void {
  const temporal = report.temporal as { address: string; namespace: string; embedded: boolean };
  console.log(
    `Temporal   ${temporal.address} (${temporal.embedded ? 'embedded dev server' : 'configured'}), namespace ${temporal.namespace}`,
  );
  if (report.error) console.log(`           unreachable: ${String(report.error)}`);
  if (report.workers !== undefined) console.log(`Workers    ${String(report.workers)} polling`);
  const corpus = report.corpus as
    { documents: number; chunks: number; corpusVersion: number; store: string } | undefined;
  if (corpus)
    console.log(
      `Corpus     ${corpus.documents} documents, ${corpus.chunks} chunks, version ${corpus.corpusVersion} (${corpus.store})`,
    );
  const reindex = report.reindex as ReindexProgress | undefined;
  if (reindex && reindex.phase !== 'done' && reindex.phase !== 'not-needed')
    console.log(
      `Reindex    ${reindex.phase}: ${reindex.chunksDone}/${reindex.chunksTotal} chunks re-embedded for ${reindex.to ?? '?'}` +
        `${reindex.etaSeconds === undefined ? '' : `, about ${reindex.etaSeconds} s left`} (queries answer lexically until it switches)`,
    );
  const checks = report.checks as
    Record<string, { ok: boolean; latencyMs: number; detail?: string; error?: string }> | undefined;
  for (const [name, check] of Object.entries(checks ?? {})) {
    // The breakers' line is their states ("store=closed llm=open …"); a latency would mean nothing there.
    if (name === 'breakers') {
      console.log(`${name.padEnd(10)} ${check.detail ?? ''}`);
      continue;
    }
    console.log(
      `${name.padEnd(10)} ${check.ok ? 'ok' : 'FAILING'} (${check.latencyMs} ms)${check.error ? ` ${check.error}` : ''}`,
    );
  }
  console.log(report.ok ? 'ready' : 'NOT READY');
}

function exitCodeOf(error: unknown): number {
  if (error instanceof ConfigError) return EXIT.badInput;
  if (
    error instanceof RaglineError &&
    (error.type === ErrorType.InvalidInput || error.type === ErrorType.Configuration)
  )
    return EXIT.badInput;
  return EXIT.failure;
}

try {
  await program.parseAsync(process.argv);
  await tracing?.shutdown();
} catch (error) {
  const message = error instanceof Error ? error.message : String(error);
  console.error(`ragline: ${message.split('\n')[0]}`);
  process.exit(exitCodeOf(error));
}
