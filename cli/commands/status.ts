import type { Command } from 'commander';
import { runHealthChecks } from '../../lib/telemetry/telemetry-server.js';
import { temporalTarget } from '../../lib/temporal/target.js';
import type { ReindexProgress } from '../../contracts/reindex.js';
import { EXIT, type CliContext } from '../context.js';
import { printJson } from '../output.js';

/** `ragline status`: what answers, and whether it is ready; it starts no workflow. */
export function registerStatusCommand(program: Command, context: CliContext): void {
  program
    .command('status')
    .description('Temporal, worker, corpus and dependency health')
    .option('--tenant <tenant>')
    .option('--json')
    .action(async (options: { tenant?: string; json?: boolean }) => {
      const config = context.loadConfig();
      const target = temporalTarget(config);
      const report: Record<string, unknown> = {
        temporal: { address: target.address, namespace: target.namespace, embedded: target.embedded },
      };
      let ok = true;
      try {
        const client = await context.connect(config, 3000);
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
      if (options.json) printJson(report);
      else printStatus(report);
      if (!ok) process.exitCode = EXIT.failure;
    });
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
