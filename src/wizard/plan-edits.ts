import { InvalidInputError } from '../errors.ts';
import { validatePlan, type Plan } from '../split/plan.ts';
import { isUnder } from '../split/tree-index.ts';
import type { PlanEdit } from './answers.ts';

/**
 * Apply the user's edits to a detected plan. Each edit is checked against the plan as it stands, so a
 * replayed session fails with the edit that no longer fits instead of producing a different revision.
 */
export function applyEdits(detected: Plan, edits: PlanEdit[], file?: string): Plan {
  let plan: Plan = structuredClone(detected);
  edits.forEach((edit, i) => {
    const fail = (what: string): never => {
      throw new InvalidInputError('bad-edit', `edit ${i + 1} (${edit.op}): ${what}`, { file });
    };
    const container = (name: string) => plan.containers.find((c) => c.name === name) ?? fail(`no container named "${name}" (have ${plan.containers.map((c) => c.name).join(', ')})`);
    switch (edit.op) {
      case 'rename': {
        const c = container(edit.container);
        if (plan.containers.some((o) => o.name === edit.to)) fail(`a container named "${edit.to}" exists already`);
        c.name = edit.to;
        for (const cfg of plan.config) if (cfg.container === edit.container) cfg.container = edit.to;
        break;
      }
      case 'move': {
        const target = container(edit.to);
        if (target.kind === 'image') fail(`"${edit.to}" is an image container; its files come from its image`);
        // The path leaves every app layer that holds it (or holds something inside it) …
        for (const c of plan.containers) {
          if (c.kind !== 'app') continue;
          c.paths = c.paths.filter((p) => !isUnder(p, edit.path));
        }
        // … and joins the target's layer; the base takes whatever no app holds.
        if (target.kind === 'app') target.paths = [...target.paths, edit.path].sort();
        else {
          // App layers are path prefixes with the base taking the rest, so part of an app's tree cannot go back
          // to the base on its own: say so rather than record an edit that changes nothing.
          const holder = plan.containers.find((c) => c.kind === 'app' && c.paths.some((p) => p !== edit.path && isUnder(edit.path, p)));
          if (holder) fail(`${edit.path} lies inside ${holder.paths.find((p) => isUnder(edit.path, p))} of the app "${holder.name}"; move that whole path to the base, or move ${edit.path} to another app`);
        }
        const emptied = plan.containers.find((c) => c.kind === 'app' && c.paths.length === 0);
        if (emptied) fail(`moving ${edit.path} leaves the app "${emptied.name}" with no files; move another path to it first`);
        break;
      }
      case 'group':
        container(edit.container).group = edit.group;
        break;
      case 'restart_policy':
        container(edit.container).restart_policy = edit.restart_policy;
        break;
      case 'status_goal':
        container(edit.container).status_goal = edit.status_goal;
        break;
      case 'keep': {
        const before = plan.removed.length;
        plan.removed = plan.removed.filter((r) => r.path !== edit.path);
        if (plan.removed.length === before) fail(`${edit.path} is not in the removal list`);
        break;
      }
    }
    try {
      plan = validatePlan(plan, file);
    } catch (err) {
      fail((err as Error).message);
    }
  });
  return plan;
}
