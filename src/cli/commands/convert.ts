import { UsageError } from '../../errors.ts';
import { parseCommandArgs, positionals } from '../args.ts';
import { diagnostic, print, printJson } from '../output.ts';
import { trustFlagOptions, trustFlagsUsage, trustOptionsFrom } from '../trust-flags.ts';

export const summary = 'convert an artifact or image into a split pvr revision (BSP, base OS, app containers)';
export const usage =
  `pvmigrate convert <input> -o <repo> [--plan FILE] [--write-plan FILE] [--initrd FILE] [--export FILE.tgz] ` +
  `[--sign-key pem [--x5c pem]] [--report FILE.html] ${trustFlagsUsage} [--json]\n\n` +
  'input (by content): .mender, .raucb, .swu, ext4 or squashfs image, partitioned disk image, rootfs tarball, docker save or\n' +
  'OCI image archive, or a .zip holding one of these (plus any docker/OCI archives, which become containers).\n' +
  '--write-plan FILE writes the detected plan and stops; --plan FILE converts with an edited plan.\n' +
  'Review items (scripts, bootenv, raw writes, packages) and the plan used are written beside the repo, in <repo>.pvmigrate/.';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals: pos } = parseCommandArgs('convert', argv, {
    ...trustFlagOptions,
    output: { type: 'string', short: 'o' },
    plan: { type: 'string' },
    'write-plan': { type: 'string' },
    initrd: { type: 'string' },
    export: { type: 'string' },
    'sign-key': { type: 'string' },
    x5c: { type: 'string' },
    report: { type: 'string' },
  });
  const [input] = positionals('convert', pos, ['<input>'], usage.split('\n')[0]!);
  const trust = trustOptionsFrom(values);
  if (values.x5c && !values['sign-key']) throw new UsageError('--x5c needs --sign-key; see pvmigrate convert --help');
  if (values.plan && values['write-plan']) throw new UsageError('--plan and --write-plan exclude each other: write a plan, edit it, then convert with --plan');
  const { convert, writePlan } = await import('../../convert/pipeline.ts');

  if (values['write-plan']) {
    if (values.output || values.export || values['sign-key']) throw new UsageError('--write-plan only writes the plan; drop -o, --export and --sign-key');
    const plan = await writePlan(input!, values['write-plan'], { trust, initrd: values.initrd });
    if (values.json) printJson({ plan: values['write-plan'], containers: plan.containers.map((c) => c.name), removed: plan.removed.length, review: plan.review.length });
    else print(`plan written to ${values['write-plan']}: containers ${plan.containers.map((c) => c.name).join(', ')}; ${plan.removed.length} removals; ${plan.review.length} review items`);
    return 0;
  }
  if (!values.output) throw new UsageError(`-o <repo> is required; usage: ${usage.split('\n')[0]}`);
  const { progressFor } = await import('../../convert/progress.ts');
  const report = await convert(input!, values.output, {
    trust,
    planFile: values.plan,
    initrd: values.initrd,
    exportFile: values.export,
    sign: values['sign-key'] ? { key: values['sign-key'], x5c: values.x5c } : undefined,
    progress: await progressFor(Boolean(values.json)),
  });
  for (const w of report.warnings) diagnostic(`pvmigrate convert: warning: ${w}`);
  if (values.report) {
    // The report carries the validation verdict of what was written, as `validate` would give it.
    const [{ writeReport }, { reportFromConvert }, { validatePath }] = await Promise.all([
      import('../../report/html.ts'),
      import('../../report/from-results.ts'),
      import('../../revision/validate.ts'),
    ]);
    await writeReport(values.report, reportFromConvert(report, { validation: await validatePath(values.output, { mode: 'lenient' }) }));
  }
  if (values.json) {
    // Exactly the document issue 9 specifies; the source is in the state (pvmigrate/build.json), the plan in <repo>.pvmigrate/.
    const { revision, bsp, containers, removed, review, objects, bytes } = report;
    printJson({ revision, bsp, containers, removed, review, objects, bytes });
    return 0;
  }
  const mb = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
  const lines = [
    `revision ${report.revision} written to ${report.repo}`,
    `  bsp: ${Object.keys(report.bsp.files).join(', ') || '(none)'} (${mb(report.bsp.bytes)})`,
    ...report.containers.map((c) => `  container ${c.name} (group ${c.group}): ${c.objects} objects, ${mb(c.bytes)}`),
    `  ${report.objects} objects, ${mb(report.bytes)}; ${report.accounting.entries} source entries: ${report.accounting.base} base, ${report.accounting.bsp} bsp, ` +
      `${Object.entries(report.accounting.apps).map(([n, k]) => `${k} ${n}`).join(', ') || '0 apps'}, ${report.accounting.removed} removed`,
    ...report.removed.map((r) => `  removed (${r.updater}) ${r.path}: ${r.what}`),
    ...report.review.map((r) => `  review (${r.kind}) ${r.item}: ${r.reason}${r.extracted ? ` [${r.extracted}]` : ''}`),
  ];
  if (values.report) lines.push(`  report: ${values.report}`);
  print(lines.join('\n'));
  return 0;
}
