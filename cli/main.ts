import { Command } from 'commander';
import { ConfigError, loadConfig, type Config } from '../lib/config.js';
import { ErrorType, RaglineError } from '../lib/errors.js';
import { startTracing, temporalClientInterceptors, type Tracing } from '../lib/telemetry/tracing.js';
import { RaglineClient } from '../client/ragline-client.js';
import { EXIT, type CliContext } from './context.js';
import { printError } from './output.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerDocsCommands } from './commands/docs.js';
import { registerEvalCommands } from './commands/eval.js';
import { registerImproveCommands } from './commands/improve.js';
import { registerIngestCommands } from './commands/ingest.js';
import { registerLoadCommand } from './commands/load.js';
import { registerAskCommand, registerFeedbackCommand } from './commands/query.js';
import { registerReplayCommand } from './commands/replay.js';
import { registerServeCommands } from './commands/serve.js';
import { registerStatusCommand } from './commands/status.js';

const program = new Command('ragline')
  .description('Retrieval-augmented generation on Temporal')
  .showHelpAfterError()
  .configureOutput({ outputError: (text, write) => write(text) });

// The process's one tracing SDK, started by the first connection and flushed before a normal exit.
let tracing: Tracing | undefined;

async function connect(config: Config, connectTimeoutMs?: number): Promise<RaglineClient> {
  tracing ??= startTracing({ serviceName: config.OTEL_SERVICE_NAME, otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT });
  return RaglineClient.connect(config, {
    interceptors: tracing.enabled ? temporalClientInterceptors() : undefined,
    connectTimeoutMs,
  });
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

const context: CliContext = { loadConfig, connect, connectWithWorker };

// In this order `ragline --help` lists the commands.
registerServeCommands(program, context); // up, setup, worker, serve, token
registerAskCommand(program, context);
registerIngestCommands(program, context); // ingest, reindex
registerDocsCommands(program, context);
registerStatusCommand(program, context);
registerFeedbackCommand(program, context);
registerImproveCommands(program, context); // improve, approvals, params
registerLoadCommand(program, context);
registerReplayCommand(program, context);
registerEvalCommands(program, context);
registerDemoCommand(program, context);

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
  printError(error);
  process.exit(exitCodeOf(error));
}
