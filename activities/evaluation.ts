import { createHash } from 'node:crypto';
import { appendFile, readFile, stat } from 'node:fs/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { DEFAULT_ALERT_POLICY, type AlertName } from '../lib/eval/alerts.js';
import type { EvalItem, EvalSet } from '../lib/eval/dataset.js';
import { appendToOverlay, loadTenantEvalSet, overlayFile } from '../lib/eval/overlay.js';
import type { EvalMetrics } from '../lib/eval/eval-metrics.js';
import { ErrorType } from '../lib/errors.js';
import type { Logger } from '../lib/telemetry/logger.js';
import type { BatchSummary, EvalAlertNotice } from '../contracts/evaluation.js';
import { atBoundary } from './failures.js';

export interface EvaluationDeps {
  metrics: EvalMetrics;
  logger: Logger;
  /** Receives alert transitions as JSON POSTs; unset sends none. */
  webhookUrl?: string;
  /** One webhook attempt's limit; Temporal retries the activity. */
  webhookTimeoutMs: number;
  /** Where each tenant's accepted questions are kept (lib/eval/overlay.ts); unset keeps them in the set file. */
  overlayDir?: string;
}

export interface SampleEvalItemsInput {
  dataset: string;
  /** Whose overlay joins the set; absent (one-off runs started by older code) reads the set alone. */
  tenant?: string;
  /** Position in the set's order where the sample starts; it wraps around. */
  offset: number;
  size: number;
  /** File order instead of the stable shuffled order (one-off runs report questions as the file lists them). */
  ordered?: boolean;
}

export interface SampleEvalItemsResult {
  name: string;
  version: string;
  total: number;
  problems: number;
  items: EvalItem[];
  nextOffset: number;
}

export interface RecordEvalBatchInput {
  tenant: string;
  setName: string;
  workflowId: string;
  summary: BatchSummary;
  baselineQuality: number;
  firing: AlertName[];
  outcomes: { ok: number; degraded: number; error: number };
}

export interface AppendEvalItemsInput {
  dataset: string;
  /** The tenant whose overlay receives the questions; absent (older histories) writes into the set file. */
  tenant?: string;
  items: EvalItem[];
}

const ALERT_NAMES: AlertName[] = ['quality', 'latency'];

/**
 * The evaluation workflow's hands: read the set, record figures (metrics and a log line), announce alerts, POST
 * webhooks, and write accepted proposals into the set. Running the questions is the query workflow's job.
 */
export const createEvaluationActivities = (deps: EvaluationDeps) => {
  // Parsed sets by path, reused while the file is unchanged: a batch every few seconds must not re-read SciFact.
  const sets = new Map<string, { stamp: string; set: EvalSet; order: EvalItem[] }>();

  const overlayOf = (dataset: string, tenant: string | undefined) =>
    tenant === undefined || deps.overlayDir === undefined ? undefined : overlayFile(deps.overlayDir, tenant, dataset);

  const stampOf = async (file: string | undefined) => {
    const info = file === undefined ? undefined : await stat(file).catch(() => undefined);
    return { stamp: info ? `${info.mtimeMs}:${info.size}` : 'missing', isFile: info?.isFile() === true };
  };

  const cacheKeyOf = (dataset: string, tenant: string | undefined) => `${tenant ?? ''}\0${dataset}`;

  const readSet = async (dataset: string, tenant?: string) => {
    const base = await stampOf(dataset);
    const cacheKey = cacheKeyOf(dataset, tenant);
    const cached = sets.get(cacheKey);
    const overlay = overlayOf(dataset, tenant);
    const stamp = `${base.stamp}|${(await stampOf(overlay)).stamp}`;
    if (cached && cached.stamp === stamp && base.isFile) return cached;
    const set = await loadTenantEvalSet(dataset, overlay);
    // A stable shuffle (by hash of the id) so consecutive batches cover different topics, not the file's runs.
    const key = (item: EvalItem) => createHash('sha256').update(item.id).digest('hex');
    const order = [...set.items].sort((a, b) => (key(a) < key(b) ? -1 : 1));
    const entry = { stamp, set, order };
    sets.set(cacheKey, entry);
    return entry;
  };

  const labels = (tenant: string, setName: string) => ({ tenant, eval_set: setName });

  return {
    async sampleEvalItems(input: SampleEvalItemsInput): Promise<SampleEvalItemsResult> {
      return atBoundary(async () => {
        const { set, order } = await readSet(input.dataset, input.tenant);
        const source = input.ordered ? set.items : order;
        const total = source.length;
        const size = Math.min(Math.max(input.size, 1), total);
        const start = ((input.offset % total) + total) % total;
        const items = Array.from({ length: size }, (_, i) => source[(start + i) % total]!);
        return {
          name: set.name,
          version: set.version,
          total,
          problems: set.problems.length,
          items,
          nextOffset: (start + size) % total,
        };
      });
    },

    async recordEvalBatch(input: RecordEvalBatchInput): Promise<void> {
      const { metrics } = deps;
      const l = labels(input.tenant, input.setName);
      const s = input.summary;
      metrics.quality.set(l, s.quality);
      metrics.ndcg10.set(l, s.ndcg10);
      metrics.recall10.set(l, s.recall10);
      metrics.mrr10.set(l, s.mrr10);
      metrics.precisionAtK.set(l, s.precision);
      metrics.recallAtK.set(l, s.recall);
      metrics.f1AtK.set(l, s.f1);
      metrics.citedRelevantShare.set(l, s.citedRelevantShare);
      metrics.degradedShare.set(l, s.degradedShare);
      metrics.latencyP50.set(l, s.latencyP50Ms / 1000);
      metrics.latencyP95.set(l, s.latencyP95Ms / 1000);
      metrics.baselineQuality.set(l, input.baselineQuality);
      metrics.batches.inc(l);
      for (const outcome of ['ok', 'degraded', 'error'] as const) {
        metrics.questions.inc({ ...l, outcome }, input.outcomes[outcome]);
      }
      for (const alert of ALERT_NAMES) metrics.alertFiring.set({ ...l, alert }, input.firing.includes(alert) ? 1 : 0);
      deps.logger.info(
        {
          event: 'eval.batch',
          workflowId: input.workflowId,
          tenant: input.tenant,
          evalSet: input.setName,
          ...s,
          baselineQuality: input.baselineQuality,
          firing: input.firing,
        },
        'evaluation batch recorded',
      );
    },

    /** Metrics and one log line per alert transition; the webhook is a separate activity so its retries log once. */
    async recordEvalAlert(notice: EvalAlertNotice): Promise<void> {
      const { event } = notice;
      const l = labels(notice.tenant, notice.setName);
      deps.metrics.alerts.inc({ ...l, alert: event.name, state: event.state });
      deps.metrics.alertFiring.set({ ...l, alert: event.name }, event.state === 'firing' ? 1 : 0);
      const line = { event: 'eval.alert', ...alertFields(notice) };
      if (event.state === 'firing') deps.logger.warn(line, `evaluation alert firing: ${event.reason}`);
      else deps.logger.info(line, `evaluation alert resolved: ${event.name}`);
    },

    /**
     * POSTs an alert transition to the configured webhook. Non-2xx answers and timeouts throw, so Temporal retries
     * with backoff; a 4xx other than 408/429 is the receiver refusing the payload and is not retried.
     */
    async sendEvalWebhook(notice: EvalAlertNotice): Promise<{ sent: boolean; status?: number; attempt: number }> {
      const attempt = Context.current().info.attempt;
      if (!deps.webhookUrl) return { sent: false, attempt };
      const { event } = notice;
      const body = {
        kind: 'ragline.eval.alert',
        ...alertFields(notice),
        at: event.at,
        defaults: {
          qualityThreshold: DEFAULT_ALERT_POLICY.qualityThreshold,
          latencyP95Ms: DEFAULT_ALERT_POLICY.latencyP95Ms,
        },
      };
      let response: Response;
      try {
        response = await fetch(deps.webhookUrl, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            // Receivers can drop retried deliveries of the same transition.
            'idempotency-key': `${notice.workflowId}:${event.name}:${event.state}:${event.batch}`,
          },
          body: JSON.stringify(body),
          signal: AbortSignal.any([AbortSignal.timeout(deps.webhookTimeoutMs), Context.current().cancellationSignal]),
        });
      } catch (error) {
        throw ApplicationFailure.create({
          type: ErrorType.Unavailable,
          message: `webhook unreachable: ${error instanceof Error ? error.message : String(error)}`,
        });
      }
      await response.body?.cancel().catch(() => undefined);
      if (!response.ok) {
        const refused =
          response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429;
        throw ApplicationFailure.create({
          type: refused ? ErrorType.InvalidInput : ErrorType.Unavailable,
          message: `webhook answered HTTP ${response.status}`,
          nonRetryable: refused,
        });
      }
      return { sent: true, status: response.status, attempt };
    },

    /**
     * Writes an accepted proposal's questions into a ground-truth JSONL set. Questions whose id the set already has
     * are skipped, so a retried attempt does not add them twice.
     */
    async appendEvalItems(input: AppendEvalItemsInput): Promise<{ added: number; version: string }> {
      return atBoundary(async () => {
        const info = await stat(input.dataset);
        if (!info.isFile()) {
          throw ApplicationFailure.create({
            type: ErrorType.InvalidInput,
            message: `proposals can only be written into a ground-truth JSONL file, not the folder ${input.dataset}`,
            nonRetryable: true,
          });
        }
        const overlay = overlayOf(input.dataset, input.tenant);
        const existing = await loadTenantEvalSet(input.dataset, overlay);
        const known = new Set(existing.items.map((item) => item.id));
        const fresh = input.items.filter((item) => !known.has(item.id));
        if (overlay !== undefined) await appendToOverlay(overlay, fresh);
        else if (fresh.length > 0) {
          const text = await readFile(input.dataset, 'utf8');
          const lines = fresh.map((item) =>
            JSON.stringify({ id: item.id, query: item.question, relevant: item.relevant }),
          );
          await appendFile(input.dataset, `${text.endsWith('\n') || text === '' ? '' : '\n'}${lines.join('\n')}\n`);
        }
        sets.delete(cacheKeyOf(input.dataset, input.tenant));
        return { added: fresh.length, version: (await loadTenantEvalSet(input.dataset, overlay)).version };
      });
    },
  };
};

/** What the log line and the webhook both say of an alert transition. */
function alertFields({ workflowId, tenant, setName, event }: EvalAlertNotice) {
  return {
    workflowId,
    tenant,
    evalSet: setName,
    alert: event.name,
    state: event.state,
    reason: event.reason,
    value: event.value,
    threshold: event.threshold,
    batch: event.batch,
  };
}
