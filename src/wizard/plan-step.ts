import type { OpenedSource } from '../convert/open-source.ts';
import { PvError } from '../errors.ts';
import { formatBytes } from '../report/format.ts';
import { Split } from '../split/assign.ts';
import type { Group, Plan, RestartPolicy } from '../split/plan.ts';
import type { PlanEdit, StatusGoal } from './answers.ts';
import type { Ask } from './ask.ts';
import { applyEdits } from './plan-edits.ts';
import { planSizes, type PlanSizes } from '../split/sizes.ts';

const GROUPS: Group[] = ['data', 'root', 'platform', 'app'];
const POLICIES: RestartPolicy[] = ['system', 'container'];
const GOALS: StatusGoal[] = ['MOUNTED', 'STARTED', 'READY'];

/** The plan as the user sees it: BSP parts, containers with their sizes, removals, review items. */
export function describePlan(plan: Plan, sizes: PlanSizes): string {
  const b = plan.bsp;
  const lines = [
    `BSP (${formatBytes(sizes.bsp)}):`,
    `  kernel ${b.fit ?? b.kernel ?? '(none)'}; dtbs ${b.dtbs.length ? b.dtbs.join(', ') : '(none)'}`,
    `  modules ${b.modules.length ? b.modules.join(', ') : '(none)'}; firmware ${b.firmware ?? '(none)'}; initrd ${b.initrd ?? '(none: review)'}`,
    'Containers:',
    ...plan.containers.map(
      (c) =>
        `  ${c.name.padEnd(16)} ${c.kind.padEnd(5)} group ${c.group.padEnd(8)} restart ${c.restart_policy.padEnd(9)} goal ${(c.status_goal ?? 'STARTED').padEnd(7)} ` +
        `${formatBytes(sizes.containers[c.name] ?? 0).padStart(10)}${c.paths.length ? `  ${c.paths.join(', ')}` : ''}`,
    ),
    `Removed (old updater): ${plan.removed.length}`,
    ...sizes.removed.map((r) => `  ${r.path} (${formatBytes(r.bytes)})`),
    `Review items: ${plan.review.length}`,
    ...plan.review.map((r) => `  [${r.kind}] ${r.item}: ${r.reason}`),
  ];
  return lines.join('\n');
}

/** The edits of one menu choice at the terminal, or null when the user accepts the plan. */
async function chooseEdits(plan: Plan, ask: Ask): Promise<PlanEdit[] | null> {
  const action = await ask.select('plan.action', 'Change the plan?', [
    { title: 'Accept the plan and convert', value: 'accept' },
    { title: 'Rename a container', value: 'rename' },
    { title: 'Move a path between the base and an app', value: 'move' },
    { title: 'Change a container\'s group', value: 'group' },
    { title: 'Change a container\'s restart policy', value: 'restart_policy' },
    { title: 'Change a container\'s status goal', value: 'status_goal' },
    { title: 'Keep or drop removals of the old updater', value: 'removals' },
  ]);
  const pick = () => ask.select('plan.container', 'Which container?', plan.containers.map((c) => ({ title: c.name, value: c.name })));
  switch (action) {
    case 'accept':
      return null;
    case 'rename':
      return [{ op: 'rename', container: await pick(), to: (await ask.text('plan.name', 'New name')).trim() }];
    case 'move':
      return [{
        op: 'move',
        path: (await ask.text('plan.path', 'Path in the root filesystem (a directory moves with everything below it)')).trim(),
        to: await ask.select('plan.to', 'Move it to', plan.containers.filter((c) => c.kind !== 'image').map((c) => ({ title: `${c.name} (${c.kind})`, value: c.name }))),
      }];
    case 'group': {
      const container = await pick();
      return [{ op: 'group', container, group: await ask.select('plan.group', 'Group', GROUPS.map((g) => ({ title: g, value: g }))) }];
    }
    case 'restart_policy': {
      const container = await pick();
      return [{ op: 'restart_policy', container, restart_policy: await ask.select('plan.policy', 'Restart policy', POLICIES.map((p) => ({ title: p, value: p }))) }];
    }
    case 'status_goal': {
      const container = await pick();
      return [{ op: 'status_goal', container, status_goal: await ask.select('plan.goal', 'Status goal', GOALS.map((g) => ({ title: g, value: g }))) }];
    }
    default: {
      if (plan.removed.length === 0) {
        ask.say('  nothing is removed');
        return [];
      }
      const kept = await ask.multiselect(
        'plan.keep',
        'Select removals to KEEP in the image (unselected ones are removed)',
        plan.removed.map((r) => ({ title: `${r.path} (${r.updater}: ${r.what})`, value: r.path })),
      );
      return kept.map((path) => ({ op: 'keep', path }));
    }
  }
}

/**
 * The detected plan with the recorded edits applied, then (at a terminal) edited until accepted.
 * Returns the final plan, the full edit list and the split it makes of the source.
 */
export async function settlePlan(src: OpenedSource, detected: Plan, recorded: PlanEdit[], ask: Ask, answersFile?: string): Promise<{ plan: Plan; edits: PlanEdit[]; split: Split }> {
  const edits = [...recorded];
  let plan = applyEdits(detected, edits, answersFile);
  let split = Split.apply(plan, src.rootfs, src.boot);
  ask.say(describePlan(plan, planSizes(split)));
  if (!ask.interactive) return { plan, edits, split };
  for (;;) {
    const chosen = await chooseEdits(plan, ask);
    if (!chosen) return { plan, edits, split };
    try {
      const next = applyEdits(plan, chosen);
      split = Split.apply(next, src.rootfs, src.boot);
      plan = next;
      edits.push(...chosen);
      ask.say(describePlan(plan, planSizes(split)));
    } catch (err) {
      if (!(err instanceof PvError)) throw err;
      ask.say(`  not applied: ${err.message}`);
    }
  }
}
