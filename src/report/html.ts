import { writeFileAtomically } from '../fs/atomic.ts';
import { escapeHtml, formatBytes } from './format.ts';
import type { ReportData } from './report-data.ts';
import { breakdownBars, horizontalBars, releaseBars } from './svg-charts.ts';

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:960px;color:#1d1d1f;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #eee;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}code{font-size:.9em}
.ok{color:#17803d}.fail{color:#b3261e}.muted{color:#666}svg text{font-size:12px;fill:#1d1d1f}svg .chart-title{font-weight:600;font-size:13px}
.summary{display:flex;gap:1.5rem;flex-wrap:wrap}.summary div{background:#f5f5f7;border-radius:8px;padding:.6rem 1rem}
.summary b{display:block;font-size:1.2rem}`;

function table(headers: string[], rows: string[][], numeric: number[] = []): string {
  if (rows.length === 0) return '<p class="muted">none</p>';
  const th = headers.map((h, i) => `<th${numeric.includes(i) ? ' class="num"' : ''}>${escapeHtml(h)}</th>`).join('');
  const body = rows
    .map((r) => `<tr>${r.map((c, i) => `<td${numeric.includes(i) ? ' class="num"' : ''}>${c}</td>`).join('')}</tr>`)
    .join('');
  return `<table><thead><tr>${th}</tr></thead><tbody>${body}</tbody></table>`;
}

/** One self-contained HTML page: inline CSS and SVG, no script, no external asset. */
export function renderReportHtml(data: ReportData): string {
  const total = data.breakdown.reduce((s, p) => s + (p.kind === 'removed' ? 0 : p.bytes), 0);
  const failed = data.validation.filter((v) => !v.ok).length;
  const summary =
    `<div class="summary"><div>revision size<b>${formatBytes(total)}</b></div>` +
    `<div>containers<b>${data.breakdown.filter((p) => p.kind === 'base' || p.kind === 'app').length}</b></div>` +
    `<div>removed files<b>${data.removed.length}</b></div><div>review items<b>${data.review.length}</b></div>` +
    `<div>validation<b class="${failed ? 'fail' : 'ok'}">${data.validation.length === 0 ? 'not run' : failed ? `${failed} failed` : 'passed'}</b></div></div>`;
  const fleet =
    data.releases.length === 0
      ? ''
      : `<h2>Update size per release</h2>${horizontalBars('chart-releases', 'full artifact vs Pantavisor update', releaseBars(data.releases))}` +
        table(
          ['release', 'artifact', 'update ships', 'ratio', 'reboot', 'changed keys'],
          data.releases.map((r) => [
            escapeHtml(r.name),
            formatBytes(r.artifactBytes),
            formatBytes(r.bytesToShip),
            r.artifactBytes ? `${((100 * r.bytesToShip) / r.artifactBytes).toFixed(2)} %` : '–',
            r.reboot ? 'yes' : 'no',
            r.changedKeys.map((k) => `<code>${escapeHtml(k)}</code>`).join('<br>'),
          ]),
          [1, 2, 3],
        );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(data.title)}</title><style>${STYLE}</style></head><body>
<h1>${escapeHtml(data.title)}</h1><p class="muted">pvmigrate report · ${escapeHtml(data.generated)}</p>
${summary}
<h2>Inputs</h2>${table(
    ['file', 'format', 'size', 'sha256'],
    data.inputs.map((i) => [escapeHtml(i.file), escapeHtml(i.format), formatBytes(i.bytes), `<code>${escapeHtml(i.sha256 ?? '')}</code>`]),
    [2],
  )}
<h2>Where the bytes went</h2>${horizontalBars('chart-breakdown', 'bytes per part of the revision', breakdownBars(data.breakdown))}
${fleet}
<h2>Removed (old updater)</h2>${table(
    ['path', 'reason', 'size'],
    data.removed.map((r) => [`<code>${escapeHtml(r.path)}</code>`, escapeHtml(r.reason), formatBytes(r.bytes)]),
    [2],
  )}
<h2>Review items</h2>${table(
    ['kind', 'item', 'note'],
    data.review.map((r) => [escapeHtml(r.kind), `<code>${escapeHtml(r.item)}</code>`, escapeHtml(r.note)]),
  )}
<h2>Validation</h2>${table(
    ['check', 'result', 'message'],
    data.validation.map((v) => [escapeHtml(v.check), v.ok ? '<span class="ok">ok</span>' : '<span class="fail">failed</span>', escapeHtml(v.message)]),
  )}
</body></html>
`;
}

/** `report.html` and its data `report.json`, both written atomically. */
export async function writeReport(htmlPath: string, data: ReportData): Promise<{ html: string; json: string }> {
  const jsonPath = htmlPath.replace(/\.html?$/i, '') + '.json';
  await writeFileAtomically(jsonPath, JSON.stringify(data, null, 2) + '\n');
  await writeFileAtomically(htmlPath, renderReportHtml(data));
  return { html: htmlPath, json: jsonPath };
}
