/**
 * The device's storage directory, laid out as Pantavisor's /storage (PV:paths.c, PV:storage.c):
 *
 *   objects/<sha>                  content-addressed objects
 *   trails/<rev>/.pvr/json         the revision's state (canonical JSON, stored verbatim)
 *   trails/<rev>/.pvr/config       {"ObjectsDir": …}
 *   trails/<rev>/.pv/progress      progress JSON; .pv/done marks a committed revision
 *   trails/<rev>/<key>             hard link to objects/<sha>, or the inline JSON written out
 *   disks/perm/<c>/…, disks/rev/<rev>/<c>/…, logs/<rev>/<c>/…
 *   boot/uboot.txt                 boot environment: pv_rev, pv_try, pv_trying
 *
 * Revisions are "0" (factory), integers (remote) or "locals/<name>". Every write is durable and atomic
 * (temp → fsync → rename → fsync dir), so a power cut leaves either the old or the new file.
 */
import { link, mkdir, readFile, readdir, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { fsyncDir, tempPathFor, writeFileAtomically } from '../src/fs/atomic.ts';
import { EnvironmentError, InvalidInputError, fromSystemError } from '../src/errors.ts';
import { canonicalize } from '../src/revision/canonical-json.ts';
import { ObjectStore } from '../src/revision/object-store.ts';
import { isSha256, type State } from '../src/revision/state.ts';

/** Pantavisor's revision names: integers, or locals/<name> with name ≤ 64 chars and no '/'. */
export function checkRevisionName(rev: string): string {
  if (/^(0|[1-9][0-9]{0,18})$/.test(rev)) return rev;
  const m = /^locals\/([^/]{1,64})$/.exec(rev);
  if (m && m[1] !== '.' && m[1] !== '..') return rev;
  throw new InvalidInputError('bad-revision', `revision name '${rev}' is neither an integer nor locals/<name> (name ≤ 64 chars, no '/'); pick another name`);
}

export interface BootEnv {
  pv_rev: string;
  pv_try?: string;
  /** Bootloader-side marker: set when a try boot starts; equal to pv_try on the next boot means the try failed. */
  pv_trying?: string;
}

/** Progress JSON as Pantavisor keeps it in .pv/progress (reference §8). */
export interface Progress {
  status: string;
  'status-msg': string;
  progress: number;
  retries?: number;
  logs?: string;
  [k: string]: unknown;
}

/** uboot.txt is a 1024-byte area of NUL-separated key=value records ended by an empty record. */
const BOOT_ENV_SIZE = 1024;

export function encodeBootEnv(env: BootEnv): Buffer {
  const parts = Object.entries(env)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${v}\0`)
    .join('');
  const body = Buffer.from(parts + '\0');
  if (body.length > BOOT_ENV_SIZE) throw new InvalidInputError('boot-env', 'boot environment exceeds 1024 bytes');
  return Buffer.concat([body, Buffer.alloc(BOOT_ENV_SIZE - body.length)]);
}

export function decodeBootEnv(buf: Buffer, file?: string): BootEnv {
  const env: Record<string, string> = {};
  let pos = 0;
  while (pos < buf.length) {
    const end = buf.indexOf(0, pos);
    if (end < 0) throw new InvalidInputError('boot-env', 'boot environment record not NUL-terminated; restore it with pvmigrate deploy', { file });
    if (end === pos) break;
    const rec = buf.subarray(pos, end).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) env[rec.slice(0, eq)] = rec.slice(eq + 1);
    pos = end + 1;
  }
  if (env.pv_rev === undefined) throw new InvalidInputError('boot-env', 'boot environment has no pv_rev; redeploy a factory revision', { file });
  return { pv_rev: env.pv_rev, pv_try: env.pv_try || undefined, pv_trying: env.pv_trying || undefined };
}

export class Storage {
  readonly root: string;
  /** objects/<sha>: the revision core's store (hashed puts, no-clobber publish keeps trail links valid). */
  readonly objects: ObjectStore;
  /**
   * Called after every durable write with what was written (fault injection for the power-loss tests:
   * `pvmigrate run` kills itself after the N-th step when PV_CRASH_AFTER=N).
   */
  onDurable: ((what: string) => void) | undefined;
  /**
   * Called before every durable write with what is about to be written and `tear`, which performs the
   * first half of that write only (half of the temp file, nothing fsynced or renamed; for a link, the
   * unlink without the link). Fault injection for torn writes: PV_CRASH_MODE=torn kills after tearing.
   */
  beforeDurable: ((what: string, tear: () => Promise<void>) => Promise<void>) | undefined;
  constructor(root: string) {
    this.root = root;
    this.objects = new ObjectStore(join(root, 'objects'));
  }

  get objectsDir(): string {
    return this.objects.dir;
  }
  trailDir(rev: string): string {
    return join(this.root, 'trails', checkRevisionName(rev));
  }
  statePath(rev: string): string {
    return join(this.trailDir(rev), '.pvr', 'json');
  }
  progressPath(rev: string): string {
    return join(this.trailDir(rev), '.pv', 'progress');
  }
  donePath(rev: string): string {
    return join(this.trailDir(rev), '.pv', 'done');
  }
  logsDir(rev: string, container?: string): string {
    const d = join(this.root, 'logs', checkRevisionName(rev));
    return container ? join(d, container) : d;
  }
  permDisk(container: string): string {
    return join(this.root, 'disks', 'perm', container);
  }
  revDisk(rev: string, container: string): string {
    return join(this.root, 'disks', 'rev', checkRevisionName(rev), container);
  }
  get bootEnvPath(): string {
    return join(this.root, 'boot', 'uboot.txt');
  }

  /** A durable write of `content` to `path`, announced to the fault-injection hooks as step `what`. */
  private async durableWrite(path: string, content: string | Buffer, what: string): Promise<void> {
    await this.beforeDurable?.(what, () => tearFile(path, content));
    await writeFileAtomically(path, content);
    this.onDurable?.(what);
  }

  async readBootEnv(): Promise<BootEnv> {
    let buf: Buffer;
    try {
      buf = await readFile(this.bootEnvPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new EnvironmentError('no-boot-env', `no boot environment in ${this.root}; install a revision first with pvmigrate deploy`, { file: this.bootEnvPath });
      }
      throw fromSystemError(err, this.bootEnvPath);
    }
    return decodeBootEnv(buf, this.bootEnvPath);
  }

  async writeBootEnv(env: BootEnv): Promise<void> {
    await mkdir(dirname(this.bootEnvPath), { recursive: true });
    await this.durableWrite(this.bootEnvPath, encodeBootEnv(env), `boot env ${JSON.stringify(env)}`);
  }

  async readStateText(rev: string): Promise<string> {
    try {
      return await readFile(this.statePath(rev), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new InvalidInputError('no-state', `revision ${rev} has no state (State JSON not found)`, { file: this.statePath(rev) });
      throw fromSystemError(err, this.statePath(rev));
    }
  }

  /** Write the state verbatim (its signatures cover these exact bytes) plus .pvr/config. */
  async writeState(rev: string, stateText: string): Promise<void> {
    const dir = dirname(this.statePath(rev));
    await mkdir(dir, { recursive: true });
    await writeFileAtomically(join(dir, 'config'), JSON.stringify({ ObjectsDir: this.objectsDir }) + '\n');
    await this.durableWrite(this.statePath(rev), stateText, `state ${rev}`);
  }

  /**
   * Link every key of the state into the trail: objects as hard links, inline JSON written out.
   * Existing correct links are kept; returns the keys that had to be (re)linked.
   */
  async linkTrail(rev: string, state: State): Promise<string[]> {
    const trail = this.trailDir(rev);
    const relinked: string[] = [];
    for (const [key, value] of Object.entries(state)) {
      if (key === '#spec') continue;
      const target = safeJoin(trail, key);
      await mkdir(dirname(target), { recursive: true });
      if (isSha256(value)) {
        const obj = this.objects.path(value);
        const [a, b] = await Promise.all([stat(target).catch(() => undefined), stat(obj).catch(() => undefined)]);
        if (!b) throw new InvalidInputError('missing-object', `object ${value} of key '${key}' is not in storage (Object validation went wrong)`, { file: obj });
        if (a && a.ino === b.ino && a.dev === b.dev) continue;
        const what = `link ${rev}/${key}`;
        await this.beforeDurable?.(what, () => (a ? unlinkIfPresent(target) : Promise.resolve()));
        if (a) await unlinkIfPresent(target);
        await link(obj, target);
        // The link is a name in the trail directory: durable only once the directory is synced.
        await fsyncDir(dirname(target));
        this.onDurable?.(what);
        relinked.push(key);
      } else {
        const text = canonicalize(value);
        const cur = await readFile(target, 'utf8').catch(() => undefined);
        if (cur === text) continue;
        await this.durableWrite(target, text, `json ${rev}/${key}`);
        relinked.push(key);
      }
    }
    return relinked;
  }

  /** Drop a refused state (its progress stays, to say why). */
  async removeState(rev: string): Promise<void> {
    await unlink(this.statePath(rev)).catch(() => undefined);
  }

  async readProgress(rev: string): Promise<Progress | undefined> {
    try {
      return JSON.parse(await readFile(this.progressPath(rev), 'utf8')) as Progress;
    } catch {
      return undefined;
    }
  }

  async writeProgress(rev: string, progress: Progress): Promise<void> {
    await mkdir(dirname(this.progressPath(rev)), { recursive: true });
    await this.durableWrite(this.progressPath(rev), JSON.stringify(progress), `progress ${rev} ${progress.status}`);
  }

  async isDone(rev: string): Promise<boolean> {
    return stat(this.donePath(rev)).then(
      () => true,
      () => false,
    );
  }

  async markDone(rev: string): Promise<void> {
    await mkdir(dirname(this.donePath(rev)), { recursive: true });
    await this.durableWrite(this.donePath(rev), '', `done ${rev}`);
  }

  /**
   * The torn half of an object upload: the first half of its bytes (of `size`, or of the first chunk) in an
   * incoming temp file of the object store, never published.
   */
  async tearObject(data: Readable, size?: number): Promise<void> {
    const want = size ? size >> 1 : undefined;
    const chunks: Buffer[] = [];
    let got = 0;
    for await (const chunk of data as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      got += chunk.length;
      if (want === undefined || got >= want) break;
    }
    const head = Buffer.concat(chunks);
    await mkdir(this.objectsDir, { recursive: true });
    await writeFile(join(this.objectsDir, `.incoming-${process.pid}-torn`), head.subarray(0, want ?? head.length >> 1));
  }

  /** Every revision with a state: "0", "1", …, "locals/<name>". */
  async listRevisions(): Promise<string[]> {
    const trails = join(this.root, 'trails');
    const names = await readdir(trails).catch(() => [] as string[]);
    const revs: string[] = [];
    for (const n of names.sort()) {
      if (n === 'locals') {
        for (const l of (await readdir(join(trails, 'locals')).catch(() => [] as string[])).sort()) revs.push(`locals/${l}`);
      } else if (/^[0-9]+$/.test(n)) revs.push(n);
    }
    const has = await Promise.all(revs.map((r) => stat(this.statePath(r)).then(() => true, () => false)));
    return revs.filter((_, i) => has[i]);
  }
}

async function unlinkIfPresent(path: string): Promise<void> {
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

/** The torn half of a durable write: the temp file holds only the first half of its bytes, unsynced. */
async function tearFile(path: string, content: string | Buffer): Promise<void> {
  const bytes = Buffer.from(content);
  await writeFile(tempPathFor(path), bytes.subarray(0, bytes.length >> 1));
}

/** Join a state key under a directory, refusing keys that would escape it. */
export function safeJoin(dir: string, key: string): string {
  const parts = key.split('/');
  if (key.startsWith('/') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new InvalidInputError('bad-key', `state key '${key}' is not a clean relative path; the state is malformed`);
  }
  return join(dir, ...parts);
}
