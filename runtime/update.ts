/**
 * Local updates through the control socket, following PV:update/update.c: a state is received
 * (PUT /steps/locals/<name>: parsed and signature-checked, 422 + WONTGO when it fails), its objects arrive
 * (PUT /objects/<sha>, refused unless the bytes hash to the name), and LOCAL_RUN runs it: QUEUED (retries
 * counted) → DOWNLOADING while objects are missing → INPROGRESS → either a reboot into a try (pv_try) or an
 * in-place transition of the affected containers. Trying, testing and committing happen in runtime.ts.
 */
import { statfs } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { InvalidInputError, PvError } from '../src/errors.ts';
import { parseJson, isJsonObject } from '../src/revision/canonical-json.ts';
import { diffStates } from '../src/revision/diff.ts';
import type { SecurebootMode, TrustOptions } from '../src/revision/signature.ts';
import { objectRefs, type State } from '../src/revision/state.ts';
import type { RuntimeLog } from './log.ts';
import { planRevision } from './platforms.ts';
import { progress, type Downloads } from './progress.ts';
import { checkSignatures } from './signatures.ts';
import { checkRevisionName, type Storage } from './storage.ts';

export interface UpdateHost {
  storage: Storage;
  log: RuntimeLog;
  secureboot: SecurebootMode;
  trust?: TrustOptions;
  /** PV_REVISION_RETRIES. */
  maxRetries: number;
  current(): { rev: string; state: State } | undefined;
  /** End the runtime asking for a reboot (pv_try already set). */
  reboot(reason: string): void;
  /** Switch to `rev` without rebooting, restarting only `restart` (and removed/added containers). */
  transition(rev: string, state: State, restart: string[]): Promise<void>;
  /** Garbage collection (bytes reclaimed), run before an object that would not fit. */
  gc(): Promise<number>;
}

/** PV_STORAGE_GC_RESERVED: percentage of the storage kept free. */
const GC_RESERVED_PERCENT = 5;

export interface Answer {
  status: number;
  error?: string;
}

/** A LOCAL_RUN's download: objects still missing, bytes offered and received. */
type Download = Downloads & { rev: string; retries: number; missing: Set<string> };

export class Updater {
  /** A LOCAL_RUN waiting for its objects. */
  private waiting: string | undefined;
  private busy = false;
  /** The last step received, whose objects may still be arriving before its LOCAL_RUN. */
  private installed: string | undefined;
  /** The waiting LOCAL_RUN's download figures: objects still missing, bytes offered and received. */
  private download: Download | undefined;

  constructor(private readonly h: UpdateHost) {}

  /** POST /storage/gc. */
  gc(): Promise<number> {
    return this.h.gc();
  }

  /** The revision a LOCAL_RUN is downloading objects for, else the step installed last: GC keeps it. */
  get pendingRevision(): string | undefined {
    return this.waiting ?? this.installed;
  }

  get inProgress(): boolean {
    return this.busy || this.waiting !== undefined;
  }

  /** PUT /steps/locals/<name>. */
  async installStep(rev: string, bytes: Buffer): Promise<Answer> {
    try {
      checkRevisionName(rev);
    } catch (err) {
      return { status: 400, error: (err as Error).message };
    }
    if (!rev.startsWith('locals/')) return { status: 400, error: 'only locals/<name> revisions can be installed through the control socket' };
    if (rev === this.h.current()?.rev) return { status: 409, error: `revision ${rev} is running` };
    const { storage } = this.h;
    const retries = (await storage.readProgress(rev))?.retries ?? 0;
    const refuse = async (msg: string, detail: string): Promise<Answer> => {
      this.h.log.error('update', `step ${rev} refused: ${msg}: ${detail}`);
      await storage.removeState(rev);
      await storage.writeProgress(rev, { ...progress.wontgo(msg, retries), logs: detail });
      return { status: 422, error: `${msg}: ${detail}` };
    };
    let text: string;
    let state: State;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      const v = parseJson(text);
      if (!isJsonObject(v)) throw new Error('the state is not a JSON object');
      state = v;
    } catch (err) {
      return refuse('State JSON has bad format', (err as Error).message);
    }
    if (this.h.secureboot !== 'disabled') {
      const verdict = checkSignatures(text, this.h.secureboot, this.h.trust);
      if (!verdict.ok) return refuse(verdict.statusMsg!, verdict.detail!);
    }
    try {
      planRevision(state);
    } catch (err) {
      return refuse('State JSON has bad format', (err as Error).message);
    }
    await storage.writeState(rev, text);
    await storage.writeProgress(rev, progress.ready(retries));
    this.installed = rev;
    this.h.log.info('update', `step ${rev} installed`);
    return { status: 200 };
  }

  /** PUT /objects/<sha>: stored only when the bytes hash to the name; GC first when `size` would not fit. */
  async putObject(sha: string, data: Readable, size?: number): Promise<Answer> {
    if (size !== undefined && !(await this.h.storage.objects.has(sha)) && !(await this.fits(size))) {
      const reclaimed = await this.h.gc();
      this.h.log.info('update', `object ${sha} (${size} bytes) did not fit: garbage collection reclaimed ${reclaimed} bytes`);
      if (!(await this.fits(size))) {
        data.resume();
        return { status: 507, error: `Not enough space for object ${sha} (${size} bytes) even after garbage collection` };
      }
    }
    const dl = this.download?.missing.has(sha) ? this.download : undefined;
    if (dl && size !== undefined) {
      dl.totalSize += size;
      await this.writeDownloading(dl);
    }
    try {
      await this.h.storage.beforeDurable?.(`object ${sha}`, () => this.h.storage.tearObject(data, size));
      await this.h.storage.objects.putExpected(sha, data);
      this.h.storage.onDurable?.(`object ${sha}`);
    } catch (err) {
      if (dl && size !== undefined) {
        dl.totalSize -= size;
        await this.writeDownloading(dl);
      }
      if (err instanceof InvalidInputError) return { status: 422, error: `Object has bad checksum: ${err.message}` };
      throw err;
    }
    if (dl && dl.missing.delete(sha)) {
      const got = (await this.h.storage.objects.size(sha)) ?? 0;
      if (size === undefined) dl.totalSize += got;
      dl.downloaded += got;
      if (dl.missing.size) await this.writeDownloading(dl);
    }
    if (this.waiting && (await this.missing(this.waiting)).length === 0) {
      const rev = this.waiting;
      this.waiting = undefined;
      this.download = undefined;
      void this.proceed(rev).catch((err) => this.h.log.error('update', `${rev}: ${(err as Error).message}`));
    }
    return { status: 200 };
  }

  private async fits(size: number): Promise<boolean> {
    const fs = await statfs(this.h.storage.root);
    return size <= fs.bavail * fs.bsize - (fs.blocks * fs.bsize * GC_RESERVED_PERCENT) / 100;
  }

  private async writeDownloading(dl: Download): Promise<void> {
    await this.h.storage.writeProgress(dl.rev, progress.downloading(dl.retries, this.h.maxRetries, dl));
  }

  private async stateOf(rev: string): Promise<State> {
    const v = parseJson(await this.h.storage.readStateText(rev), this.h.storage.statePath(rev));
    if (!isJsonObject(v)) throw new InvalidInputError('state-format', 'State JSON has bad format');
    return v;
  }

  private async missing(rev: string): Promise<string[]> {
    const out: string[] = [];
    for (const sha of objectRefs(await this.stateOf(rev)).keys()) if (!(await this.h.storage.objects.has(sha))) out.push(sha);
    return out;
  }

  /** POST /commands LOCAL_RUN. */
  async run(rev: string): Promise<Answer> {
    const { storage } = this.h;
    if (!(await storage.listRevisions()).includes(rev)) return { status: 404, error: 'Step not found' };
    if (rev === this.h.current()?.rev) return { status: 409, error: `revision ${rev} is already running` };
    if (this.inProgress) return { status: 503, error: 'an update is ongoing' };
    const retries = ((await storage.readProgress(rev))?.retries ?? 0) + 1;
    if (retries > this.h.maxRetries) {
      await storage.writeProgress(rev, progress.wontgo('Max update processing retries reached', retries));
      return { status: 200 };
    }
    await storage.writeProgress(rev, progress.queued(retries, this.h.maxRetries));
    const missing = await this.missing(rev);
    if (missing.length) {
      this.h.log.info('update', `${rev}: waiting for ${missing.length} objects`);
      this.download = { rev, retries, missing: new Set(missing), totalSize: 0, downloaded: 0, startTime: Math.floor(Date.now() / 1000) };
      await this.writeDownloading(this.download);
      this.waiting = rev;
      return { status: 200 };
    }
    void this.proceed(rev).catch((err) => this.h.log.error('update', `${rev}: ${(err as Error).message}`));
    return { status: 200 };
  }

  private async proceed(rev: string): Promise<void> {
    const { storage } = this.h;
    this.busy = true;
    const retries = (await storage.readProgress(rev))?.retries ?? 0;
    try {
      const state = await this.stateOf(rev);
      await storage.linkTrail(rev, state);
      await storage.writeProgress(rev, progress.applied(retries));
      const cur = this.h.current();
      const diff = cur ? await diffStates(cur.state, state, (sha) => storage.objects.size(sha)) : undefined;
      if (!diff || diff.reboot) {
        this.h.log.info('update', `${rev}: reboot update${diff ? ` (${diff.rebootReasons[0]?.key}: ${diff.rebootReasons[0]?.reason})` : ''}`);
        const env = await storage.readBootEnv();
        await storage.writeBootEnv({ pv_rev: env.pv_rev, pv_try: rev });
        await storage.writeProgress(rev, progress.rebooting(retries));
        this.h.reboot(`update to ${rev}`);
        return;
      }
      this.h.log.info('update', `${rev}: in-place update restarting ${diff.restartContainers.join(', ') || 'nothing'}`);
      await storage.writeProgress(rev, progress.transitioning(retries));
      await this.h.transition(rev, state, diff.restartContainers);
    } catch (err) {
      const msg = err instanceof PvError ? err.message : `Internal error: ${(err as Error).message}`;
      await storage.writeProgress(rev, progress.error(msg.startsWith('revision') ? 'Internal error' : msg, retries)).catch(() => undefined);
      throw err;
    } finally {
      this.busy = false;
    }
  }
}
