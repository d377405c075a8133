import type { BootCheckResult } from '../../../runtime/boot-check.ts';
import { InvalidInputError, UsageError } from '../../errors.ts';
import type { Issue } from '../../revision/state.ts';
import type { ExtraCheck } from '../../revision/validate.ts';
import { parseCommandArgs, positionals } from '../args.ts';
import { diagnostic, print, printJson } from '../output.ts';

export const summary = 'check a revision (pvr repo or export tarball): state, objects, signatures';
export const usage =
  'pvmigrate validate <repo|export.tgz> [--mode lenient|strict|audit|disabled] [--truststore pem] [--pubkey pem] [--oem-name NAME --oem-truststore pem] [--boot [--timeout S]] [--json] [--junit FILE]\n' +
  '  x5c chains are checked against --truststore (a leaf named --oem-name that signs neither bsp/** nor NAME/** against --oem-truststore), others against --pubkey\n' +
  '  --boot also deploys the valid revision into a scratch storage, boots it and waits for every status goal (default 30 s)\n' +
  '  exit 0 valid, 1 invalid or untrusted, 2 usage or environment error';

const MODES = ['lenient', 'strict', 'audit', 'disabled'] as const;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals: pos } = parseCommandArgs('validate', argv, {
    mode: { type: 'string' },
    truststore: { type: 'string' },
    pubkey: { type: 'string' },
    'oem-name': { type: 'string' },
    'oem-truststore': { type: 'string' },
    junit: { type: 'string' },
    boot: { type: 'boolean' },
    timeout: { type: 'string' },
  });
  const [target] = positionals('validate', pos, ['<repo|export.tgz>'], usage);
  const mode = values.mode ?? 'lenient';
  if (!(MODES as readonly string[]).includes(mode)) throw new UsageError(`--mode must be one of ${MODES.join(', ')}, not '${mode}'`);
  const { validatePath, junitXml } = await import('../../revision/validate.ts');
  const { loadCertificates, loadPublicKey } = await import('../../revision/trust.ts');
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeout !== undefined && (!values.boot || !Number.isFinite(timeout) || timeout <= 0)) {
    throw new UsageError(values.boot ? `--timeout must be a positive number of seconds, not '${values.timeout}'` : '--timeout goes with --boot');
  }
  if (Boolean(values['oem-name']) !== Boolean(values['oem-truststore'])) throw new UsageError('--oem-name and --oem-truststore go together');
  const trust = {
    truststore: values.truststore ? await loadCertificates(values.truststore, 'the truststore') : undefined,
    pubkey: values.pubkey ? await loadPublicKey(values.pubkey) : undefined,
    oem: values['oem-name'] ? { name: values['oem-name'], truststore: await loadCertificates(values['oem-truststore']!, 'the OEM truststore') } : undefined,
  };
  const extraChecks: ExtraCheck[] = [];
  let boot: BootCheckResult | undefined;
  if (values.boot) {
    const { bootCheck } = await import('../../../runtime/boot-check.ts');
    extraChecks.push({
      name: 'boot',
      // Runs only on an otherwise valid revision: the device would refuse an invalid one before booting.
      run: async (repo) => {
        boot = await bootCheck(repo.dir, { timeout, secureboot: mode as (typeof MODES)[number] });
        const errors: Issue[] = boot.refused
          ? [{ code: 'boot', message: `revision refused at boot: ${boot.refused}` }]
          : boot.containers.filter((c) => !c.reached).map((c) => ({ code: 'boot', key: `${c.name}/run.json`, message: `container ${c.name} is ${c.status}, its goal ${c.status_goal} was not reached` }));
        if (!boot.refused && boot.containers.length === 0) errors.push({ code: 'boot', message: 'no container ran' });
        return { errors, warnings: [] };
      },
    });
  }
  let report;
  try {
    report = await validatePath(target!, { mode: mode as (typeof MODES)[number], ...trust, extraChecks });
  } catch (err) {
    // An unreadable revision (bad tarball, bad JSON) is still a verdict: invalid, reported like any other.
    if (!(err instanceof InvalidInputError)) throw err;
    report = { valid: false, spec: null, objects: 0, bytes: 0, errors: [{ code: err.code, message: err.toLine() }], warnings: [], signatures: [], extraChecks: [] };
  }
  if (values.junit) {
    const { writeFileAtomically } = await import('../../fs/atomic.ts');
    let xml = junitXml(report, `pvmigrate validate ${target}`);
    if (boot) {
      // --boot: a second suite with one testcase per container (its console tail when it failed).
      const { bootCheckJunit, junitSuites } = await import('../../../runtime/boot-check.ts');
      xml = junitSuites(xml, bootCheckJunit(boot));
    }
    await writeFileAtomically(values.junit, xml);
  }
  const { annotation, inGitHubActions } = await import('../github-annotations.ts');
  if (inGitHubActions()) {
    // Annotations are workflow commands read from the job log; with --json stdout holds only the document.
    const out = values.json ? diagnostic : print;
    const title = (level: string, code: string) => `pvmigrate validate ${level} [${code}]`;
    for (const e of report.errors) out(annotation({ level: 'error', file: target, title: title('error', e.code), message: `${e.key ? `${e.key}: ` : ''}${e.message}` }));
    for (const w of report.warnings) out(annotation({ level: 'warning', file: target, title: title('warning', w.code), message: `${w.key ? `${w.key}: ` : ''}${w.message}` }));
  }
  if (values.json) {
    printJson({
      valid: report.valid,
      spec: report.spec,
      objects: report.objects,
      bytes: report.bytes,
      errors: report.errors.map((e) => ({ code: e.code, key: e.key ?? null, message: e.message })),
      warnings: report.warnings.map((w) => ({ code: w.code, key: w.key ?? null, message: w.message })),
      signatures: report.signatures.map((s) => ({ name: s.name, alg: s.alg, verified: s.verified, trust: s.trust, covers: s.covers })),
      ...(values.boot ? { boot: boot ?? null } : {}),
    });
  } else {
    const lines = [
      `${target}: ${report.valid ? 'valid' : 'INVALID'} (mode ${mode}; spec ${report.spec ?? 'none'}; ${report.objects} objects, ${report.bytes} bytes; ${report.signatures.length} signature(s))`,
    ];
    for (const s of report.signatures) lines.push(`  signature ${s.name}: ${s.alg || '?'} ${s.verified ? 'verified' : 'NOT verified'}, trust ${s.trust}, covers ${s.covers.length} key(s)`);
    if (values.boot) {
      const { formatBootCheck } = await import('../../../runtime/boot-check.ts');
      lines.push(boot ? formatBootCheck(boot) : 'boot: not attempted (the revision is invalid)');
    }
    print(lines.join('\n'));
    for (const e of report.errors) diagnostic(`error [${e.code}]${e.key ? ` ${e.key}` : ''}: ${e.message}`);
    for (const w of report.warnings) diagnostic(`warning [${w.code}]${w.key ? ` ${w.key}` : ''}: ${w.message}`);
  }
  return report.valid ? 0 : 1;
}
