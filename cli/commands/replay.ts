import type { Command } from 'commander';
import { ErrorType, RaglineError } from '../../lib/errors.js';
import { EXIT, type CliContext } from '../context.js';
import { printJson } from '../output.js';

/** `ragline replay`: a history, from Temporal or a file, against this checkout's workflow code. */
export function registerReplayCommand(program: Command, context: CliContext): void {
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
      // Imported here, not at the top: the worker SDK and the workflow bundler load only for this command.
      const { fetchHistory, readHistoryFile, replayHistory } = await import('../replay.js');
      const { DefaultLogger, Runtime, makeTelemetryFilterString } = await import('@temporalio/worker');
      // The replay worker's lifecycle lines and core's own warning are noise here; the report says what happened.
      Runtime.install({
        logger: new DefaultLogger('ERROR'),
        telemetryOptions: { logging: { forward: {}, filter: makeTelemetryFilterString({ core: 'ERROR' }) } },
      });
      let history;
      if (options.file) history = await readHistoryFile(options.file);
      else {
        const client = await context.connect(context.loadConfig());
        try {
          history = await fetchHistory(client.client, workflowId ?? '');
        } finally {
          await client.close();
        }
      }
      const report = await replayHistory(history, { workflowId });
      if (options.json) printJson(report);
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
}
