import type { ConvertReport } from '../convert/pipeline.ts';
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

/**
 * Report data for one converted revision. `removedBytes` are the source sizes of removed paths when the
 * caller measured them (the wizard does); otherwise removals are listed with 0 bytes.
 */
export function reportFromConvert(
  c: ConvertReport,
  inputs: ReportData['inputs'],
  options: { title?: string; validation?: ValidationReport; removedBytes?: Map<string, number> } = {},
): ReportData {
  const base = c.containers[0]?.name;
  const removed = c.removed.map((r) => ({ path: r.path, reason: `${r.updater}: ${r.what}`, bytes: options.removedBytes?.get(r.path) ?? 0 }));
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
export function reportFromFleet(f: FleetReport, inputs: ReportData['inputs']): ReportData {
  const last = f.releases[f.releases.length - 1];
  const base = last?.containers[0]?.name;
  return {
    title: `Fleet of ${f.steps.length} releases`,
    generated: String(f.steps[f.steps.length - 1]?.source?.['version'] ?? ''),
    inputs,
    breakdown: (last?.containers ?? []).map((k) => ({ part: k.name, kind: k.name === base ? ('base' as const) : ('app' as const), bytes: k.bytes, objects: k.objects })),
    releases: f.steps.map((s) => ({
      name: String(s.source['version'] ?? s.source['name'] ?? s.revision),
      artifactBytes: s.artifactBytes,
      bytesToShip: s.bytesToShip,
      reboot: s.reboot,
      changedKeys: s.changedKeys,
    })),
    removed: (last?.removed ?? []).map((r) => ({ path: r.path, reason: `${r.updater}: ${r.what}`, bytes: 0 })),
    review: (last?.review ?? []).map((r) => ({ kind: r.kind, item: r.item, note: r.reason })),
    validation: [],
  };
}
