import fs from 'node:fs/promises';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { DeterminismViolationError } from '@temporalio/workflow';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { InvalidInputError } from '../lib/errors.js';
import { workflowsPath } from '../workers/runtime.js';

const GRPC_NOT_FOUND = 5;

const silent = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

export interface ReplayReport {
  workflowId: string;
  workflowType?: string;
  events: number;
  ok: boolean;
  /** Set when the current code issues other commands than the history recorded. */
  nondeterminism?: { message: string; eventId?: number; eventType?: string };
}

type JsonHistory = { events?: Array<{ eventId?: string | number; eventType?: string; [key: string]: unknown }> };

/**
 * Reads a history as the Temporal UI downloads it or as `temporal workflow show --output json` prints it (both
 * proto3 JSON, the UI's with `WorkflowExecutionStarted`-style event types, the CLI's with `EVENT_TYPE_…`).
 */
export async function readHistoryFile(file: string): Promise<JsonHistory> {
  let text;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    throw new InvalidInputError(`cannot read ${file}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new InvalidInputError(`${file} is not JSON`);
  }
  const history = parsed as JsonHistory;
  if (!Array.isArray(history?.events) || history.events.length === 0) {
    throw new InvalidInputError(`${file} has no "events": expected a workflow history exported as JSON`);
  }
  return history;
}

/** Fetches a workflow's history from Temporal, as JSON like a downloaded one. */
export async function fetchHistory(client: Client, workflowId: string): Promise<JsonHistory> {
  try {
    const history = await client.workflow.getHandle(workflowId).fetchHistory();
    return JSON.parse(historyToJSON(history)) as JsonHistory;
  } catch (error) {
    // fetchHistory reports an unknown id as a bare gRPC NOT_FOUND error rather than WorkflowNotFoundError.
    const code = (error as { code?: unknown }).code ?? (error as { cause?: { code?: unknown } }).cause?.code;
    const notFound = error instanceof WorkflowNotFoundError || code === GRPC_NOT_FOUND;
    if (notFound) throw new InvalidInputError(`no workflow "${workflowId}"`);
    throw error;
  }
}

/**
 * Replays a history against the workflow code in this checkout and says where it diverged: the first event whose
 * recorded command the current code no longer issues.
 */
export async function replayHistory(
  history: JsonHistory,
  options: { workflowId?: string; workflowsPath?: string; workflowBundle?: { code: string } } = {},
): Promise<ReplayReport> {
  const started = history.events?.[0]?.workflowExecutionStartedEventAttributes as
    { workflowType?: { name?: string } } | undefined;
  const workflowId = options.workflowId ?? 'replayed-workflow';
  const report: ReplayReport = {
    workflowId,
    workflowType: started?.workflowType?.name,
    events: history.events?.length ?? 0,
    ok: true,
  };
  const workflowBundle =
    options.workflowBundle ??
    (await bundleWorkflowCode({
      workflowsPath: options.workflowsPath ?? workflowsPath(),
      logger: silent,
    }));
  try {
    // The workflow's metrics sink has nothing to do on replay; registering it keeps the SDK from logging it as missing.
    await Worker.runReplayHistory(
      { workflowBundle, sinks: { queryMetrics: { answered: { fn() {} } } } },
      history,
      workflowId,
    );
  } catch (error) {
    if (!(error instanceof DeterminismViolationError)) {
      // A history the SDK cannot decode (wrong shape, unknown event type) is bad input, not a replay failure.
      if (error instanceof TypeError || /history|event/i.test(String(error))) {
        throw new InvalidInputError(`not a replayable workflow history: ${String(error).split('\n')[0]}`);
      }
      throw error;
    }
    report.ok = false;
    const eventId = firstDivergentEvent(error.message, history);
    report.nondeterminism = {
      message: /\[TMPRL\d+\][^"]*/.exec(error.message)?.[0] ?? error.message.split('\n')[0] ?? error.message,
      eventId,
      eventType:
        eventId === undefined
          ? undefined
          : String(history.events?.find((e) => Number(e.eventId) === eventId)?.eventType ?? ''),
    };
  }
  return report;
}

/**
 * The core SDK names the mismatch (`… event 7 …` or a command/event pair) but not always an id; when it gives none,
 * the first scheduled activity or timer whose name the message quotes is the best pointer for a reader.
 */
function firstDivergentEvent(message: string, history: JsonHistory): number | undefined {
  const explicit = /event(?:[ _]?id)?[\s:=#]+(\d+)/i.exec(message);
  if (explicit?.[1]) return Number(explicit[1]);
  for (const event of history.events ?? []) {
    const attributes = event.activityTaskScheduledEventAttributes as { activityType?: { name?: string } } | undefined;
    const name = attributes?.activityType?.name;
    if (name && message.includes(name)) return Number(event.eventId);
  }
  return undefined;
}
