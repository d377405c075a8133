import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TrustOptions } from '../../importers/types.ts';
import { fleet } from '../convert/fleet.ts';
import { convert, type ConvertReport } from '../convert/pipeline.ts';
import { formatBytes } from '../report/format.ts';
import { reportFromConvert, reportFromFleet } from '../report/from-results.ts';
import { writeReport } from '../report/html.ts';
import type { ReportData } from '../report/report-data.ts';
import { validatePath } from '../revision/validate.ts';
import type { StepLog } from './step.ts';

const samples = fileURLToPath(new URL('../../samples/artifacts/', import.meta.url));
const sample = (name: string) => join(samples, name);

/** The sample release in each format, with the trust material a user would give (samples/artifacts/make.sh). */
const FORMATS: { name: string; file: string; trust: TrustOptions }[] = [
  { name: 'mender', file: 'release-1.0.mender', trust: {} },
  { name: 'rauc', file: 'release-1.0.raucb', trust: { keyring: sample('ca.pem') } },
  { name: 'swupdate', file: 'release-1.0.swu', trust: { ca: sample('ca.pem') } },
];

/**
 * The mission on the bundled artifacts: convert one release of each format into a split revision and
 * validate it, convert a two-release fleet, boot the converted revision in the runtime, and write the report.
 * Returns the report's path.
 */
export async function artifactSamples(out: string, final: string, log: StepLog): Promise<string> {
  const initrd = sample('initrd.img');
  let first: { report: ConvertReport; repo: string; file: string } | undefined;
  const inputs: ReportData['inputs'] = [];
  for (const f of FORMATS) {
    const repo = join(out, f.name);
    const report = await convert(sample(f.file), repo, { trust: f.trust, initrd });
    const v = await validatePath(repo, { mode: 'lenient' });
    const parts = report.containers.map((c) => `${c.name} ${formatBytes(c.bytes)}`).join(', ');
    log({
      step: `convert ${f.file}`,
      ok: v.valid,
      detail: `${f.name}/: bsp ${formatBytes(report.bsp.bytes)}, ${parts}; ${report.removed.length} updater leftovers removed, ${report.review.length} review items; ${v.valid ? 'valid' : v.errors.map((e) => e.message).join('; ')}`,
    });
    first ??= { report, repo, file: f.file };
    inputs.push(...reportFromConvert(report).inputs);
  }

  const series = [sample('release-1.0.mender'), sample('release-1.1.mender')];
  const f = await fleet(series, join(out, 'fleet'), { trust: {}, initrd });
  for (const s of f.steps) {
    log({
      step: `fleet ${String(s.source['version'] ?? s.revision)}`,
      ok: true,
      detail: `artifact ${formatBytes(s.artifactBytes)}, update ships ${formatBytes(s.bytesToShip)} (${(100 * s.ratio).toFixed(2)} %), ${s.reboot ? 'reboot' : 'no reboot'}; changed: ${s.changedKeys.join(', ') || 'nothing'}`,
    });
  }

  const { bootCheck, formatBootCheck } = await import('../../runtime/boot-check.ts');
  const booted = await bootCheck(first!.repo, { timeout: 60 });
  log({ step: `boot ${FORMATS[0]!.name}/ in the runtime`, ok: booted.ok, detail: formatBootCheck(booted).split('\n').join('; ') });

  const data = reportFromFleet(f);
  const converted = reportFromConvert(first!.report, { validation: await validatePath(first!.repo, { mode: 'lenient' }) });
  data.inputs = [...inputs, data.inputs[data.inputs.length - 1]!];
  data.title = 'pvmigrate samples: Mender, RAUC and SWUpdate releases as Pantavisor revisions';
  data.breakdown = converted.breakdown;
  data.removed = converted.removed;
  data.review = converted.review;
  data.validation = [...converted.validation, ...booted.containers.map((c) => ({ check: `boot ${c.name}`, ok: c.reached, message: `${c.status} (goal ${c.status_goal})` }))];
  // Paths inside the data name the work directory; the caller renames it to `final`.
  const { html } = await writeReport(join(out, 'report.html'), JSON.parse(JSON.stringify(data).replaceAll(out, final)) as ReportData);
  return html;
}

