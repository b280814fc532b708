import { Registry } from 'prom-client';
import { createEvalMetrics } from '../lib/eval/eval-metrics.js';
import type { ActivityDeps } from './deps.js';
import { createEvaluationActivities } from './evaluation.js';
import { createFeedbackActivities } from './feedback.js';
import { createImprovementActivities } from './improvement.js';
import { createIngestionActivities } from './ingestion.js';
import { createQueryActivities } from './query.js';
import { createReindexActivities } from './reindex.js';

/**
 * Every activity a ragline worker registers, one factory per feature over the same deps. The names are those the
 * workflow histories hold: a factory's activity keeps its name wherever its code lives.
 */
export const createActivities = (deps: ActivityDeps) => {
  const { store } = deps;

  const evaluation = createEvaluationActivities(
    deps.evaluation ?? { metrics: createEvalMetrics(new Registry()), logger: deps.logger, webhookTimeoutMs: 5000 },
  );

  const improvement = createImprovementActivities(deps.improvement);

  const feedback = createFeedbackActivities({ queryLog: deps.improvement.queryLog });

  const reindex = createReindexActivities(deps.reindex ?? { store, kind: store.kind });

  return {
    ...evaluation,
    ...improvement,
    ...feedback,
    ...reindex,
    ...createQueryActivities(deps),
    ...createIngestionActivities(deps),
  };
};
