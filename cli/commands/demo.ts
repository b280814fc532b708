import path from 'node:path';
import { Client } from '@temporalio/client';
import type { Command } from 'commander';
import { redactionKey, type Config } from '../../lib/config.js';
import type { ImprovementStatus, ParamProposal } from '../../contracts/improvement.js';
import { loadEvalSet } from '../../lib/eval/dataset.js';
import { DEFAULT_LOAD, runLoad } from '../load.js';
import { RaglineClient } from '../../client/ragline-client.js';
import { temporalTarget } from '../../lib/temporal/target.js';
import { EXIT, type CliContext } from '../context.js';
import { printJson } from '../output.js';

type StepStatus = 'done' | 'skipped' | 'failed';

/** What `ragline demo` measured, step by step; `--json` prints exactly this. */
export interface DemoSummary {
  tenant: string;
  short: boolean;
  steps: Array<{ step: string; status: StepStatus; note?: string }>;
  stack?: { temporal: string; embedded: boolean; taskQueue: string };
  ingest?: { documents: number; added: number; rejected: number; corpusVersion: number };
  answers?: { asked: number; answered: number; degraded: number; meanQuality: number; eagerStarts: number };
  load?: { sent: number; answered: number; errors: number; p50Ms: number; p95Ms: number; resultHitRatio: number };
  evaluation?: { questions: number; errors: number; ndcg10: number; recall: number; quality: number };
  improvement?: {
    outcome: string;
    proposal?: Pick<ParamProposal, 'id' | 'changes' | 'status' | 'decidedBy' | 'appliedVersion'> & {
      ndcg10Before: number;
      ndcg10After: number;
    };
    version: number;
  };
  lookAt: { temporalUi?: string; metrics: string; health: string };
}

const SIZES = {
  full: { questions: 20, users: 8, queriesPerUser: 10, evalQuestions: 30 },
  short: { questions: 3, users: 2, queriesPerUser: 3, evalQuestions: 5 },
};

/** The operator the demo approves as; it is put on the demo tenant's allowlist, nowhere else. */
const DEMO_OPERATOR = 'demo-operator';

/**
 * `ragline demo`: the production walk-through made real on embedded defaults. It starts the stack, ingests the sample
 * corpus into a fresh tenant of its own, answers sample questions, simulates users, runs one evaluation batch and one
 * improvement cycle whose proposal it approves, then prints what was measured and where to look. A step that fails
 * is reported and the rest still run.
 */
export function registerDemoCommand(program: Command, context: CliContext): void {
  program
    .command('demo')
    .description('start the stack, ingest, answer, simulate load, evaluate, improve and approve; then summarise')
    .option('--short', 'a few questions and queries only (a minute on a quiet machine)')
    .option('--exit', 'stop the stack after the summary instead of leaving it up for the UI')
    .option('--json', 'print the summary as JSON')
    .action(async (options: { short?: boolean; exit?: boolean; json?: boolean }) => {
      const config = context.loadConfig();
      const { summary, running } = await runDemo(config, options);
      if (options.json) printJson(summary);
      else console.log(formatDemo(summary));
      if (summary.steps.some((s) => s.status === 'failed')) process.exitCode = EXIT.failure;
      if (running) {
        console.error('the stack stays up for a look around; press Ctrl-C to stop.');
        await running;
      }
    });
}

async function runDemo(
  config: Config,
  options: { short?: boolean; exit?: boolean },
): Promise<{ summary: DemoSummary; running?: Promise<void> }> {
  const size = options.short ? SIZES.short : SIZES.full;
  const tenant = `demo-${Date.now().toString(36)}`;
  const log = (line: string) => console.error(`demo: ${line}`);
  const { startWorkerProcess } = await import('../../workers/main.js');
  const target = temporalTarget(config);
  log(target.embedded ? 'starting the embedded Temporal dev server and a worker…' : `using ${target.address}`);
  const proc = await startWorkerProcess(config, { log });
  const metricsUrl = `http://127.0.0.1:${proc.telemetry.port}`;
  const summary: DemoSummary = {
    tenant,
    short: options.short === true,
    steps: [],
    stack: { temporal: proc.address, embedded: target.embedded, taskQueue: config.RAGLINE_TASK_QUEUE },
    lookAt: { temporalUi: proc.uiUrl, metrics: `${metricsUrl}/metrics`, health: `${metricsUrl}/readyz` },
  };
  const starts = { eager: 0 };
  // On the worker's own connection, so the demo's queries start eagerly as `serve --worker` starts them.
  const client = new RaglineClient(
    new Client({ connection: proc.connection, namespace: proc.namespace }),
    config.RAGLINE_TASK_QUEUE,
    {
      maxQueryChars: config.RAGLINE_MAX_QUERY_CHARS,
      redactKey: redactionKey(config),
      eagerStart: true,
      onStarted: ({ eager }) => (starts.eager += eager ? 1 : 0),
    },
  );
  const step = async (name: string, run: () => Promise<string | undefined>) => {
    log(`${name}…`);
    try {
      const note = await run();
      summary.steps.push({ step: name, status: 'done', ...(note ? { note } : {}) });
    } catch (error) {
      const note = error instanceof Error ? error.message.split('\n')[0] : String(error);
      const status = error instanceof SkipStep ? 'skipped' : 'failed';
      log(`${name} ${status}: ${note}`);
      summary.steps.push({ step: name, status, note });
    }
  };
  const evalSet = path.resolve(config.RAGLINE_EVAL_SET);
  // The evaluation set's questions are the sample questions; without a readable set the steps needing it are skipped.
  let setProblem: string | undefined;
  const questions = await loadEvalSet(evalSet).then(
    (set) => set.items.map((item) => item.question),
    (error: unknown) => {
      setProblem = error instanceof Error ? error.message : String(error);
      return [] as string[];
    },
  );
  const needs = (what: 'questions' | 'evaluation set') => {
    if (questions.length === 0)
      throw new SkipStep(`no ${what}: RAGLINE_EVAL_SET (${evalSet}) ${setProblem ?? 'holds no questions'}`);
  };

  try {
    await step('ingest the sample corpus', async () => {
      const result = await client.ingest([path.resolve(config.RAGLINE_SAMPLE_CORPUS)], { tenant });
      summary.ingest = {
        documents: result.documentsDone,
        added: result.added,
        rejected: result.rejected,
        corpusVersion: result.corpusVersion,
      };
      return undefined;
    });

    await step('answer sample questions', async () => {
      needs('questions');
      const asked = questions.slice(0, size.questions);
      const results = [];
      for (const query of asked) results.push(await client.ask({ query, tenant }));
      summary.answers = {
        asked: asked.length,
        answered: results.filter((r) => r.answer.length > 0).length,
        degraded: results.filter((r) => r.degraded).length,
        meanQuality: round(results.reduce((sum, r) => sum + r.qualityScore, 0) / Math.max(results.length, 1)),
        eagerStarts: starts.eager,
      };
      return undefined;
    });

    await step('simulate users', async () => {
      needs('questions');
      const report = await runLoad(client, questions, {
        ...DEFAULT_LOAD,
        concurrency: 4,
        users: size.users,
        queriesPerUser: size.queriesPerUser,
        tenant,
      });
      summary.load = {
        sent: report.sent,
        answered: report.answered,
        errors: report.errors,
        p50Ms: Math.round(report.latencyMs.all.p50),
        p95Ms: Math.round(report.latencyMs.all.p95),
        resultHitRatio: report.hitRatio.result,
      };
      return undefined;
    });

    await step('run an evaluation batch', async () => {
      needs('evaluation set');
      const result = await client.evaluation.runOnce({
        dataset: evalSet,
        tenant,
        limit: size.evalQuestions,
      });
      summary.evaluation = {
        questions: result.scores.samples,
        errors: result.scores.errors,
        ndcg10: round(result.scores.ndcg10),
        recall: round(result.scores.recall),
        quality: round(result.scores.quality),
      };
      return undefined;
    });

    await step('run an improvement cycle and approve its proposal', async () => {
      needs('evaluation set');
      const improvement = client.improvement;
      await improvement.ensure(tenant, {
        intervalMs: 3_600_000,
        approvalTtlMs: 3_600_000,
        evalSet,
        approvers: [DEMO_OPERATOR],
        autoApplyScale: 0,
      });
      // A deliberately poor top-k, so the cycle measures a large gain and must ask a person before applying it.
      await improvement.setParams(tenant, { topK: 1 }, DEMO_OPERATOR, 'demo: start from a poor configuration');
      await improvement.runNow(tenant);
      let status: ImprovementStatus | undefined;
      for (let attempt = 0; attempt < 1200; attempt++) {
        status = await improvement.status(tenant);
        if (status.cycles >= 1) break;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      const cycle = status?.history.at(-1);
      if (!status || !cycle) throw new Error('the improvement cycle did not finish');
      const pending = status.pending[0];
      summary.improvement = { outcome: cycle.outcome, version: status.current?.version ?? 0 };
      if (!pending) return `cycle outcome ${cycle.outcome}: no approval request raised`;
      const approved = await improvement.approve(tenant, pending.id, DEMO_OPERATOR, 'demo: measured gain, reviewed');
      summary.improvement = {
        outcome: cycle.outcome,
        version: approved.appliedVersion ?? status.current?.version ?? 0,
        proposal: {
          id: approved.id,
          changes: approved.changes,
          status: approved.status,
          decidedBy: approved.decidedBy,
          appliedVersion: approved.appliedVersion,
          ndcg10Before: approved.effect.before,
          ndcg10After: approved.effect.after,
        },
      };
      return undefined;
    });
  } finally {
    if (options.exit) await proc.stop();
  }
  if (options.exit) return { summary };
  const stop = () => void proc.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return { summary, running: proc.running };
}

const round = (n: number) => Math.round(n * 1000) / 1000;

/** Thrown by a step whose feature or input is not there: reported as skipped with the reason, not as a failure. */
class SkipStep extends Error {}

export function formatDemo(s: DemoSummary): string {
  const lines = [`ragline demo${s.short ? ' (short)' : ''} — tenant ${s.tenant}`];
  if (s.stack)
    lines.push(
      `  stack        Temporal at ${s.stack.temporal}${s.stack.embedded ? ' (embedded dev server)' : ''}, task queue ${s.stack.taskQueue}`,
    );
  if (s.ingest)
    lines.push(
      `  ingest       ${s.ingest.documents} documents (${s.ingest.added} added, ${s.ingest.rejected} rejected), corpus version ${s.ingest.corpusVersion}`,
    );
  if (s.answers)
    lines.push(
      `  answers      ${s.answers.answered}/${s.answers.asked} answered, ${s.answers.degraded} degraded, mean quality ${s.answers.meanQuality}, ${s.answers.eagerStarts} started eagerly`,
    );
  if (s.load)
    lines.push(
      `  load         ${s.load.sent} queries: ${s.load.answered} answered, ${s.load.errors} errors, p50 ${s.load.p50Ms} ms, p95 ${s.load.p95Ms} ms, result-cache hit ratio ${s.load.resultHitRatio}`,
    );
  if (s.evaluation)
    lines.push(
      `  evaluation   ${s.evaluation.questions} questions (${s.evaluation.errors} errors): nDCG@10 ${s.evaluation.ndcg10}, recall@k ${s.evaluation.recall}, quality ${s.evaluation.quality}`,
    );
  if (s.improvement) {
    const p = s.improvement.proposal;
    lines.push(
      p
        ? `  improvement  cycle ${s.improvement.outcome} ${p.id} (${p.changes}; nDCG@10 ${p.ndcg10Before} → ${p.ndcg10After}), ${p.status} by ${p.decidedBy ?? '?'} → parameters version ${s.improvement.version}`
        : `  improvement  cycle ${s.improvement.outcome}, parameters version ${s.improvement.version}`,
    );
  }
  for (const step of s.steps.filter((x) => x.status !== 'done' || x.note))
    lines.push(`  ${step.status.toUpperCase()} ${step.step}${step.note ? `: ${step.note}` : ''}`);
  lines.push('where to look:');
  if (s.lookAt.temporalUi) lines.push(`  Temporal Web UI  ${s.lookAt.temporalUi}  (workflows of tenant ${s.tenant})`);
  lines.push(`  metrics          ${s.lookAt.metrics}`, `  readiness        ${s.lookAt.health}`);
  return lines.join('\n');
}
