import { expect } from 'vitest';
import { DEFAULT_PARAMS } from '../../lib/improve/params.js';
import { ParamStore, type AuditBackend } from '../../lib/improve/param-store.js';

/**
 * Ten changes of one tenant at once, through two stores (two workers) over one backend: every one is written, with
 * versions 1–10 each used once, and each entry's `fromVersion` is the version before it — none lost, none reused.
 */
export async function expectConcurrentChangesSerialised(backend: AuditBackend): Promise<void> {
  const workers = [new ParamStore(backend, DEFAULT_PARAMS, 0), new ParamStore(backend, DEFAULT_PARAMS, 0)];
  const tenant = `t${Math.random().toString(36).slice(2, 10)}`;
  const written = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      workers[i % 2]!.apply(tenant, {
        params: { ...DEFAULT_PARAMS, topK: i + 1 },
        actor: 'alice',
        action: 'apply',
        reason: `change ${i}`,
      }),
    ),
  );
  expect(written.map((e) => e.toVersion).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const log = await backend.entries(tenant);
  expect(log.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  expect(log.map((e) => e.fromVersion)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
}
