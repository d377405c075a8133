import { UsageError } from '../../errors.ts';
import { parseCommandArgs } from '../args.ts';
import { print, printJson } from '../output.ts';
import { trustFlagOptions, trustFlagsUsage, trustOptionsFrom } from '../trust-flags.ts';

export const summary = 'convert a release series into shared objects and one revision per release, with the cost of each update';
export const usage =
  `pvmigrate fleet <input…|dir|zip> -o <dir> [--plan FILE] [--initrd FILE] [--report FILE.html] ${trustFlagsUsage} [--json]\n\n` +
  'Releases are taken in the order given; a directory or zip in name order (numbers compared as numbers).\n' +
  'Writes <dir>/objects/ and <dir>/<NNN-version>/.pvr per release (review material in <dir>/<NNN-version>.pvmigrate/).\n' +
  'Reports per step the artifact bytes, bytes to ship, their ratio, whether the update reboots and the changed keys.\n' +
  'Mixing device types is an error.';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals: inputs } = parseCommandArgs('fleet', argv, {
    ...trustFlagOptions,
    output: { type: 'string', short: 'o' },
    plan: { type: 'string' },
    initrd: { type: 'string' },
    report: { type: 'string' },
  });
  if (inputs.length === 0) throw new UsageError(`expected at least one input; usage: ${usage.split('\n')[0]}`);
  if (!values.output) throw new UsageError(`-o <dir> is required; usage: ${usage.split('\n')[0]}`);
  const { fleet } = await import('../../convert/fleet.ts');
  const { progressFor } = await import('../../convert/progress.ts');
  const report = await fleet(inputs, values.output, {
    trust: trustOptionsFrom(values),
    planFile: values.plan,
    initrd: values.initrd,
    progress: await progressFor(Boolean(values.json)),
  });
  if (values.report) {
    const [{ writeReport }, { reportFromFleet }] = await Promise.all([import('../../report/html.ts'), import('../../report/from-results.ts')]);
    await writeReport(values.report, reportFromFleet(report));
  }
  if (values.json) {
    printJson(report);
    return 0;
  }
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  const lines = [`${report.steps.length} revisions in ${report.dir}: ${report.objects} objects, ${kb(report.bytes)}`];
  for (const s of report.steps) {
    lines.push(
      `  ${s.revision}: artifact ${kb(s.artifactBytes)}, ship ${kb(s.bytesToShip)} (${(s.ratio * 100).toFixed(2)}%), ` +
        `${s.reboot ? `reboot (${s.rebootKey})` : 'no reboot'}; ${s.changedKeys.length} changed keys${s.changedKeys.length <= 8 ? `: ${s.changedKeys.join(', ')}` : ''}`,
    );
  }
  if (values.report) lines.push(`report: ${values.report}`);
  print(lines.join('\n'));
  return 0;
}
