import { UsageError } from '../../errors.ts';
import { parseCommandArgs } from '../args.ts';
import { diagnostic, print, printJson } from '../output.ts';
import { trustFlagOptions } from '../trust-flags.ts';

export const summary = 'guided migration at a terminal: pick an artifact, check its trust, review and edit the plan, convert, report';
export const usage =
  'pvmigrate wizard [DIR] [--answers FILE] [--input FILE] [-o DIR] [--key|--keyring|--ca|--pubkey pem] [--decrypt-key pem] ' +
  '[--aes-key FILE] [--accept-unverified] [--initrd FILE|--no-initrd] [--rename C=NEW]… [--move PATH=C]… [--group C=G]… ' +
  '[--restart-policy C=P]… [--status-goal C=GOAL]… [--keep PATH]… [--sign-key pem|--no-sign] [--boot|--no-boot] [--report FILE.html] [--json]\n\n' +
  'Every answer has a flag; --answers FILE replays a session the wizard recorded (output/answers.json) without a terminal.\n' +
  'Writes DIR/repo (the pvr repo), DIR/plan.json, DIR/answers.json, DIR/report.html and DIR/report.json, all at once at the end.\n' +
  'Exit status: 0 done, 1 invalid input or failed verification, 2 usage/environment error, 130 cancelled (nothing written).';

function pairs(flag: string, values: string[] | undefined): [string, string][] {
  return (values ?? []).map((v) => {
    const at = v.indexOf('=');
    if (at <= 0 || at === v.length - 1) throw new UsageError(`--${flag} takes NAME=VALUE, not '${v}'`);
    return [v.slice(0, at), v.slice(at + 1)];
  });
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('wizard', argv, {
    answers: { type: 'string' },
    input: { type: 'string' },
    output: { type: 'string', short: 'o' },
    // The trust material the wizard records, with the same flags as inspect and convert.
    key: trustFlagOptions.key,
    keyring: trustFlagOptions.keyring,
    'decrypt-key': trustFlagOptions['decrypt-key'],
    ca: trustFlagOptions.ca,
    pubkey: trustFlagOptions.pubkey,
    'aes-key': trustFlagOptions['aes-key'],
    'accept-unverified': { type: 'boolean' },
    initrd: { type: 'string' },
    'no-initrd': { type: 'boolean' },
    rename: { type: 'string', multiple: true },
    move: { type: 'string', multiple: true },
    group: { type: 'string', multiple: true },
    'restart-policy': { type: 'string', multiple: true },
    'status-goal': { type: 'string', multiple: true },
    keep: { type: 'string', multiple: true },
    'sign-key': { type: 'string' },
    'no-sign': { type: 'boolean' },
    boot: { type: 'boolean' },
    'no-boot': { type: 'boolean' },
    report: { type: 'string' },
  });
  if (positionals.length > 1) throw new UsageError(`expected at most one directory; usage: ${usage.split('\n')[0]}`);
  const { runWizard, CANCELLED_EXIT } = await import('../../wizard/wizard.ts');
  const { WizardCancelled } = await import('../../wizard/ask.ts');
  type Edit = import('../../wizard/answers.ts').PlanEdit;
  const edits: Edit[] = [
    ...pairs('rename', values.rename).map(([container, to]): Edit => ({ op: 'rename', container, to })),
    ...pairs('move', values.move).map(([path, to]): Edit => ({ op: 'move', path, to })),
    ...pairs('group', values.group).map(([container, group]) => ({ op: 'group', container, group }) as Edit),
    ...pairs('restart-policy', values['restart-policy']).map(([container, p]) => ({ op: 'restart_policy', container, restart_policy: p }) as Edit),
    ...pairs('status-goal', values['status-goal']).map(([container, g]) => ({ op: 'status_goal', container, status_goal: g }) as Edit),
    ...(values.keep ?? []).map((path): Edit => ({ op: 'keep', path })),
  ];
  const trust = Object.fromEntries(
    Object.entries({ key: values.key, keyring: values.keyring, decryptKey: values['decrypt-key'], ca: values.ca, pubkey: values.pubkey, aesKey: values['aes-key'] }).filter(([, v]) => v !== undefined),
  );
  try {
    const result = await runWizard({
      dir: positionals[0] ?? '.',
      answersFile: values.answers,
      reportFile: values.report,
      json: Boolean(values.json),
      flags: {
        ...(values.input !== undefined && { input: values.input }),
        ...(values.output !== undefined && { output: values.output }),
        ...(values['accept-unverified'] && { acceptUnverified: true }),
        ...(values.initrd !== undefined ? { initrd: values.initrd } : values['no-initrd'] ? { initrd: null } : {}),
        ...(values['sign-key'] !== undefined ? { signKey: values['sign-key'] } : values['no-sign'] ? { signKey: null } : {}),
        ...(edits.length > 0 && { edits }),
        ...(values.boot ? { boot: true } : values['no-boot'] ? { boot: false } : {}),
        trust,
      },
    });
    if (values.json) printJson(result);
    else print([`revision ${result.revision} written to ${result.repo} (${result.valid ? 'valid' : 'INVALID: see the report'})`, `report: ${result.files.report}`, 'next:', ...result.next.map((n) => `  ${n}`)].join('\n'));
    return result.valid ? 0 : 1;
  } catch (err) {
    if (err instanceof WizardCancelled) {
      diagnostic('cancelled; nothing was written');
      return CANCELLED_EXIT;
    }
    throw err;
  }
}
