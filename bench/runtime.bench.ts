// Runtime figures: time from `pvmigrate run` start to all 5 containers STARTED (namespace driver when root,
// target ≤ 1 s), time to stop them all, and the runtime's peak RSS (VmHWM of the node process).
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../test/helpers/cli.ts';
import { sh } from '../test/helpers/env.ts';
import { buildRevision, ctrl, startRuntime, waitFor } from '../test/runtime-fixture.ts';

const idle = 'trap "exit 0" TERM\nwhile :; do sleep 0.1; done\n';
const five = [
  { name: 'b1', group: 'root', init: idle },
  { name: 'b2', group: 'platform', init: idle },
  { name: 'b3', group: 'platform', init: idle },
  { name: 'b4', group: 'app', init: idle },
  { name: 'b5', group: 'app', init: idle },
];

export async function bench(): Promise<void> {
  const driver = process.getuid?.() === 0 ? 'namespace' : 'process';
  const dir = await mkdtemp(join(tmpdir(), 'pvmigrate-bench-runtime-'));
  try {
    await buildRevision(dir, five);
    const storage = join(dir, 'storage');
    sh(process.execPath, [join(repoRoot, 'bin/pvmigrate.js'), 'deploy', join(dir, 'repo'), '--storage', storage]);
    const ctrlPath = join(dir, 'pv-ctrl');
    for (let round = 1; round <= 3; round++) {
      const t0 = process.hrtime.bigint();
      const rt = startRuntime(storage, ctrlPath, driver);
      await waitFor(ctrlPath, (cs) => cs.length === 5 && cs.every((c) => c.status === 'STARTED'), 'all STARTED');
      const up = Number(process.hrtime.bigint() - t0) / 1e9;
      const hwm = Number(/^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${rt.child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
      const t1 = process.hrtime.bigint();
      await ctrl(ctrlPath, 'POST', '/commands', { op: 'POWEROFF_DEVICE' });
      await rt.exit;
      const down = Number(process.hrtime.bigint() - t1) / 1e9;
      // The runtime's own clock: from "booting revision" to the last container STARTED (excludes node/tsx start-up).
      const log = readFileSync(join(storage, 'logs/0/pantavisor/pantavisor.log'), 'utf8').split('\n');
      const at = (l: string | undefined) => Date.parse(l?.split(' ')[1] ?? '');
      const bootLine = log.map((l) => l.includes('booting revision')).lastIndexOf(true);
      const lastStarted = log.slice(bootLine).filter((l) => l.includes('status is now STARTED')).pop();
      const inner = (at(lastStarted) - at(log[bootLine])) / 1000;
      console.log(
        `runtime (${driver} driver) round ${round}: 5 containers STARTED ${up.toFixed(2)} s after process start, ${inner.toFixed(2)} s after boot began (target ≤ 1 s); ` +
          `all stopped in ${down.toFixed(2)} s; runtime peak RSS ${hwm.toFixed(0)} MiB; load average ${loadavg()[0].toFixed(1)}`,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
