/**
 * One container's lifecycle, with Pantavisor's statuses (INSTALLED, MOUNTED, BLOCKED, STARTING, STARTED,
 * READY, RECOVERING, STOPPING, STOPPED) and auto-recovery (policy, max_retries, retry_delay × backoff_factor^n).
 */
import { EventEmitter } from 'node:events';
import type { ContainerContext, Driver, ExitInfo, Mounted, RunningInit } from './drivers/types.ts';
import type { RuntimeLog } from './log.ts';
import type { StatusGoal } from './platforms.ts';

export type ContainerStatus = 'INSTALLED' | 'MOUNTED' | 'BLOCKED' | 'STARTING' | 'STARTED' | 'READY' | 'RECOVERING' | 'STOPPING' | 'STOPPED';

const RANK: Record<StatusGoal, ContainerStatus[]> = {
  MOUNTED: ['MOUNTED', 'STARTING', 'STARTED', 'READY'],
  STARTED: ['STARTED', 'READY'],
  READY: ['READY'],
};

export interface ContainerOptions {
  /** SIGTERM → SIGKILL grace when stopping. */
  stopGraceMs: number;
}

/** Events: 'status' (status), 'failed' (reason) when a crash is not (or no longer) recovered. */
export class Container extends EventEmitter {
  status: ContainerStatus = 'INSTALLED';
  /** Auto-recovery attempts since the last successful (re)start by the user or boot. */
  retries = 0;
  userStopped = false;
  lastExit: ExitInfo | undefined;
  failure: string | undefined;
  pid: number | undefined;
  private mounted: Mounted | undefined;
  private running: RunningInit | undefined;
  private recovery: NodeJS.Timeout | undefined;
  private stopping = false;
  private inflight: Promise<void> | undefined;

  constructor(
    readonly ctx: ContainerContext,
    private readonly driver: Driver,
    private readonly log: RuntimeLog,
    private readonly options: ContainerOptions,
  ) {
    super();
  }

  get name(): string {
    return this.ctx.spec.name;
  }

  get goal(): StatusGoal {
    return this.ctx.spec.statusGoal;
  }

  goalReached(): boolean {
    return RANK[this.goal].includes(this.status);
  }

  private set(status: ContainerStatus): void {
    if (this.status === status) return;
    this.status = status;
    this.log.info('platform', `'${this.name}' status is now ${status}`);
    this.emit('status', status);
  }

  block(): void {
    if (this.status === 'INSTALLED') this.set('BLOCKED');
  }

  async mount(): Promise<void> {
    if (this.mounted) return;
    this.mounted = await this.driver.mount(this.ctx);
    this.set('MOUNTED');
  }

  /** Mount when needed, then run the init; STARTED once the init is exec'd. */
  start(): Promise<void> {
    // One start at a time; stop() waits for it so a container never comes up after being stopped.
    this.inflight ??= this.doStart().finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  private async doStart(): Promise<void> {
    if (this.running || this.stopping) return;
    this.failure = undefined;
    await this.mount();
    if (this.goal === 'MOUNTED') return;
    this.set('STARTING');
    let run: RunningInit;
    try {
      run = await this.driver.start(this.ctx, this.mounted!);
    } catch (err) {
      this.log.error('platform', `'${this.name}' could not be started: ${(err as Error).message}`);
      this.onExit({ code: null, signal: null }, (err as Error).message);
      return;
    }
    this.running = run;
    this.pid = run.pid;
    this.set('STARTED');
    void run.exited.then((info) => {
      if (this.running !== run) return;
      this.running = undefined;
      this.pid = undefined;
      this.onExit(info);
    });
  }

  /** The READY signal from inside the container; false when READY is not this container's goal. */
  signalReady(): boolean {
    if (this.goal !== 'READY') return false;
    if (this.status === 'STARTED') this.set('READY');
    return this.status === 'READY';
  }

  private onExit(info: ExitInfo, reason?: string): void {
    this.lastExit = info;
    if (this.stopping || this.userStopped) {
      this.set('STOPPED');
      return;
    }
    const how = reason ?? (info.signal ? `killed by ${info.signal}` : `exited with status ${info.code}`);
    const ar = this.ctx.spec.autoRecovery;
    const failed = reason !== undefined || info.signal !== null || info.code !== 0;
    const wants = ar.policy === 'always' || ar.policy === 'unless-stopped' || (ar.policy === 'on-failure' && failed);
    if (wants && this.retries < ar.maxRetries) {
      const delayS = ar.retryDelay * Math.pow(ar.backoffFactor, this.retries);
      this.retries++;
      this.log.warn('platform', `'${this.name}' ${how}; auto-recovery ${this.retries}/${ar.maxRetries} in ${delayS} s`);
      this.set('RECOVERING');
      this.recovery = setTimeout(() => {
        this.recovery = undefined;
        void this.start();
      }, delayS * 1000);
      return;
    }
    this.failure = how;
    this.log.error('platform', `'${this.name}' ${how}; ${wants ? 'auto-recovery retries exhausted' : 'no auto-recovery'}`);
    this.set('STOPPED');
    this.emit('failed', how);
  }

  /** Stop the init (SIGTERM, then SIGKILL after the grace); `user` marks a control-socket stop. */
  async stop(options: { user?: boolean; unmount?: boolean } = {}): Promise<void> {
    if (options.user) this.userStopped = true;
    if (this.recovery) {
      clearTimeout(this.recovery);
      this.recovery = undefined;
    }
    this.stopping = true;
    try {
      await this.inflight?.catch(() => undefined);
      const run = this.running;
      if (run) {
        this.set('STOPPING');
        this.running = undefined;
        this.pid = undefined;
        this.lastExit = await run.stop(this.options.stopGraceMs);
      }
      if (this.status !== 'INSTALLED') this.set('STOPPED');
      if (options.unmount && this.mounted) {
        const m = this.mounted;
        this.mounted = undefined;
        await m.unmount();
      }
    } finally {
      this.stopping = false;
    }
  }

  /** Control-socket start: clears the user stop and the retry counter. */
  async userStart(): Promise<void> {
    this.userStopped = false;
    this.retries = 0;
    await this.start();
  }
}
