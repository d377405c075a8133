import { UsageError } from '../../errors.ts';
import { parseCommandArgs, positionals } from '../args.ts';
import { diagnostic, printJson } from '../output.ts';

export const summary = 'boot the storage\'s revision and run its containers in the foreground (Ctrl-C stops them all)';
export const usage =
  'pvmigrate run --storage DIR [--driver namespace|process] [--ctrl PATH] [--secureboot disabled|audit|lenient|strict] [--pubkey PEM] [--truststore CERTS] [--quickboot]\n' +
  '    [--commit-delay S] [--goals-timeout S] [--gc-keep-factory] [--verbose] [--json]\n' +
  '  --gc-keep-factory (or PV_STORAGE_GC_KEEP_FACTORY=1): garbage collection keeps the factory revision 0\n' +
  '  exit 0 after a signal or poweroff, 3 when the device asked for a reboot, 1 when the revision is refused\n' +
  '  PV_CRASH_AFTER=N (fault injection) kills the runtime right after its N-th durable write;\n' +
  '  with PV_CRASH_MODE=torn, in the middle of it (half of its temp file written, nothing synced or renamed)';

const MODES = ['disabled', 'audit', 'lenient', 'strict'] as const;

/** A boolean PV_* setting: 1/true/yes on, 0/false/no/unset off. */
function envFlag(name: string): boolean {
  const v = (process.env[name] ?? '').trim().toLowerCase();
  if (v === '' || v === '0' || v === 'false' || v === 'no') return false;
  if (v === '1' || v === 'true' || v === 'yes') return true;
  throw new UsageError(`${name} must be 1 or 0, not '${process.env[name]}'`);
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals: pos } = parseCommandArgs('run', argv, {
    storage: { type: 'string' },
    driver: { type: 'string' },
    ctrl: { type: 'string' },
    secureboot: { type: 'string' },
    quickboot: { type: 'boolean' },
    pubkey: { type: 'string' },
    truststore: { type: 'string' },
    verbose: { type: 'boolean', short: 'v' },
    'commit-delay': { type: 'string' },
    'goals-timeout': { type: 'string' },
    'gc-keep-factory': { type: 'boolean' },
  });
  positionals('run', pos, [], usage);
  if (!values.storage) throw new UsageError(`--storage DIR is required; usage: ${usage}`);
  const driver = values.driver ?? (process.getuid?.() === 0 ? 'namespace' : 'process');
  if (driver !== 'namespace' && driver !== 'process') throw new UsageError(`--driver must be namespace or process, not '${driver}'`);
  const secureboot = values.secureboot ?? process.env.PV_SECUREBOOT_MODE ?? 'lenient';
  if (!(MODES as readonly string[]).includes(secureboot)) throw new UsageError(`--secureboot must be one of ${MODES.join(', ')}`);
  const seconds = (name: string, v: string | undefined, env: string | undefined): number | undefined => {
    const text = v ?? env;
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${name} must be a number of seconds, not '${text}'`);
    return n;
  };
  const { Runtime, REBOOT_EXIT } = await import('../../../runtime/runtime.ts');
  const { guardProcess, isInit, mountSystem } = await import('../../../runtime/pid1.ts');
  const { loadPublicKey, loadCertificates } = await import('../../revision/trust.ts');
  const trust = {
    pubkey: values.pubkey ? await loadPublicKey(values.pubkey) : undefined,
    truststore: values.truststore ? await loadCertificates(values.truststore, 'truststore') : undefined,
  };
  const rt = new Runtime({
    trust,
    storageDir: values.storage,
    driver,
    ctrlPath: values.ctrl,
    secureboot: secureboot as (typeof MODES)[number],
    checksum: !(values.quickboot || process.env.PV_SECUREBOOT_CHECKSUM === '0'),
    verbose: values.verbose,
    commitDelayS: seconds('commit-delay', values['commit-delay'], process.env.PV_UPDATER_COMMIT_DELAY),
    goalsTimeoutS: seconds('goals-timeout', values['goals-timeout'], process.env.PV_UPDATER_GOALS_TIMEOUT),
    gcKeepFactory: values['gc-keep-factory'] || envFlag('PV_STORAGE_GC_KEEP_FACTORY'),
  });
  guardProcess(rt.log, (sig) => rt.stop(sig));
  const crashAfter = Number(process.env.PV_CRASH_AFTER ?? 0);
  if (crashAfter > 0) {
    // Fault injection for the power-loss tests: die like a power cut right after the N-th durable write,
    // or (PV_CRASH_MODE=torn) in the middle of it, with half of its temp file written and nothing synced.
    const torn = process.env.PV_CRASH_MODE === 'torn';
    let steps = 0;
    const die = (what: string, how: string) => {
      process.stderr.write(`pvmigrate run: PV_CRASH_AFTER=${crashAfter}: killed ${how} durable step ${steps} (${what})\n`);
      process.kill(process.pid, 'SIGKILL');
    };
    if (torn) {
      rt.storage.beforeDurable = async (what, tear) => {
        process.stderr.write(`pvmigrate run: durable step ${++steps}: ${what}\n`);
        if (steps !== crashAfter) return;
        await tear();
        die(what, 'tearing');
      };
    } else {
      rt.storage.onDurable = (what) => {
        process.stderr.write(`pvmigrate run: durable step ${++steps}: ${what}\n`);
        if (steps === crashAfter) die(what, 'after');
      };
    }
  }
  if (isInit()) mountSystem(rt.log);
  try {
    await rt.boot();
  } catch (err) {
    await rt.shutdown();
    // A revision under try that cannot boot is rolled back by the next (re)start.
    if (rt.selection?.trying) {
      diagnostic(`pvmigrate run: ${(err as Error).message}; rebooting to roll back`);
      return REBOOT_EXIT;
    }
    throw err;
  }
  const summaryLine = () => rt.engine!.containers.map((c) => `${c.name}=${c.status}`).join(' ');
  if (!values.json) diagnostic(`pvmigrate run: revision ${rt.selection!.rev} up (ctrl ${rt.ctrlPath}): ${summaryLine()}`);
  const end = await rt.ended;
  await rt.shutdown();
  if (values.json) printJson({ rev: rt.selection!.rev, end, containers: rt.engine!.containersJson() });
  else diagnostic(`pvmigrate run: ${end.kind === 'signal' ? `stopped on ${end.signal}` : end.kind}`);
  return end.kind === 'reboot' ? REBOOT_EXIT : 0;
}
