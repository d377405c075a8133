/**
 * The container engine for one booted revision: starts groups in order (each waits for the previous group's
 * status goals or its timeout), tracks goals, forwards control-socket actions, stops everything in reverse.
 */
import { EventEmitter } from 'node:events';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidInputError } from '../src/errors.ts';
import { Container, type ContainerStatus } from './container.ts';
import type { Driver } from './drivers/types.ts';
import { parseLxcConfig } from './lxc-config.ts';
import type { RuntimeLog } from './log.ts';
import { planRevision, type Group, type RevisionPlan } from './platforms.ts';
import { safeJoin, type Storage } from './storage.ts';
import type { State } from '../src/revision/state.ts';

export interface EngineOptions {
  storage: Storage;
  rev: string;
  state: State;
  driver: Driver;
  log: RuntimeLog;
  /** Runtime scratch directory (volumes of the namespace driver, per-container control sockets). */
  runDir: string;
  /** Host path of the control socket container `name` gets at /pantavisor/pv-ctrl. */
  ctrlSocketFor(name: string): string;
  stopGraceMs?: number;
  /** Override every group's timeout (seconds), e.g. validate --boot --timeout. */
  groupTimeoutS?: number;
}

export interface GroupResult {
  name: string;
  reached: boolean;
  waitedMs: number;
}

/** Events: 'failed' (container, reason) for an unrecovered crash; 'reboot' (reason) when a system container fails. */
export class Engine extends EventEmitter {
  readonly plan: RevisionPlan;
  readonly containers: Container[];
  readonly groupResults: GroupResult[] = [];
  private readonly fds: number[] = [];
  private stopped = false;

  private constructor(
    private readonly o: EngineOptions,
    plan: RevisionPlan,
    containers: Container[],
  ) {
    super();
    this.plan = plan;
    this.containers = containers;
  }

  /** `adopt`: running containers of the previous revision that an in-place update leaves untouched. */
  static async load(o: EngineOptions, adopt: Map<string, Container> = new Map()): Promise<Engine> {
    const plan = planRevision(o.state);
    const trailDir = o.storage.trailDir(o.rev);
    const engine = new Engine(o, plan, []);
    for (const spec of plan.platforms) {
      const kept = adopt.get(spec.name);
      if (kept) {
        kept.removeAllListeners('failed');
        engine.fds.push(kept.ctx.consoleFd);
        engine.watch(kept);
        engine.containers.push(kept);
        continue;
      }
      const confPath = safeJoin(trailDir, spec.configKey);
      const lxc = parseLxcConfig(await readFile(confPath, 'utf8').catch(() => {
        throw new InvalidInputError('missing-config', `container ${spec.name}: ${spec.configKey} missing from the trail`, { file: confPath });
      }), confPath);
      if (lxc.unknown.length) o.log.warn('lxc', `${spec.configKey}: unknown keys not applied: ${lxc.unknown.join(', ')}`);
      if (lxc.ignored.length) o.log.info('lxc', `${spec.configKey}: keys accepted but not enforced by this runtime: ${[...new Set(lxc.ignored)].join(', ')}`);
      const logDir = join(o.storage.logsDir(o.rev, spec.name), 'lxc');
      mkdirSync(logDir, { recursive: true });
      const fd = openSync(join(logDir, 'console.log'), 'a');
      engine.fds.push(fd);
      const c = new Container(
        { spec, lxc, rev: o.rev, storage: o.storage, objectOf: (key) => String(o.state[key]), trailDir, volumesDir: join(o.runDir, 'volumes', spec.name), ctrlSocket: o.ctrlSocketFor(spec.name), consoleFd: fd },
        o.driver,
        o.log,
        { stopGraceMs: o.stopGraceMs ?? 5000 },
      );
      engine.watch(c);
      engine.containers.push(c);
    }
    return engine;
  }

  private watch(c: Container): void {
    c.on('failed', (reason: string) => {
      this.emit('failed', c, reason);
      if (c.ctx.spec.restartPolicy === 'system') this.emit('reboot', `container '${c.name}' with restart_policy system failed: ${reason}`);
    });
  }

  /**
   * Hand over to the next revision's engine: stop (and unmount) every container except `keep`, whose running
   * Container objects are returned for Engine.load to adopt.
   */
  async release(keep: Set<string>): Promise<Map<string, Container>> {
    this.stopped = true;
    this.emit('stopping');
    const kept = new Map<string, Container>();
    for (const g of [...this.plan.groups].reverse()) {
      await Promise.all(
        this.members(g).map(async (c) => {
          if (keep.has(c.name)) {
            kept.set(c.name, c);
            return;
          }
          await c.stop({ unmount: true }).catch((err) => this.o.log.error('engine', `${c.name}: stop failed: ${(err as Error).message}`));
          closeSync(c.ctx.consoleFd);
        }),
      );
    }
    this.fds.splice(0);
    return kept;
  }

  container(name: string): Container | undefined {
    return this.containers.find((c) => c.name === name);
  }

  private members(g: Group): Container[] {
    return this.containers.filter((c) => c.ctx.spec.group === g.name);
  }

  /** Start every group in order; resolves when the last group reached its goals or timed out. */
  async start(): Promise<void> {
    for (const c of this.containers) c.block();
    for (const g of this.plan.groups) {
      if (this.stopped) return;
      const members = this.members(g);
      if (members.length === 0) continue;
      this.o.log.info('engine', `starting group '${g.name}' (${members.map((c) => c.name).join(', ')})`);
      const t0 = Date.now();
      await Promise.all(members.map((c) => c.start().catch((err) => this.o.log.error('engine', `${c.name}: ${(err as Error).message}`))));
      const reached = await this.waitGoals(members, (this.o.groupTimeoutS ?? g.timeout) * 1000);
      this.groupResults.push({ name: g.name, reached, waitedMs: Date.now() - t0 });
      if (!reached) {
        const late = members.filter((c) => !c.goalReached()).map((c) => `${c.name} (${c.status}, goal ${c.goal})`);
        this.o.log.error('engine', `group '${g.name}' did not reach its status goals within ${this.o.groupTimeoutS ?? g.timeout} s: ${late.join(', ')}`);
      }
    }
  }

  private waitGoals(members: Container[], timeoutMs: number): Promise<boolean> {
    const done = () => members.every((c) => c.goalReached());
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => {
        if (done() || this.stopped) finish(done());
      };
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        for (const c of members) c.off('status', check);
        this.off('stopping', check);
        resolve(ok);
      };
      const timer = setTimeout(() => finish(done()), timeoutMs);
      for (const c of members) c.on('status', check);
      this.on('stopping', check);
    });
  }

  /** Every container at its status goal. */
  goalsReached(): boolean {
    return this.containers.every((c) => c.goalReached());
  }

  /** Stop in reverse group order and release mounts and log files. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.emit('stopping');
    for (const g of [...this.plan.groups].reverse()) {
      await Promise.all(this.members(g).map((c) => c.stop({ unmount: true }).catch((err) => this.o.log.error('engine', `${c.name}: stop failed: ${(err as Error).message}`))));
    }
    for (const fd of this.fds.splice(0)) closeSync(fd);
  }

  /** GET /containers, shaped as PV's pv_platform_add_json. */
  containersJson(): { name: string; group: string; status: ContainerStatus; status_goal: string; restart_policy: string; roles: string[] }[] {
    return this.containers.map((c) => ({
      name: c.name,
      group: c.ctx.spec.group,
      status: c.status,
      status_goal: c.goal,
      restart_policy: c.ctx.spec.restartPolicy,
      roles: c.ctx.spec.roles,
    }));
  }

  /** GET /groups, shaped as PV's pv_group_add_json. */
  groupsJson(): { name: string; status_goal: string; restart_policy: string; timeout: number; status: { name: string; status: ContainerStatus; status_goal: string }[] }[] {
    return this.plan.groups.map((g) => ({
      name: g.name,
      status_goal: g.statusGoal,
      restart_policy: g.restartPolicy,
      timeout: g.timeout,
      status: this.members(g).map((c) => ({ name: c.name, status: c.status, status_goal: c.goal })),
    }));
  }
}
