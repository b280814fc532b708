import type { Client } from '@temporalio/client';
import type { QueryDefinition } from '@temporalio/common';

/** A loop still running under the workflow id used before #24, found to be the one being started. */
export interface LegacyLoop<State> {
  workflowId: string;
  /** Its whole state, for the loop under the new id to take over. */
  state: State;
}

/**
 * Finds a running loop under a legacy id and reads its state, if it belongs to this tenant (and set): legacy ids were
 * ambiguous (`eval-acme-eu-x` is tenant acme's set eu-x and tenant acme-eu's set x), so `belongs` checks the tenant
 * the workflow itself reports. Nothing is found when the workflow is absent, closed, another tenant's, or cannot be
 * queried (no worker yet): it is then left alone, and the next start tries again.
 */
export async function findLegacyLoop<Status, State>(
  client: Client,
  workflowId: string,
  queries: { status: QueryDefinition<Status>; state: QueryDefinition<State> },
  belongs: (status: Status) => boolean,
): Promise<LegacyLoop<State> | undefined> {
  const handle = client.workflow.getHandle(workflowId);
  try {
    if ((await handle.describe()).status.name !== 'RUNNING') return undefined;
    if (!belongs(await handle.query(queries.status))) return undefined;
    return { workflowId, state: await handle.query(queries.state) };
  } catch {
    return undefined;
  }
}

/** Ends the legacy loop once the loop under the new id runs; one that ended meanwhile is fine. */
export async function retireLegacyLoop(client: Client, legacy: LegacyLoop<unknown>, replacedBy: string): Promise<void> {
  await client.workflow
    .getHandle(legacy.workflowId)
    .terminate(`replaced by ${replacedBy}, which took over its state (workflow ids changed in #24)`)
    .catch(() => undefined);
}
