// Start-up of a whole CLI run: the prebuilt bundle (dist/current) against the TypeScript sources through tsx,
// for `pvmigrate --help` (loads every command module) and `inspect` of a 7 KB Mender artifact.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freshBuild } from '../build/freshness.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const bin = fileURLToPath(new URL('../bin/pvmigrate.js', import.meta.url));
const tiny = fileURLToPath(new URL('../samples/mender/demo-1.0.mender', import.meta.url));
const RUNS = 7;

interface Run {
  wall: number;
  /** user + system CPU seconds: less disturbed than wall time when the shared machine is loaded. */
  cpu: number;
  rssMiB: number;
}

/** One run under GNU time (wall, CPU, peak RSS), as bench/measure.ts measures, plus CPU time. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const start = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S %M', cmd, ...args], { env: { ...process.env, ...env }, maxBuffer: 1 << 26 });
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString().slice(-2000)}`);
  const [user, sys, rss] = r.stderr.toString().trim().split('\n').pop()!.split(' ').map(Number) as [number, number, number];
  return { wall, cpu: user + sys, rssMiB: rss / 1024 };
}

/** bin/pvmigrate.js as users run it, forced onto the bundle ('1') or tsx ('0'). */
const pvmigrate = (mode: '0' | '1', args: string[]) => timed(process.execPath, [bin, ...args], { PVMIGRATE_BUNDLE: mode });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function summary(runs: Run[]): Run {
  return { wall: median(runs.map((r) => r.wall)), cpu: median(runs.map((r) => r.cpu)), rssMiB: median(runs.map((r) => r.rssMiB)) };
}

const fmt = (m: Run) => `${m.wall.toFixed(3)} s wall, ${m.cpu.toFixed(3)} s CPU, peak RSS ${m.rssMiB.toFixed(0)} MiB`;

export async function bench(): Promise<void> {
  const b = spawnSync(process.execPath, ['--import', 'tsx', 'build/bundle.ts'], { cwd: root, encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`build failed: ${b.stderr}`);
  const cases = {
    node: () => timed(process.execPath, ['-e', '0']),
    helpBundle: () => pvmigrate('1', ['--help']),
    helpTsx: () => pvmigrate('0', ['--help']),
    inspectBundle: () => pvmigrate('1', ['inspect', tiny, '--json']),
    inspectTsx: () => pvmigrate('0', ['inspect', tiny, '--json']),
    peer: () => timed('mender-artifact', ['validate', tiny]),
  };
  type Case = keyof typeof cases;
  const runs = Object.fromEntries(Object.keys(cases).map((k) => [k, [] as Run[]])) as Record<Case, Run[]>;
  // Interleaved, median of RUNS: the machine is shared and its load drifts.
  for (let i = 0; i < RUNS; i++) for (const k of Object.keys(cases) as Case[]) runs[k].push(cases[k]());
  const m = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, summary(v)])) as Record<Case, Run>;
  const gain = (bundle: Run, tsx: Run) => `${(tsx.wall / bundle.wall).toFixed(1)}× faster wall, ${(tsx.cpu / bundle.cpu).toFixed(1)}× less CPU`;
  console.log(`median of ${RUNS} interleaved runs`);
  console.log(`  node -e 0 (floor):                         ${fmt(m.node)}`);
  console.log(`  pvmigrate --help, bundle:                  ${fmt(m.helpBundle)}`);
  console.log(`  pvmigrate --help, tsx:                     ${fmt(m.helpTsx)}  → bundle ${gain(m.helpBundle, m.helpTsx)}`);
  console.log(`  pvmigrate inspect --json 7 KB, bundle:     ${fmt(m.inspectBundle)}`);
  console.log(`  pvmigrate inspect --json 7 KB, tsx:        ${fmt(m.inspectTsx)}  → bundle ${gain(m.inspectBundle, m.inspectTsx)}`);
  console.log(`  mender-artifact validate, same file:       ${fmt(m.peer)}`);
  // What bin/pvmigrate.js adds to every run to choose the bundle: the stat walk of the sources.
  const checks: number[] = [];
  for (let i = 0; i < 21; i++) {
    const t0 = process.hrtime.bigint();
    freshBuild(root);
    checks.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  console.log(`  freshness check (stat walk of src/, importers/, runtime/): median ${median(checks).toFixed(2)} ms, max ${Math.max(...checks).toFixed(2)} ms`);
}
