/**
 * A driver turns a container of the running revision into processes. The engine owns the lifecycle
 * (groups, goals, recovery); a driver only mounts, starts and stops one container.
 */
import type { LxcConfig } from '../lxc-config.ts';
import type { PlatformSpec } from '../platforms.ts';
import type { Storage } from '../storage.ts';

export interface ContainerContext {
  spec: PlatformSpec;
  lxc: LxcConfig;
  rev: string;
  storage: Storage;
  /** The sha256 of an object key of the state. */
  objectOf(key: string): string;
  /** trails/<rev>: every state key is a file here. */
  trailDir: string;
  /** The container's volumes directory (Pantavisor's /volumes/<c>). */
  volumesDir: string;
  /** Host path of the control socket this container sees at /pantavisor/pv-ctrl. */
  ctrlSocket: string;
  /** Open file descriptor (append) for the container's stdout and stderr. */
  consoleFd: number;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunningInit {
  /** Host pid of the container's init. */
  pid: number;
  exited: Promise<ExitInfo>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the init is gone. */
  stop(graceMs: number): Promise<ExitInfo>;
}

export interface Mounted {
  /** Release every mount (and loop device) of the container. */
  unmount(): Promise<void>;
}

export interface Driver {
  readonly name: 'namespace' | 'process';
  mount(ctx: ContainerContext): Promise<Mounted>;
  start(ctx: ContainerContext, mounted: Mounted): Promise<RunningInit>;
}
