/**
 * Everything a migration report shows, as plain JSON: `--report x.html` writes this beside the page as
 * `x.json`, and the page's charts are drawn from exactly these numbers.
 */
export interface ReportData {
  title: string;
  /** ISO date of the source artifact(s) or of the run; never the wall clock when determinism matters. */
  generated: string;
  inputs: { file: string; format: string; bytes: number; sha256?: string }[];
  /** Where the bytes of the converted revision went. */
  breakdown: { part: string; kind: 'bsp' | 'base' | 'app' | 'config' | 'removed'; bytes: number; objects?: number }[];
  /** Per release of a fleet: the full artifact vs what the update ships. */
  releases: { name: string; artifactBytes: number; bytesToShip: number; reboot: boolean; changedKeys: string[] }[];
  removed: { path: string; reason: string; bytes: number }[];
  review: { kind: string; item: string; note: string }[];
  validation: { check: string; ok: boolean; message: string }[];
}

export function emptyReport(title: string, generated: string): ReportData {
  return { title, generated, inputs: [], breakdown: [], releases: [], removed: [], review: [], validation: [] };
}
