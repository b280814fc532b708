import os from 'node:os';
import type { Command } from 'commander';
import type { Config } from '../../lib/config.js';
import { ErrorType, RaglineError } from '../../lib/errors.js';
import { PARAM_BOUNDS, paramsProblem, type RetrievalParams } from '../../lib/improve/params.js';
import type { ImprovementStatus, ParamProposal } from '../../contracts/improvement.js';
import { improvementSettings, type ImprovementClient } from '../../client/improvement-client.js';
import type { CliContext } from '../context.js';
import { printJson } from '../output.js';

/** Who the CLI acts as: --operator, RAGLINE_OPERATOR, or the login name. It is checked against RAGLINE_APPROVERS. */
const operatorOf = (config: Config, option?: string) => option ?? config.RAGLINE_OPERATOR ?? os.userInfo().username;

/** `ragline improve`, `approvals` and `params`: the improvement workflow of a tenant, its proposals and parameters. */
export function registerImproveCommands(program: Command, context: CliContext): void {
  const improvementClient = async (config: Config): Promise<ImprovementClient> => {
    const client = await context.connectWithWorker(config);
    return client.improvement;
  };

  const improve = program.command('improve').description('the continuous-improvement workflow of a tenant');
  improve
    .command('start')
    .description('start the improvement workflow (idempotent: a running one is left alone)')
    .option('--tenant <tenant>')
    .action(async (options: { tenant?: string }) => {
      const config = context.loadConfig();
      const improvement = await improvementClient(config);
      const id = await improvement.ensure(options.tenant ?? config.RAGLINE_DEFAULT_TENANT, improvementSettings(config));
      console.log(`improvement workflow ${id} is running`);
    });
  improve
    .command('run')
    .description('run an improvement cycle now')
    .option('--tenant <tenant>')
    .action(async (options: { tenant?: string }) => {
      const config = context.loadConfig();
      await (await improvementClient(config)).runNow(options.tenant ?? config.RAGLINE_DEFAULT_TENANT);
      console.log('cycle requested');
    });
  improve
    .command('status')
    .description('last analysis, cycles and proposals')
    .option('--tenant <tenant>')
    .option('--json')
    .action(async (options: { tenant?: string; json?: boolean }) => {
      const config = context.loadConfig();
      const status = await (await improvementClient(config)).status(options.tenant ?? config.RAGLINE_DEFAULT_TENANT);
      if (options.json) printJson(status);
      else printImprovement(status);
    });

  const approvals = program.command('approvals').description('parameter changes waiting for a person');
  approvals
    .command('list')
    .option('--tenant <tenant>')
    .option('--all', 'decided and expired proposals too')
    .option('--json')
    .action(async (options: { tenant?: string; all?: boolean; json?: boolean }) => {
      const config = context.loadConfig();
      const status = await (await improvementClient(config)).status(options.tenant ?? config.RAGLINE_DEFAULT_TENANT);
      const shown = options.all ? status.proposals : status.pending;
      if (options.json) printJson(shown);
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
        const config = context.loadConfig();
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
      const config = context.loadConfig();
      const status = await (await improvementClient(config)).status(options.tenant ?? config.RAGLINE_DEFAULT_TENANT);
      if (options.json) printJson(status.current);
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
      const config = context.loadConfig();
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
      const config = context.loadConfig();
      const entry = await (
        await improvementClient(config)
      ).rollback(options.tenant ?? config.RAGLINE_DEFAULT_TENANT, operatorOf(config, options.operator), options.reason);
      console.log(`rolled back: version ${entry.fromVersion} → ${entry.toVersion}`);
    });
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
