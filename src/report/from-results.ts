import type { ConvertReport } from '../convert/pipeline.ts';
import type { JsonObject } from '../revision/canonical-json.ts';
import type { FleetReport } from '../convert/fleet.ts';
import { CHECK_GROUPS, checkGroupOf, type ValidationReport } from '../revision/validate.ts';
import type { ReportData } from './report-data.ts';

/** Rows for the report's validation table: one per check group, as `validate --junit` has them. */
export function validationRows(v: ValidationReport): ReportData['validation'] {
  return CHECK_GROUPS.map((group) => {
    const errors = v.errors.filter((e) => checkGroupOf(e) === group);
    return {
      check: group,
      ok: errors.length === 0,
      message: errors.length === 0 ? 'ok' : errors.map((e) => `${e.key ? `${e.key}: ` : ''}${e.message}`).join('; '),
    };
  });
}

/** The input a revision was made from, as its source metadata (pvmigrate/build.json) records it. */
function inputOf(source: JsonObject | undefined): ReportData['inputs'][number] {
  return { file: String(source?.['file'] ?? ''), format: String(source?.['format'] ?? ''), bytes: Number(source?.['size'] ?? 0), sha256: String(source?.['sha256'] ?? '') };
}

const removedRows = (removed: ConvertReport['removed']) => removed.map((r) => ({ path: r.path, reason: `${r.updater}: ${r.what}`, bytes: r.bytes }));

/** Report data for one converted revision. */
export function reportFromConvert(c: ConvertReport, options: { title?: string; validation?: ValidationReport } = {}): ReportData {
  const base = c.containers[0]?.name;
  const inputs = [inputOf(c.source)];
  const removed = removedRows(c.removed);
  const removedTotal = removed.reduce((s, r) => s + r.bytes, 0);
  return {
    title: options.title ?? `Migration of ${inputs.map((i) => i.file).join(', ')}`,
    generated: String(c.source?.['date'] ?? c.source?.['version'] ?? c.revision.slice(0, 12)),
    inputs,
    breakdown: [
      { part: 'bsp', kind: 'bsp', bytes: c.bsp.bytes, objects: c.bsp.objects },
      ...c.containers.map((k) => ({ part: k.name, kind: k.name === base ? ('base' as const) : ('app' as const), bytes: k.bytes, objects: k.objects })),
      ...(removed.length > 0 ? [{ part: 'removed (old updater)', kind: 'removed' as const, bytes: removedTotal }] : []),
    ],
    releases: [],
    removed,
    review: c.review.map((r) => ({ kind: r.kind, item: r.item, note: r.extracted ? `${r.reason} (extracted to ${r.extracted})` : r.reason })),
    validation: options.validation ? validationRows(options.validation) : [],
  };
}

/** Report data for a fleet: the last release's breakdown plus every step's update cost. */
export function reportFromFleet(f: FleetReport): ReportData {
  const last = f.releases[f.releases.length - 1];
  const base = last?.containers[0]?.name;
  return {
    title: `Fleet of ${f.steps.length} releases`,
    generated: String(f.steps[f.steps.length - 1]?.source?.['version'] ?? ''),
    inputs: f.steps.map((s) => inputOf(s.source)),
    breakdown: (last?.containers ?? []).map((k) => ({ part: k.name, kind: k.name === base ? ('base' as const) : ('app' as const), bytes: k.bytes, objects: k.objects })),
    releases: f.steps.map((s) => ({
      name: String(s.source['version'] ?? s.source['name'] ?? s.revision),
      artifactBytes: s.artifactBytes,
      bytesToShip: s.bytesToShip,
      reboot: s.reboot,
      changedKeys: s.changedKeys,
    })),
    removed: removedRows(last?.removed ?? []),
    review: (last?.review ?? []).map((r) => ({ kind: r.kind, item: r.item, note: r.reason })),
    validation: [],
  };
}
