import { createHash } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { evalSetVersion, loadEvalSet, type EvalItem, type EvalSet } from './dataset.js';

/**
 * A tenant's own additions to a shared evaluation set. Accepted proposals (real questions of one tenant, with that
 * tenant's documents as relevant) are written here, never into the set file every tenant evaluates against: tenant
 * A's questions neither change B's set version nor get scored against B's corpus.
 */

/**
 * `<dir>/<tenant>/<file name>-<hash of the set's path>.jsonl`: one overlay per tenant and set file, named from the
 * path alone, so finding it reads nothing.
 */
export function overlayFile(dir: string, tenant: string, dataset: string): string {
  const resolved = path.resolve(dataset);
  const id = createHash('sha256').update(resolved).digest('hex').slice(0, 12);
  return path.join(
    dir,
    encodeURIComponent(tenant),
    `${path.basename(resolved).replace(/\.jsonl(\.gz)?$/, '')}-${id}.jsonl`,
  );
}

/** The shared set with the tenant's overlay after it; an overlay question whose id the set has is left out. */
export async function loadTenantEvalSet(dataset: string, overlay: string | undefined): Promise<EvalSet> {
  const base = await loadEvalSet(dataset);
  if (overlay === undefined) return base;
  const text = await readFile(overlay, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (text === undefined || text.trim() === '') return base;
  const extra = await loadEvalSet(overlay, { name: base.name });
  const known = new Set(base.items.map((item) => item.id));
  const items = [...base.items, ...extra.items.filter((item) => !known.has(item.id))];
  return { ...base, items, version: evalSetVersion(items), problems: [...base.problems, ...extra.problems] };
}

/** Appends questions to an overlay as ground-truth lines, fsynced: an accepted proposal survives a crash. */
export async function appendToOverlay(overlay: string, items: EvalItem[]): Promise<void> {
  if (items.length === 0) return;
  await mkdir(path.dirname(overlay), { recursive: true });
  const text = await readFile(overlay, 'utf8').catch(() => '');
  const lines = items.map((item) => JSON.stringify({ id: item.id, query: item.question, relevant: item.relevant }));
  const handle = await open(overlay, 'a');
  try {
    await handle.writeFile(`${text === '' || text.endsWith('\n') ? '' : '\n'}${lines.join('\n')}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
