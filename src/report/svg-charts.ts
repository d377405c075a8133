import { escapeHtml, formatBytes } from './format.ts';

const PALETTE: Record<string, string> = {
  bsp: '#4062bb',
  base: '#59c3c3',
  app: '#f45b69',
  config: '#ebebd3',
  removed: '#9e9e9e',
  artifact: '#b0b7c6',
  ship: '#f45b69',
};

export interface Bar {
  label: string;
  value: number;
  colour: string;
}

/**
 * Horizontal bars, one per item, scaled to the largest. Each bar carries `data-label`/`data-value` so a
 * test can read the drawn numbers back from the page and compare them with the report's JSON.
 */
export function horizontalBars(id: string, title: string, bars: Bar[]): string {
  const rowH = 26;
  const labelW = 220;
  const barW = 420;
  const valueW = 110;
  const width = labelW + barW + valueW;
  const height = rowH * bars.length + 30;
  const max = Math.max(1, ...bars.map((b) => b.value));
  const rows = bars
    .map((b, i) => {
      const y = 28 + i * rowH;
      const w = b.value === 0 ? 0 : Math.max(1, Math.round((b.value / max) * barW));
      return (
        `<g class="bar" data-label="${escapeHtml(b.label)}" data-value="${b.value}">` +
        `<text x="${labelW - 8}" y="${y + 14}" text-anchor="end">${escapeHtml(b.label)}</text>` +
        `<rect x="${labelW}" y="${y}" width="${w}" height="${rowH - 8}" fill="${b.colour}"/>` +
        `<text x="${labelW + w + 6}" y="${y + 14}">${formatBytes(b.value)}</text></g>`
      );
    })
    .join('');
  return (
    `<svg id="${id}" role="img" aria-label="${escapeHtml(title)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" xmlns="http://www.w3.org/2000/svg">` +
    `<text x="0" y="16" class="chart-title">${escapeHtml(title)}</text>${rows}</svg>`
  );
}

export function breakdownBars(parts: { part: string; kind: string; bytes: number }[]): Bar[] {
  return parts.map((p) => ({ label: p.part, value: p.bytes, colour: PALETTE[p.kind] ?? '#777' }));
}

/** Per release: two bars, the whole artifact and the bytes the Pantavisor update ships. */
export function releaseBars(releases: { name: string; artifactBytes: number; bytesToShip: number }[]): Bar[] {
  return releases.flatMap((r) => [
    { label: `${r.name} artifact`, value: r.artifactBytes, colour: PALETTE.artifact },
    { label: `${r.name} update`, value: r.bytesToShip, colour: PALETTE.ship },
  ]);
}
