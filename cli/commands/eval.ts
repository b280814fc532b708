import fs from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { Config } from '../../lib/config.js';
import { loadEvalSet } from '../../lib/eval/dataset.js';
import { evaluationReportHtml } from '../eval-report.js';
import type { EvalScores } from '../../lib/eval/scores.js';
import { evaluationWorkflowId, type EvaluateOnceResult, type EvaluationStatus } from '../../contracts/evaluation.js';
import type { EvaluationClient } from '../../client/evaluation-client.js';
import { positiveInt, type CliContext } from '../context.js';
import { printJson, table, terminalBar } from '../output.js';

interface Target {
  dataset?: string;
  set?: string;
  tenant?: string;
}

/** `ragline eval …`: one-off runs, the continuous evaluation's controls, and the report. */
export function registerEvalCommands(program: Command, context: CliContext): void {
  const evalCommand = program.command('eval').description('measure retrieval and answers against ground truth');

  const withTarget = (command: Command) =>
    command
      .option('--dataset <path>', 'evaluation set: ground-truth JSONL or BEIR folder (default RAGLINE_EVAL_SET)')
      .option('--set <name>', 'evaluation set name, instead of reading --dataset')
      .option('--tenant <tenant>', 'tenant whose corpus is evaluated');

  /** Tenant and set name of the continuous evaluation a command addresses. */
  const resolve = async (config: Config, options: Target) => ({
    tenant: options.tenant ?? config.RAGLINE_DEFAULT_TENANT,
    setName: options.set ?? (await loadEvalSet(options.dataset ?? config.RAGLINE_EVAL_SET)).name,
  });

  const open = async <T>(run: (evals: EvaluationClient, config: Config) => Promise<T>): Promise<T> => {
    const config = context.loadConfig();
    const client = await context.connectWithWorker(config);
    try {
      return await run(client.evaluation, config);
    } finally {
      await client.close();
    }
  };

  evalCommand
    .command('run')
    .description('evaluate the whole set once through the query workflow (caches bypassed) and print the scores')
    .option('--dataset <path>', 'evaluation set: ground-truth JSONL or BEIR folder (default RAGLINE_EVAL_SET)')
    .option('--tenant <tenant>', 'tenant whose corpus is evaluated')
    .option('--limit <n>', 'only the first n questions', positiveInt)
    .option('--concurrency <n>', 'questions answered at once (latency figures assume 1)', positiveInt, 1)
    .option('--json', 'print scores and every observation as JSON')
    .action(
      async (options: { dataset?: string; tenant?: string; limit?: number; concurrency: number; json?: boolean }) => {
        const config = context.loadConfig();
        const dataset = options.dataset ?? config.RAGLINE_EVAL_SET;
        // A missing or empty set is reported before anything connects.
        const set = await loadEvalSet(dataset);
        for (const p of set.problems) console.error(`  skipped ${p.file}:${p.line} ${p.message}`);
        const started = performance.now();
        const result = await open(async (evals) => {
          const bar = options.json ? undefined : terminalBar('evaluating [{bar}] {value}/{total} questions');
          bar?.start(Math.min(options.limit ?? set.items.length, set.items.length), 0);
          try {
            return await evals.runOnce({
              dataset,
              tenant: options.tenant ?? config.RAGLINE_DEFAULT_TENANT,
              limit: options.limit,
              concurrency: options.concurrency,
              onProgress: (p) => bar?.update(p.done),
            });
          } finally {
            bar?.stop();
          }
        });
        const wallMs = performance.now() - started;
        if (result.unknownDocIds.length > 0) {
          // Reported with line numbers, not dropped: a relevant document missing from the corpus is worth knowing.
          const unknown = new Set(result.unknownDocIds);
          const relevantIds = set.items.flatMap((item) => Object.keys(item.relevant));
          const known = new Set(relevantIds.filter((docId) => !unknown.has(docId)));
          const checked = await loadEvalSet(dataset, { knownDocIds: known }).catch(() => undefined);
          for (const p of checked?.problems.filter((p) => p.message.startsWith('unknown document')) ?? []) {
            console.error(`  ${p.file}:${p.line} ${p.message} (not in the corpus of tenant ${result.tenant})`);
          }
        }
        if (options.json) printJson({ ...result, wallMs: Math.round(wallMs) });
        else printRun(result, wallMs);
      },
    );

  withTarget(evalCommand.command('start'))
    .description('ensure the continuous evaluation runs (idempotent: a running one is reused)')
    .option('--interval <seconds>', 'seconds between batches (default RAGLINE_EVAL_INTERVAL_SECONDS)', positiveInt)
    .option('--batch-size <n>', 'questions per batch (default RAGLINE_EVAL_BATCH_SIZE)', positiveInt)
    .action(async (options: Target & { interval?: number; batchSize?: number }) => {
      await open(async (evals, config) => {
        const started = await evals.start({
          dataset: options.dataset ?? config.RAGLINE_EVAL_SET,
          tenant: options.tenant ?? config.RAGLINE_DEFAULT_TENANT,
          settings: {
            intervalMs: (options.interval ?? config.RAGLINE_EVAL_INTERVAL_SECONDS) * 1000,
            batchSize: options.batchSize ?? config.RAGLINE_EVAL_BATCH_SIZE,
          },
          alertPolicy: {
            qualityThreshold: config.RAGLINE_EVAL_QUALITY_THRESHOLD,
            latencyP95Ms: config.RAGLINE_EVAL_LATENCY_P95_MS,
          },
        });
        for (const p of started.set.problems) console.error(`  skipped ${p.file}:${p.line} ${p.message}`);
        console.log(
          `${started.started ? 'started' : 'already running'}: ${started.workflowId} ` +
            `(${started.set.items} questions, set version ${started.set.version})`,
        );
      });
    });

  withTarget(evalCommand.command('status'))
    .description('last results, baseline, trend and firing alerts of the continuous evaluation')
    .option('--json', 'print the whole status as JSON')
    .action(async (options: Target & { json?: boolean }) => {
      await open(async (evals, config) => {
        const { tenant, setName } = await resolve(config, options);
        const status = await evals.status(tenant, setName);
        if (options.json) printJson(status);
        else printStatus(status);
      });
    });

  for (const [name, description] of [
    ['pause', 'pause the continuous evaluation (run-now still runs a batch)'],
    ['resume', 'resume the continuous evaluation'],
    ['run-now', 'run a batch now, whatever the interval'],
  ] as const) {
    withTarget(evalCommand.command(name))
      .description(description)
      .action(async (options: Target) => {
        await open(async (evals, config) => {
          const { tenant, setName } = await resolve(config, options);
          if (name === 'pause') await evals.pause(tenant, setName);
          else if (name === 'resume') await evals.resume(tenant, setName);
          else await evals.runNow(tenant, setName);
          console.log(`${name}: ${evaluationWorkflowId(tenant, setName)}`);
        });
      });
  }

  withTarget(evalCommand.command('configure'))
    .description('change the interval or batch size of the running evaluation (refused with the reason if invalid)')
    .option('--interval <seconds>', 'seconds between batches', Number)
    .option('--batch-size <n>', 'questions per batch', Number)
    .action(async (options: Target & { interval?: number; batchSize?: number }) => {
      await open(async (evals, config) => {
        const { tenant, setName } = await resolve(config, options);
        const settings = await evals.configure(tenant, setName, {
          intervalMs: options.interval === undefined ? undefined : Math.round(options.interval * 1000),
          batchSize: options.batchSize,
        });
        console.log(`every ${settings.intervalMs / 1000} s, ${settings.batchSize} questions per batch`);
      });
    });

  withTarget(evalCommand.command('decide'))
    .description('accept or reject a proposal to add questions to the set')
    .argument('<proposal-id>')
    .argument('<decision>', 'accept or reject')
    .requiredOption('--by <person>', 'who decides')
    .action(async (proposalId: string, decision: string, options: Target & { by: string }) => {
      if (decision !== 'accept' && decision !== 'reject') throw new InvalidArgumentError('accept or reject');
      await open(async (evals, config) => {
        const { tenant, setName } = await resolve(config, options);
        const proposal = await evals.decide(tenant, setName, { proposalId, decision, decidedBy: options.by });
        console.log(`${proposal.id} ${proposal.status} by ${proposal.decidedBy ?? '?'}`);
      });
    });

  withTarget(evalCommand.command('report'))
    .description('write a self-contained HTML report (inline SVG charts) of the score and latency history')
    .requiredOption('--out <file>', 'HTML file to write')
    .action(async (options: Target & { out: string }) => {
      await open(async (evals, config) => {
        const { tenant, setName } = await resolve(config, options);
        const status = await evals.status(tenant, setName);
        const html = evaluationReportHtml(status, {
          generatedAt: new Date().toISOString(),
          qualityThreshold: config.RAGLINE_EVAL_QUALITY_THRESHOLD,
          latencyP95Ms: config.RAGLINE_EVAL_LATENCY_P95_MS,
        });
        await fs.writeFile(options.out, html);
        console.log(`wrote ${path.resolve(options.out)} (${status.history.length} batches)`);
      });
    });
}

const f3 = (v: number) => v.toFixed(3);

function scoreRows(scores: EvalScores): string[][] {
  return [
    ['metric', 'value'],
    ['quality', f3(scores.quality)],
    ['nDCG@10', f3(scores.ndcg10)],
    ['MRR@10', f3(scores.mrr10)],
    [`P@${scores.k}`, f3(scores.precision)],
    [`R@${scores.k}`, f3(scores.recall)],
    [`F1@${scores.k}`, f3(scores.f1)],
    ['recall@10', f3(scores.recall10)],
    ['cited source relevant', f3(scores.citedRelevantShare)],
    ['citations present', f3(scores.citationsPresentShare)],
    ['not degraded', f3(scores.nonDegradedShare)],
    ['latency p50 (ms)', String(Math.round(scores.latencyP50Ms))],
    ['latency p95 (ms)', String(Math.round(scores.latencyP95Ms))],
  ];
}

function printRun(result: EvaluateOnceResult, wallMs: number): void {
  const n = result.observations.length;
  console.log(
    `${result.setName} (version ${result.setVersion}), tenant ${result.tenant}: ${n} questions in ` +
      `${(wallMs / 1000).toFixed(1)} s (${(n / (wallMs / 1000)).toFixed(1)} questions/s), ${result.scores.errors} failed`,
  );
  console.log(table(scoreRows(result.scores)));
  const misses = result.observations.filter((o) => o.error || !o.rankedDocIds.some((d) => (o.relevant[d] ?? 0) > 0));
  if (misses.length > 0) {
    console.log(`\nno relevant document retrieved for ${misses.length} question(s):`);
    for (const o of misses.slice(0, 10)) console.log(`  ${o.itemId}${o.error ? ` (failed: ${o.error})` : ''}`);
  }
}

function printStatus(status: EvaluationStatus): void {
  console.log(
    `${evaluationWorkflowId(status.tenant, status.setName)}: ${status.phase}${status.paused ? ' (paused)' : ''}, every ` +
      `${status.settings.intervalMs / 1000} s, ${status.settings.batchSize} per batch; ${status.batches} batches, ` +
      `${status.questions} questions, ${status.continuedAsNew} continue-as-new; set version ${status.setVersion ?? '?'}`,
  );
  const b = status.baseline;
  console.log(
    `baseline quality ${f3(b.qualityMean)} ± ${f3(b.qualityStd)} over ${b.batches} batches; trend ${status.trend >= 0 ? '+' : ''}${f3(status.trend)}`,
  );
  console.log(
    status.firing.length > 0
      ? `FIRING: ${status.firing.map((n) => `${n} (${status.alerts[n].reason ?? ''})`).join('; ')}`
      : 'no alert firing',
  );
  if (status.last) {
    const l = status.last;
    console.log(
      `last batch ${l.batch} at ${l.at}: quality ${f3(l.quality)}, nDCG@10 ${f3(l.ndcg10)}, MRR@10 ${f3(l.mrr10)}, ` +
        `R@k ${f3(l.recall)}, degraded ${f3(l.degradedShare)}, p50 ${Math.round(l.latencyP50Ms)} ms, p95 ${Math.round(l.latencyP95Ms)} ms`,
    );
  }
  if (status.pendingProposals.length > 0) {
    console.log(
      `pending proposals: ${status.pendingProposals.map((p) => `${p.id} (${p.items.length} from ${p.source})`).join(', ')}`,
    );
  }
  if (status.lastError) console.log(`PROBLEM: ${status.lastError}`);
  if (status.nextBatchAt) console.log(`next batch at ${status.nextBatchAt}`);
}
