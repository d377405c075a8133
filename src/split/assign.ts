import { InvalidInputError } from '../errors.ts';
import type { Plan } from './plan.ts';
import { isUnder, type TreeIndex } from './tree-index.ts';

/** Where one root filesystem entry goes. */
export type Destination = { to: 'base' } | { to: 'bsp'; part: 'kernel' | 'fit' | 'dtb' | 'modules' | 'firmware' } | { to: 'app'; name: string } | { to: 'removed' };

export interface Accounting {
  /** Entries of the root filesystem (directories included). */
  entries: number;
  base: number;
  bsp: number;
  removed: number;
  apps: Record<string, number>;
}

/**
 * The plan applied to a root filesystem: every entry gets exactly one destination. Directories that only
 * contain other destinations' entries are recreated as ancestors in each output, with the same metadata.
 */
export class Split {
  private readonly appPrefixes: { prefix: string; name: string }[];

  private constructor(
    readonly plan: Plan,
    readonly rootfs: TreeIndex,
  ) {
    // Longest prefix first, so a nested path given to another app wins over its parent's.
    this.appPrefixes = plan.containers
      .filter((c) => c.kind === 'app')
      .flatMap((c) => c.paths.filter((p) => !p.startsWith('boot:')).map((prefix) => ({ prefix, name: c.name })))
      .sort((a, b) => b.prefix.length - a.prefix.length);
  }

  /** Checks that every path the plan names exists (missing paths are a plan error, exit 1), then applies it. */
  static apply(plan: Plan, rootfs: TreeIndex, boot: TreeIndex | undefined, planFile?: string): Split {
    const missing: string[] = [];
    const need = (p: string | null, what: string) => {
      if (p === null) return;
      const inBoot = p.startsWith('boot:');
      const idx = inBoot ? boot : rootfs;
      if (!idx?.has(inBoot ? p.slice(5) : p)) missing.push(`${what} ${p}`);
    };
    need(plan.bsp.kernel, 'bsp.kernel');
    need(plan.bsp.fit, 'bsp.fit');
    need(plan.bsp.firmware, 'bsp.firmware');
    plan.bsp.dtbs.forEach((p) => need(p, 'bsp.dtbs'));
    plan.bsp.modules.forEach((p) => need(p, 'bsp.modules'));
    for (const c of plan.containers) c.paths.forEach((p) => need(p, `containers.${c.name}.paths`));
    plan.removed.forEach((r) => need(r.path, 'removed'));
    if (missing.length > 0) {
      throw new InvalidInputError(
        'plan-missing-path',
        `the plan names paths the source does not have: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` (and ${missing.length - 5} more)` : ''}; fix them or write a fresh plan with --write-plan`,
        { file: planFile },
      );
    }
    const owners = new Map<string, string>();
    for (const c of plan.containers) {
      for (const p of c.paths) {
        const other = owners.get(p);
        if (other) throw new InvalidInputError('bad-plan', `invalid plan: ${p} is given to both ${other} and ${c.name}`, { file: planFile });
        owners.set(p, c.name);
        const gone = plan.removed.find((r) => isUnder(p, r.path));
        if (gone) throw new InvalidInputError('bad-plan', `invalid plan: ${p} of container ${c.name} lies in the removed path ${gone.path}`, { file: planFile });
      }
    }
    // bsp/modules.squashfs has one root: every module tree must sit in the same directory.
    const moduleParents = new Set(plan.bsp.modules.map((m) => m.slice(0, m.lastIndexOf('/')) || '/'));
    if (moduleParents.size > 1) {
      throw new InvalidInputError('bad-plan', `invalid plan: bsp.modules lie in different directories (${[...moduleParents].join(', ')}); keep the trees of one directory`, { file: planFile });
    }
    const dtbNames = new Set<string>();
    for (const d of plan.bsp.dtbs) {
      const n = d.slice(d.lastIndexOf('/') + 1);
      if (dtbNames.has(n)) throw new InvalidInputError('bad-plan', `invalid plan: two device trees are named ${n}; bsp/ holds one file per name`, { file: planFile });
      dtbNames.add(n);
    }
    return new Split(plan, rootfs);
  }

  /** The root of bsp/modules.squashfs: the directory holding the module trees (/lib/modules). */
  get modulesRoot(): string | null {
    const first = this.plan.bsp.modules[0];
    return first ? first.slice(0, first.lastIndexOf('/')) || '/' : null;
  }

  destination(path: string): Destination {
    const { bsp, removed } = this.plan;
    if (removed.some((r) => isUnder(path, r.path))) return { to: 'removed' };
    if (path === bsp.kernel) return { to: 'bsp', part: 'kernel' };
    if (path === bsp.fit) return { to: 'bsp', part: 'fit' };
    if (bsp.dtbs.includes(path)) return { to: 'bsp', part: 'dtb' };
    if (bsp.modules.some((m) => isUnder(path, m))) return { to: 'bsp', part: 'modules' };
    if (bsp.firmware !== null && path !== bsp.firmware && isUnder(path, bsp.firmware)) return { to: 'bsp', part: 'firmware' };
    const app = this.appPrefixes.find((a) => isUnder(path, a.prefix));
    if (app) return { to: 'app', name: app.name };
    return { to: 'base' };
  }

  /** Counts per destination; their sum is the number of entries, which tests check against the source. */
  account(): Accounting {
    const acc: Accounting = { entries: 0, base: 0, bsp: 0, removed: 0, apps: {} };
    for (const c of this.plan.containers) if (c.kind === 'app') acc.apps[c.name] = 0;
    for (const e of this.rootfs.entries) {
      acc.entries++;
      const d = this.destination(e.path);
      if (d.to === 'app') acc.apps[d.name] = (acc.apps[d.name] ?? 0) + 1;
      else acc[d.to]++;
    }
    return acc;
  }

  /** Link counts of hardlinked files inside one destination (a link group split across outputs loses members). */
  linkCounts(select: (path: string) => boolean): Map<number, number> {
    const counts = new Map<number, number>();
    for (const e of this.rootfs.entries) {
      if (e.type !== 'dir' && e.nlink > 1 && select(e.path)) counts.set(e.inode, (counts.get(e.inode) ?? 0) + 1);
    }
    return counts;
  }
}
