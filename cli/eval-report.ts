/**
 * A self-contained HTML report of an evaluation's history: inline SVG charts and a table, no script and no network
 * at view time, so it opens from a file, an e-mail attachment or a CI artefact alike.
 */
import type { EvaluationStatus } from '../contracts/evaluation.js';

interface Series {
  label: string;
  color: string;
  values: number[];
  dashed?: boolean;
}

const WIDTH = 860;
const HEIGHT = 260;
const PAD = { left: 56, right: 16, top: 16, bottom: 36 };

const escape = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** One line chart as an SVG element: x is the batch number, y from 0 to `yMax`. */
export function lineChart(options: {
  title: string;
  batches: number[];
  series: Series[];
  yMax: number;
  yLabel: (v: number) => string;
  threshold?: { value: number; label: string };
}): string {
  const { batches, yMax } = options;
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const first = batches[0] ?? 0;
  const last = batches.at(-1) ?? 1;
  const span = Math.max(last - first, 1);
  const x = (batch: number) => PAD.left + ((batch - first) / span) * plotW;
  const y = (v: number) => PAD.top + plotH - (Math.min(Math.max(v, 0), yMax) / yMax) * plotH;
  const parts: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    parts.push(
      `<line x1="${PAD.left}" x2="${WIDTH - PAD.right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e5e7eb"/>`,
      `<text x="${PAD.left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" font-size="11" fill="#6b7280">${escape(options.yLabel(v))}</text>`,
    );
  }
  const ticks = Math.min(batches.length, 8);
  for (let i = 0; i < ticks; i++) {
    const batch = batches[Math.round((i * (batches.length - 1)) / Math.max(ticks - 1, 1))]!;
    parts.push(
      `<text x="${x(batch).toFixed(1)}" y="${HEIGHT - PAD.bottom + 16}" text-anchor="middle" font-size="11" fill="#6b7280">${batch}</text>`,
    );
  }
  parts.push(
    `<text x="${PAD.left + plotW / 2}" y="${HEIGHT - 4}" text-anchor="middle" font-size="11" fill="#6b7280">batch</text>`,
  );
  if (options.threshold) {
    const ty = y(options.threshold.value).toFixed(1);
    parts.push(
      `<line x1="${PAD.left}" x2="${WIDTH - PAD.right}" y1="${ty}" y2="${ty}" stroke="#dc2626" stroke-dasharray="6 4"/>`,
      `<text x="${WIDTH - PAD.right}" y="${Number(ty) - 4}" text-anchor="end" font-size="11" fill="#dc2626">${escape(options.threshold.label)}</text>`,
    );
  }
  options.series.forEach((series, index) => {
    const points = series.values.map((v, i) => `${x(batches[i]!).toFixed(1)},${y(v).toFixed(1)}`);
    if (points.length === 1) {
      const [px, py] = points[0]!.split(',');
      parts.push(`<circle cx="${px}" cy="${py}" r="3" fill="${series.color}"/>`);
    } else if (points.length > 1) {
      parts.push(
        `<polyline fill="none" stroke="${series.color}" stroke-width="2"${series.dashed ? ' stroke-dasharray="4 3"' : ''} points="${points.join(' ')}"/>`,
      );
    }
    const lx = PAD.left + 8 + index * 150;
    parts.push(
      `<rect x="${lx}" y="${PAD.top}" width="12" height="3" fill="${series.color}"/>`,
      `<text x="${lx + 16}" y="${PAD.top + 5}" font-size="11" fill="#374151">${escape(series.label)}</text>`,
    );
  });
  return [
    `<figure><figcaption>${escape(options.title)}</figcaption>`,
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" role="img" aria-label="${escape(options.title)}">`,
    ...parts,
    '</svg></figure>',
  ].join('\n');
}

/** The report of one evaluation workflow's status (its bounded history, baseline and alerts). */
export function evaluationReportHtml(
  status: EvaluationStatus,
  options: { generatedAt: string; qualityThreshold: number; latencyP95Ms: number },
): string {
  const history = status.history;
  const batches = history.map((h) => h.batch);
  const pct = (v: number) => v.toFixed(2);
  const quality = lineChart({
    title: 'Scores per batch',
    batches,
    yMax: 1,
    yLabel: pct,
    threshold: { value: options.qualityThreshold, label: `quality alert below ${options.qualityThreshold}` },
    series: [
      { label: 'quality', color: '#2563eb', values: history.map((h) => h.quality) },
      { label: 'nDCG@10', color: '#059669', values: history.map((h) => h.ndcg10) },
      { label: 'recall@k', color: '#d97706', values: history.map((h) => h.recall) },
      { label: 'cited relevant', color: '#7c3aed', values: history.map((h) => h.citedRelevantShare), dashed: true },
    ],
  });
  const maxLatency = Math.max(options.latencyP95Ms * 1.1, ...history.map((h) => h.latencyP95Ms), 1);
  const latency = lineChart({
    title: 'Query latency per batch (ms)',
    batches,
    yMax: maxLatency,
    yLabel: (v) => String(Math.round(v)),
    threshold: { value: options.latencyP95Ms, label: `latency alert above ${options.latencyP95Ms} ms` },
    series: [
      { label: 'p50', color: '#0891b2', values: history.map((h) => h.latencyP50Ms) },
      { label: 'p95', color: '#be123c', values: history.map((h) => h.latencyP95Ms) },
    ],
  });
  const rows = history
    .slice(-30)
    .reverse()
    .map(
      (h) =>
        `<tr><td>${h.batch}</td><td>${escape(h.at)}</td><td>${h.samples}</td><td>${pct(h.quality)}</td><td>${pct(h.ndcg10)}</td>` +
        `<td>${pct(h.mrr10)}</td><td>${pct(h.precision)}</td><td>${pct(h.recall)}</td><td>${pct(h.citedRelevantShare)}</td>` +
        `<td>${pct(h.degradedShare)}</td><td>${Math.round(h.latencyP50Ms)}</td><td>${Math.round(h.latencyP95Ms)}</td></tr>`,
    )
    .join('\n');
  const alerts = Object.values(status.alerts)
    .map(
      (a) =>
        `<li><b>${escape(a.name)}</b>: ${a.firing ? `<span class="bad">FIRING</span> since batch ${a.firedAtBatch ?? '?'} — ${escape(a.reason ?? '')}` : 'ok'}</li>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ragline evaluation — ${escape(status.setName)} / ${escape(status.tenant)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;color:#111827;max-width:900px}
figure{margin:16px 0}figcaption{font-weight:600;margin-bottom:4px}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #e5e7eb;padding:3px 6px;text-align:right}
.bad{color:#dc2626;font-weight:600}.muted{color:#6b7280}
</style></head><body>
<h1>Evaluation of <code>${escape(status.setName)}</code> for tenant <code>${escape(status.tenant)}</code></h1>
<p class="muted">Generated ${escape(options.generatedAt)} · set version ${escape(status.setVersion ?? '?')} (${status.setSize ?? '?'} questions) ·
${status.batches} batches, ${status.questions} questions, ${status.continuedAsNew} continue-as-new ·
every ${status.settings.intervalMs / 1000} s, ${status.settings.batchSize} per batch${status.paused ? ' · <b>paused</b>' : ''}</p>
<p>Baseline quality ${pct(status.baseline.qualityMean)} ± ${pct(status.baseline.qualityStd)} over ${status.baseline.batches} healthy batches;
last ${status.last ? pct(status.last.quality) : '—'} (trend ${status.trend >= 0 ? '+' : ''}${pct(status.trend)}).</p>
<ul>${alerts}</ul>
${quality}
${latency}
<h2>Last batches</h2>
<table><thead><tr><th>batch</th><th>at</th><th>n</th><th>quality</th><th>nDCG@10</th><th>MRR@10</th><th>P@k</th><th>R@k</th><th>cited rel.</th><th>degraded</th><th>p50 ms</th><th>p95 ms</th></tr></thead>
<tbody>
${rows}
</tbody></table>
</body></html>
`;
}
