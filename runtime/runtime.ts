/**
 * The runtime: select and verify the boot revision, serve the control socket, run the container engine,
 * take local updates, try/commit/roll back, and stop everything on a signal or a power command.
 * `pvmigrate run`, runtime/pv-init and bootCheck drive it.
 *
 * Try and commit (PV:update/update.c, reference §7–8): a revision booted from pv_try is INPROGRESS "Trying
 * new revision"; once every status goal is reached (within the goals timeout) it is TESTING, and after the
 * commit delay it is committed: boot env pv_rev=<rev> with pv_try cleared, then .pv/done, then DONE. A goal
 * not reached or a failing container means ERROR and a reboot, on which the bootloader logic of boot.ts
 * falls back to pv_rev.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { EnvironmentError } from '../src/errors.ts';
import type { TrustOptions } from '../src/revision/signature.ts';
import type { State } from '../src/revision/state.ts';
import { selectRevision, verifyRevision, type BootOptions, type BootSelection } from './boot.ts';
import { ControlServer, type DeviceCommand } from './control-socket.ts';
import type { Driver } from './drivers/types.ts';
import { Engine } from './engine.ts';
import { collectGarbage } from './gc.ts';
import { RuntimeLog } from './log.ts';
import { FINAL, progress } from './progress.ts';
import { Storage } from './storage.ts';
import { Updater } from './update.ts';

export type DriverName = 'namespace' | 'process';

export interface RuntimeOptions extends BootOptions {
  storageDir: string;
  driver: DriverName;
  /** Device control socket; default <storage>/../pv-ctrl. */
  ctrlPath?: string;
  /** Echo the runtime log on stderr. */
  verbose?: boolean;
  stopGraceMs?: number;
  groupTimeoutS?: number;
  /** PV_UPDATER_COMMIT_DELAY (s), default 25. */
  commitDelayS?: number;
  /** PV_UPDATER_GOALS_TIMEOUT (s), default 120. */
  goalsTimeoutS?: number;
  /** PV_REVISION_RETRIES, default 10. */
  maxRetries?: number;
  /** PV_STORAGE_GC_KEEP_FACTORY: garbage collection keeps the factory revision "0" too. */
  gcKeepFactory?: boolean;
  trust?: TrustOptions;
}

/** Why the runtime ended. A reboot is reported to the caller, which restarts it (exit status REBOOT_EXIT in `run`). */
export type EndReason = { kind: 'signal'; signal: NodeJS.Signals } | { kind: 'poweroff'; message: string } | { kind: 'reboot'; message: string };

/** Exit status of `pvmigrate run` asking its supervisor (pv-init, a test harness) for a fresh start. */
export const REBOOT_EXIT = 3;

export async function loadDriver(name: DriverName, storage: Storage): Promise<Driver> {
  if (name === 'namespace') {
    if (process.getuid?.() !== 0) throw new EnvironmentError('not-root', 'the namespace driver needs root (mounts and namespaces); run as root or use --driver process');
    const { NamespaceDriver } = await import('./drivers/namespace.ts');
    return new NamespaceDriver();
  }
  const { ProcessDriver } = await import('./drivers/process.ts');
  return new ProcessDriver(storage);
}

export class Runtime {
  readonly storage: Storage;
  readonly log: RuntimeLog;
  readonly ctrlPath: string;
  selection: BootSelection | undefined;
  engine: Engine | undefined;
  /** The running revision and its state (changes on an in-place update). */
  current: { rev: string; state: State } | undefined;
  readonly updater: Updater;
  /** Settles when the runtime should end (power command, reboot, stop()); the caller then calls shutdown(). */
  readonly ended: Promise<EndReason>;
  private endWith!: (r: EndReason) => void;
  private finished = false;
  private readonly control: ControlServer;
  private readonly runDir: string;
  private driver: Driver | undefined;
  private commitTimer: NodeJS.Timeout | undefined;
  /** A failed try's progress write, awaited by shutdown so the reboot never outruns it. */
  private tryFailure: Promise<void> = Promise.resolve();

  constructor(private readonly o: RuntimeOptions) {
    this.storage = new Storage(resolve(o.storageDir));
    this.log = new RuntimeLog(o.verbose ?? false);
    this.ctrlPath = resolve(o.ctrlPath ?? join(dirname(this.storage.root), 'pv-ctrl'));
    this.runDir = join(this.storage.root, 'run');
    this.ended = new Promise((r) => (this.endWith = r));
    void this.ended.then(() => (this.finished = true));
    this.updater = new Updater({
      storage: this.storage,
      log: this.log,
      secureboot: o.secureboot,
      trust: o.trust,
      maxRetries: o.maxRetries ?? 10,
      current: () => this.current,
      reboot: (reason) => this.reboot(reason),
      transition: (rev, state, restart) => this.transition(rev, state, restart),
      gc: async () => (await collectGarbage(this.storage, { current: this.current?.rev, pending: this.updater.pendingRevision, keepFactory: o.gcKeepFactory })).reclaimed,
    });
    this.control = new ControlServer({
      storage: this.storage,
      engine: () => this.engine,
      currentRev: () => this.current?.rev,
      updater: this.updater,
      command: (op: DeviceCommand, message: string) => {
        this.log.info('ctrl', `${op} requested${message ? `: ${message}` : ''}`);
        this.endWith(op === 'REBOOT_DEVICE' ? { kind: 'reboot', message } : { kind: 'poweroff', message });
      },
      buildinfo: { name: 'pvmigrate', runtime: `node ${process.version}`, driver: o.driver, platform: `${process.platform}/${process.arch}` },
    });
  }

  private reboot(reason: string): void {
    this.log.info('runtime', `rebooting: ${reason}`);
    this.endWith({ kind: 'reboot', message: reason });
  }

  private async setProgress(rev: string, make: (retries: number) => ReturnType<typeof progress.done>): Promise<void> {
    const retries = (await this.storage.readProgress(rev))?.retries ?? 0;
    await this.storage.writeProgress(rev, make(retries));
  }

  /** Boot: select, verify, serve the control socket, start groups in order. Throws when the revision is refused. */
  async boot(): Promise<void> {
    this.selection = await selectRevision(this.storage);
    const { rev, trying, rolledBackFrom } = this.selection;
    this.log.attach(this.storage.logsDir(rev));
    this.log.info('boot', `booting revision ${rev}${trying ? ' (trying)' : ''}${rolledBackFrom ? ` after an uncommitted try of ${rolledBackFrom}` : ''}`);
    if (rolledBackFrom) {
      const p = await this.storage.readProgress(rolledBackFrom);
      if (!p || !FINAL.has(p.status)) await this.setProgress(rolledBackFrom, (r) => progress.error('Unexpected rollback', r));
      await this.storage.writeBootEnv({ pv_rev: rev });
    }
    if (trying) await this.setProgress(rev, progress.trying);
    else if (!(await this.storage.isDone(rev))) {
      // pv_rev names it but .pv/done is missing: a power cut between the two writes of a commit. Finish it.
      const p = await this.storage.readProgress(rev);
      if (p && !FINAL.has(p.status)) {
        await this.storage.markDone(rev);
        await this.setProgress(rev, progress.done);
        this.log.info('boot', `revision ${rev}: completed an interrupted commit`);
      }
    }
    const verified = await verifyRevision(this.storage, rev, this.log, this.o);
    this.current = { rev, state: verified.state };
    this.driver = await loadDriver(this.o.driver, this.storage);
    mkdirSync(join(this.runDir, 'ctrl'), { recursive: true });
    await this.control.listen(this.ctrlPath);
    this.engine = await this.newEngine(rev, verified.state);
    // Watch before starting: a container may fail while later groups are still starting.
    if (trying) this.watchTry(rev, this.engine, Date.now(), 'reboot');
    await this.engine.start();
  }

  private async newEngine(rev: string, state: State, adopt?: Map<string, import('./container.ts').Container>): Promise<Engine> {
    const engine = await Engine.load(
      {
        storage: this.storage,
        rev,
        state,
        driver: this.driver!,
        log: this.log,
        runDir: this.runDir,
        ctrlSocketFor: (name) => join(this.runDir, 'ctrl', name),
        stopGraceMs: this.o.stopGraceMs,
        groupTimeoutS: this.o.groupTimeoutS,
      },
      adopt,
    );
    for (const c of engine.containers) {
      const sock = join(this.runDir, 'ctrl', c.name);
      if (!this.control.listening(sock)) await this.control.listen(sock, c.name);
    }
    engine.on('reboot', (reason: string) => this.reboot(reason));
    return engine;
  }

  /**
   * Under test: wait for every goal (goals timeout), then TESTING, then commit after the commit delay,
   * unless a container fails meanwhile. `kind` says whether this is a reboot try or an in-place update.
   */
  private watchTry(rev: string, engine: Engine, t0: number, kind: 'reboot' | 'in-place'): void {
    let failed: string | undefined;
    let settled = false;
    const fail = (msg: string, detail: string): Promise<void> => {
      if (settled || this.engine !== engine) return Promise.resolve();
      settled = true;
      clearTimeout(this.commitTimer);
      this.log.error('update', `revision ${rev}: ${msg} (${detail}); returning to the last committed revision`);
      this.tryFailure = (async () => {
        await this.storage.writeProgress(rev, { ...progress.error(msg, (await this.storage.readProgress(rev))?.retries ?? 0), logs: detail });
        this.reboot(`${msg}: ${detail}`);
      })();
      return this.tryFailure;
    };
    engine.on('failed', (c: { name: string }, reason: string) => {
      failed ??= `${c.name}: ${reason}`;
      void fail('A container could not be started', failed);
    });
    void (async () => {
      const deadline = t0 + (this.o.goalsTimeoutS ?? 120) * 1000;
      while (!engine.goalsReached() && !failed && Date.now() < deadline && !this.finished) await new Promise((r) => setTimeout(r, 100));
      if (failed) return fail('A container could not be started', failed);
      if (!engine.goalsReached()) return fail('Status goal not reached', engine.containers.filter((c) => !c.goalReached()).map((c) => `${c.name} ${c.status}/${c.goal}`).join(', '));
      if (this.finished) return;
      await this.setProgress(rev, kind === 'reboot' ? progress.testingReboot : progress.testingNoReboot);
      this.commitTimer = setTimeout(() => {
        void (async () => {
          if (failed) return fail('A container could not be started', failed);
          if (!engine.goalsReached()) return fail('Status goal not reached', 'a container left its goal while testing');
          if (settled || this.finished || this.engine !== engine) return;
          settled = true;
          if (kind === 'reboot') {
            // Commit point: bootloader env first, then .pv/done (reference §7).
            await this.storage.writeBootEnv({ pv_rev: rev });
            await this.storage.markDone(rev);
            await this.setProgress(rev, progress.done);
          } else await this.setProgress(rev, progress.updated);
          this.log.info('update', `revision ${rev} ${kind === 'reboot' ? 'committed (DONE)' : 'UPDATED'}`);
        })().catch((err) => this.log.error('update', `commit of ${rev} failed: ${(err as Error).message}`));
      }, (this.o.commitDelayS ?? 25) * 1000);
    })().catch((err) => this.log.error('update', `try of ${rev}: ${(err as Error).message}`));
  }

  /** In-place update: stop the affected containers, adopt the others into the new revision's engine. */
  private async transition(rev: string, state: State, restart: string[]): Promise<void> {
    const old = this.engine!;
    const next = new Set(Object.keys(state).filter((k) => k.endsWith('/run.json') && k !== 'bsp/run.json').map((k) => k.slice(0, -'/run.json'.length)));
    const keep = new Set(old.containers.map((c) => c.name).filter((n) => next.has(n) && !restart.includes(n)));
    const adopt = await old.release(keep);
    this.log.attach(this.storage.logsDir(rev));
    this.engine = await this.newEngine(rev, state, adopt);
    this.current = { rev, state };
    await this.setProgress(rev, progress.transitioning);
    this.watchTry(rev, this.engine, Date.now(), 'in-place');
    await this.engine.start();
  }

  /** Ask the runtime to end (e.g. on SIGTERM). */
  stop(signal: NodeJS.Signals): void {
    this.endWith({ kind: 'signal', signal });
  }

  /** Stop every container (reverse group order), close the control sockets. */
  async shutdown(): Promise<void> {
    this.finished = true;
    clearTimeout(this.commitTimer);
    await this.tryFailure.catch(() => undefined);
    await this.engine?.stop();
    await this.control.close();
    this.log.info('runtime', 'stopped');
  }
}
