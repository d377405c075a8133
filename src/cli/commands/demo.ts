import { parseCommandArgs, positionals } from '../args.ts';
import { print, printJson } from '../output.ts';

export const summary = 'run the main job on the bundled samples: convert a release of each format, a fleet, boot it, report';
export const usage =
  'pvmigrate demo [--out DIR] [--json]\n' +
  '  Converts samples/artifacts (a Mender, a RAUC and an SWUpdate release, and release 1.1 for a fleet), validates,\n' +
  '  boots the converted revision in the runtime (namespace driver as root, else process driver), builds the hand-made\n' +
  '  sample revisions of samples/revision, and writes DIR/report.html. DIR (default ./pvmigrate-demo) is replaced.';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals: pos } = parseCommandArgs('demo', argv, { out: { type: 'string' } });
  positionals('demo', pos, [], usage);
  const { rename, rm } = await import('node:fs/promises');
  const { resolve } = await import('node:path');
  const { workDirFor } = await import('../../convert/pipeline.ts');
  const { fsyncDir } = await import('../../fs/atomic.ts');
  const { artifactSamples } = await import('../../demo/artifact-samples.ts');
  const { revisionSamples } = await import('../../demo/revision-samples.ts');
  type Step = import('../../demo/step.ts').DemoStep;

  const out = resolve(values.out ?? 'pvmigrate-demo');
  // Everything is made in a work directory beside DIR and swapped in at the end.
  const work = await workDirFor(out);
  const steps: Step[] = [];
  const log = (s: Step): void => {
    steps.push(s);
    if (!values.json) print(`${s.ok ? 'ok  ' : 'FAIL'} ${s.step}: ${s.detail}`);
  };
  let report: string;
  try {
    report = await artifactSamples(work, out, log);
    await revisionSamples(work, log);
    await rm(out, { recursive: true, force: true });
    await rename(work, out);
    await fsyncDir(resolve(out, '..'));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  report = report.replace(work, out);
  const ok = steps.every((s) => s.ok);
  if (values.json) printJson({ ok, out, report, steps });
  else print(`\n${ok ? 'all steps passed' : 'some steps FAILED'}; results in ${out}\nreport: ${report}`);
  return ok ? 0 : 1;
}
