// Start-up of a whole CLI run: the prebuilt bundle (dist/current) against the TypeScript sources through tsx,
// for `pvmigrate --help` (loads every command module) and `inspect` of a 7 KB Mender artifact.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { measure, type Measurement } from './measure.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const tiny = fileURLToPath(new URL('../samples/mender/demo-1.0.mender', import.meta.url));
const bin = fileURLToPath(new URL('../bin/pvmigrate.js', import.meta.url));
const RUNS = 7;

/** bin/pvmigrate.js as users run it, forced onto the bundle ('1') or tsx ('0'). */
const pvmigrate = (mode: '0' | '1', args: string[]) => measure(process.execPath, [bin, ...args], { env: { PVMIGRATE_BUNDLE: mode } });

function median(ms: Measurement[]): Measurement {
  return [...ms].sort((a, b) => a.seconds - b.seconds)[Math.floor(ms.length / 2)]!;
}

function line(label: string, m: Measurement): string {
  return `${label}: ${m.seconds.toFixed(3)} s, peak RSS ${m.maxRssMiB.toFixed(0)} MiB`;
}

export async function bench(): Promise<void> {
  const b = spawnSync(process.execPath, ['--import', 'tsx', 'build/bundle.ts'], { cwd: root, encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`build failed: ${b.stderr}`);
  const cases = {
    node: () => measure(process.execPath, ['-e', '0']),
    helpBundle: () => pvmigrate('1', ['--help']),
    helpTsx: () => pvmigrate('0', ['--help']),
    inspectBundle: () => pvmigrate('1', ['inspect', tiny, '--json']),
    inspectTsx: () => pvmigrate('0', ['inspect', tiny, '--json']),
    peer: () => measure('mender-artifact', ['validate', tiny]),
  };
  const runs = Object.fromEntries(Object.keys(cases).map((k) => [k, [] as Measurement[]])) as Record<keyof typeof cases, Measurement[]>;
  // Interleaved, median of RUNS: the machine is shared and its load drifts.
  for (let i = 0; i < RUNS; i++) for (const [k, run] of Object.entries(cases)) runs[k as keyof typeof cases].push(run());
  const m = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)])) as Record<keyof typeof cases, Measurement>;
  console.log(`median of ${RUNS} interleaved runs (wall time, GNU time peak RSS)`);
  console.log(line('  node -e 0 (floor)', m.node));
  console.log(line('  pvmigrate --help, bundle', m.helpBundle) + `; tsx ${m.helpTsx.seconds.toFixed(3)} s, ${m.helpTsx.maxRssMiB.toFixed(0)} MiB; ${(m.helpTsx.seconds / m.helpBundle.seconds).toFixed(1)}× faster`);
  console.log(line('  pvmigrate inspect --json 7 KB .mender, bundle', m.inspectBundle) + `; tsx ${m.inspectTsx.seconds.toFixed(3)} s, ${m.inspectTsx.maxRssMiB.toFixed(0)} MiB; ${(m.inspectTsx.seconds / m.inspectBundle.seconds).toFixed(1)}× faster`);
  console.log(line('  mender-artifact validate, same file (peer)', m.peer));
}
