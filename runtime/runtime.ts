/**
 * The runtime: select and verify the boot revision, serve the control socket, run the container engine,
 * and stop everything on a signal or a power command. `pvmigrate run` and bootCheck drive it.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { EnvironmentError } from '../src/errors.ts';
import { selectRevision, verifyRevision, type BootOptions, type BootSelection } from './boot.ts';
import { ControlServer, type DeviceCommand } from './control-socket.ts';
import type { Driver } from './drivers/types.ts';
import { Engine } from './engine.ts';
import { RuntimeLog } from './log.ts';
import { Storage } from './storage.ts';

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
  /** Settles when the runtime should end (power command or stop()); the caller then calls shutdown(). */
  readonly ended: Promise<EndReason>;
  private endWith!: (r: EndReason) => void;
  private readonly control: ControlServer;
  private readonly runDir: string;

  constructor(private readonly o: RuntimeOptions) {
    this.storage = new Storage(resolve(o.storageDir));
    this.log = new RuntimeLog(o.verbose ?? false);
    this.ctrlPath = resolve(o.ctrlPath ?? join(dirname(this.storage.root), 'pv-ctrl'));
    this.runDir = join(this.storage.root, 'run');
    this.ended = new Promise((r) => (this.endWith = r));
    this.control = new ControlServer({
      storage: this.storage,
      engine: () => this.engine,
      currentRev: () => this.selection?.rev,
      command: (op: DeviceCommand, message: string) => {
        this.log.info('ctrl', `${op} requested${message ? `: ${message}` : ''}`);
        this.endWith(op === 'REBOOT_DEVICE' ? { kind: 'reboot', message } : { kind: 'poweroff', message });
      },
      buildinfo: { name: 'pvmigrate', runtime: `node ${process.version}`, driver: o.driver, platform: `${process.platform}/${process.arch}` },
    });
  }

  /** Boot: select, verify, serve the control socket, start groups in order. Throws when the revision is refused. */
  async boot(): Promise<void> {
    this.selection = await selectRevision(this.storage);
    const { rev } = this.selection;
    this.log.attach(this.storage.logsDir(rev));
    this.log.info('boot', `booting revision ${rev}${this.selection.trying ? ' (trying)' : ''}${this.selection.rolledBackFrom ? ` after an uncommitted try of ${this.selection.rolledBackFrom}` : ''}`);
    const verified = await verifyRevision(this.storage, rev, this.log, this.o);
    const driver = await loadDriver(this.o.driver, this.storage);
    mkdirSync(join(this.runDir, 'ctrl'), { recursive: true });
    await this.control.listen(this.ctrlPath);
    this.engine = await Engine.load({
      storage: this.storage,
      rev,
      state: verified.state,
      driver,
      log: this.log,
      runDir: this.runDir,
      ctrlSocketFor: (name) => join(this.runDir, 'ctrl', name),
      stopGraceMs: this.o.stopGraceMs,
      groupTimeoutS: this.o.groupTimeoutS,
    });
    for (const c of this.engine.containers) await this.control.listen(join(this.runDir, 'ctrl', c.name), c.name);
    this.engine.on('reboot', (reason: string) => {
      this.log.error('engine', `${reason}: rebooting`);
      this.endWith({ kind: 'reboot', message: reason });
    });
    await this.engine.start();
  }

  /** Ask the runtime to end (e.g. on SIGTERM). */
  stop(signal: NodeJS.Signals): void {
    this.endWith({ kind: 'signal', signal });
  }

  /** Stop every container (reverse group order), close the control sockets. */
  async shutdown(): Promise<void> {
    await this.engine?.stop();
    await this.control.close();
    this.log.info('runtime', 'stopped');
  }
}
