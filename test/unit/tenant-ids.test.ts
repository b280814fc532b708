import { describe, expect, it } from 'vitest';
import { evaluationWorkflowId } from '../../contracts/evaluation.js';
import { improvementWorkflowId } from '../../contracts/improvement.js';
import { reindexWorkflowId } from '../../contracts/reindex.js';
import { resultKey } from '../../lib/cache/keys.js';
import { channelName } from '../../lib/stream/token-channel.js';
import { tenantOfScopedId } from '../../lib/tenant.js';

/** Names chosen to collide under a '-' separator: every split of `acme-eu-sample-corpus` is here. */
const TENANTS = ['acme', 'acme-eu', 'acme-eu-sample', 'a', 'eu', 'acme_eu', 'default'];
const NAMES = ['eu-sample-corpus', 'sample-corpus', 'corpus', 'eu', 'x', 'default'];

describe('per-tenant ids', () => {
  it('never give two (tenant, set) pairs the same evaluation workflow id, and read the tenant back', () => {
    const seen = new Map<string, string>();
    for (const tenant of TENANTS) {
      for (const set of NAMES) {
        const id = evaluationWorkflowId(tenant, set);
        expect(seen.get(id), `${tenant} + ${set} and ${seen.get(id)} share ${id}`).toBeUndefined();
        seen.set(id, `${tenant} + ${set}`);
        expect(tenantOfScopedId(id)).toBe(tenant);
      }
    }
    // The reported case: tenant acme asking for set eu-sample-corpus reached acme-eu's sample-corpus.
    expect(evaluationWorkflowId('acme', 'eu-sample-corpus')).not.toBe(evaluationWorkflowId('acme-eu', 'sample-corpus'));
  });

  it('give each tenant its own improvement and reindex workflow, distinct from every evaluation id', () => {
    const ids = new Set<string>();
    for (const tenant of TENANTS) {
      for (const id of [improvementWorkflowId(tenant), reindexWorkflowId(tenant)]) {
        expect(ids.has(id)).toBe(false);
        ids.add(id);
        expect(tenantOfScopedId(id)).toBe(tenant);
      }
      for (const set of NAMES) expect(ids.has(evaluationWorkflowId(tenant, set))).toBe(false);
    }
  });

  it('keep stream channels and result-cache keys apart for tenants whose names extend one another', () => {
    const channels = new Set<string>();
    for (const tenant of TENANTS) for (const name of NAMES) channels.add(channelName('p:', tenant, name));
    expect(channels.size).toBe(TENANTS.length * NAMES.length);
    const scope = (tenant: string) => ({ tenant, corpusVersion: 1, topK: 5, generatorModel: 'extractive' });
    const keys = new Set(TENANTS.map((tenant) => resultKey(scope(tenant), 'what is a widget')));
    expect(keys.size).toBe(TENANTS.length);
  });

  it('read no tenant from an id of another shape', () => {
    expect(tenantOfScopedId('eval-acme-set')).toBeUndefined();
    expect(tenantOfScopedId(':acme:set')).toBeUndefined();
    expect(tenantOfScopedId('eval:bad tenant:set')).toBeUndefined();
  });
});
