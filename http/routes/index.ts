import type { Client } from '@temporalio/client';
import type { RouteMount } from '../context.js';
import { evaluationRoutes, type EvaluationRoutesOptions } from './evaluation.js';
import { approvalRoutes } from './improvement.js';

export { chatRoutes } from './chat.js';
export { documentRoutes } from './documents.js';
export { healthRoutes } from './health.js';
export { feedbackRoutes, queryRoutes } from './query.js';

export type OperatorRoutesOptions = EvaluationRoutesOptions;

/**
 * The operators' side of the HTTP API: a tenant's approval requests and its continuous evaluation, mounted with
 * `createHttpApi(client, { routes: [operatorRoutes(...)] })`. They act through the server's `RaglineClient` sub-clients;
 * `client` and `taskQueue` must be the ones it was built from (checked when mounted), so a server never decides
 * approvals on one task queue while it answers on another.
 */
export function operatorRoutes(client: Client, taskQueue: string, options: OperatorRoutesOptions): RouteMount {
  const evaluation = evaluationRoutes(options);
  return (app, context) => {
    if (context.ragline.client !== client || context.ragline.taskQueue !== taskQueue)
      throw new Error(
        `operator routes for task queue "${taskQueue}" mounted on a server whose client serves "${context.ragline.taskQueue}" or another Temporal client`,
      );
    approvalRoutes(app, context);
    evaluation(app, context);
  };
}
