import { InvalidArgumentError } from 'commander';
import type { Config } from '../lib/config.js';
import type { RaglineClient } from '../client/ragline-client.js';

/** Exit codes: 1 a failure, 2 bad input or configuration, 3 done but some documents were rejected. */
export const EXIT = { failure: 1, badInput: 2, partial: 3 } as const;

/**
 * What main.ts, the composition root, hands every command group: the configuration and the connections it makes
 * (with tracing on), so no command file holds process-wide state of its own.
 */
export interface CliContext {
  loadConfig: () => Config;
  /** Connects with tracing on, so a trace starts at the client's StartWorkflow call. */
  connect: (config: Config, connectTimeoutMs?: number) => Promise<RaglineClient>;
  /** Connects and refuses, with the command to start one, when no worker polls the task queue. */
  connectWithWorker: (config: Config) => Promise<RaglineClient>;
}

export const positiveInt = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
};
