/**
 * A pvr-compatible repository (pantacor/pvr libpvr/repolib.go): `.pvr/json` (the pristine state, canonical),
 * `.pvr/objects/<sha>` (or the `ObjectsDir` named in `.pvr/config`), working tree files named like keys.
 */
import { link, lstat, mkdir, opendir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { EnvironmentError, InvalidInputError, fromSystemError } from '../errors.ts';
import { publishTemp, tempPathFor, writeFileAtomically, writeHashed } from '../fs/atomic.ts';
import { canonicalize, isJsonObject, newJsonObject, parseJson, compareCodePoints, type JsonValue } from './canonical-json.ts';
import { ObjectStore, type PutResult } from './object-store.ts';
import { SYSTEM_SPEC, isSha256, keyProblem, type State } from './state.ts';

/** Inline JSON files are read whole; anything bigger is surely not configuration. */
const MAX_INLINE_JSON = 16 * 1024 * 1024;
/** The state is read whole too; real ones are kilobytes. */
const MAX_STATE_JSON = 64 * 1024 * 1024;

export interface InitOptions {
  /** Keep objects elsewhere (pvr init --objects); recorded in `.pvr/config`. */
  objectsDir?: string;
  /** Initial state (default: the empty service-system state). */
  state?: State;
}

export interface CheckoutOptions {
  /** Hard-link objects into the tree (pvr's hardlink reset, the device trail layout) instead of copying. */
  hardlink?: boolean;
}

export class PvrRepo {
  readonly pvrDir: string;

  constructor(
    readonly dir: string,
    readonly objects: ObjectStore,
  ) {
    this.pvrDir = join(dir, '.pvr');
  }

  get statePath(): string {
    return join(this.pvrDir, 'json');
  }

  /** The stored state bytes exactly as on disk (signature checks and canonical-form checks need them). */
  async readStateBytes(): Promise<Buffer> {
    try {
      const size = (await stat(this.statePath)).size;
      if (size > MAX_STATE_JSON) throw new InvalidInputError('state-format', `a ${size}-byte state is too large (limit ${MAX_STATE_JSON})`, { file: this.statePath });
      return await readFile(this.statePath);
    } catch (err) {
      throw fromSystemError(err, this.statePath);
    }
  }

  async readState(): Promise<State> {
    const value = parseJson(await this.readStateBytes(), this.statePath);
    if (!isJsonObject(value)) throw new InvalidInputError('state-format', 'the state must be a JSON object', { file: this.statePath });
    return value;
  }

  /** Store a state as canonical JSON (so pvr's and Pantavisor's signature payload rules agree). */
  async writeState(state: State): Promise<void> {
    await writeFileAtomically(this.statePath, canonicalize(state));
  }

  putObject(data: Readable): Promise<PutResult> {
    return this.objects.put(data);
  }

  /**
   * Turn the files under `tree` (default: the repo's own working tree) into a state: `*.json` files inline
   * (unless the current state keeps that key as a raw object), every other file an object. Writes the
   * objects and `.pvr/json`; returns the new state.
   */
  async commitTree(tree: string = this.dir): Promise<State> {
    const previous = await this.readState().catch((err: { code?: string }) => {
      if (err.code === 'not-found') return newJsonObject();
      throw err;
    });
    const state = newJsonObject();
    state['#spec'] = typeof previous['#spec'] === 'string' ? previous['#spec'] : SYSTEM_SPEC;
    for await (const { key, path } of walkTree(tree)) {
      if (key === '#spec') continue;
      const problem = keyProblem(key);
      if (problem) throw new InvalidInputError('key', `file name cannot be a state key: ${problem}`, { file: path });
      if (key.endsWith('.json') && !isSha256(previous[key])) state[key] = await readInlineJson(path);
      else state[key] = (await this.objects.putFile(path)).sha256;
    }
    await this.writeState(state);
    return state;
  }

  /**
   * Write the state into the working tree (or `target`): objects re-verified while copied (a wrong hash
   * aborts and leaves no partial file), inline JSON written canonical.
   */
  async checkout(target: string = this.dir, options: CheckoutOptions = {}): Promise<void> {
    const state = await this.readState();
    const root = resolve(target);
    for (const key of Object.keys(state).sort(compareCodePoints)) {
      if (key === '#spec') continue;
      const problem = keyProblem(key);
      if (problem) throw new InvalidInputError('key', `cannot check out key '${key}': ${problem}`, { file: this.statePath });
      const path = join(root, ...key.split('/'));
      if (!path.startsWith(root + sep) || key.split('/')[0] === '.pvr') {
        throw new InvalidInputError('key', `key '${key}' would be written outside the working tree`, { file: this.statePath });
      }
      await mkdir(dirname(path), { recursive: true });
      const value = state[key] as JsonValue;
      if (isSha256(value)) await this.checkoutObject(value, path, options.hardlink ?? false);
      else await writeFileAtomically(path, canonicalize(value));
    }
  }

  private async checkoutObject(sha: string, path: string, hardlink: boolean): Promise<void> {
    if (hardlink) {
      const v = await this.objects.verify(sha);
      if (v.status !== 'ok') throw objectError(sha, v.status, this.objects.path(sha));
      const tmp = tempPathFor(path);
      await link(this.objects.path(sha), tmp);
      await rename(tmp, path);
      return;
    }
    const tmp = tempPathFor(path);
    try {
      const { sha256 } = await writeHashed(tmp, this.objects.open(sha));
      if (sha256 !== sha) throw objectError(sha, 'mismatch', this.objects.path(sha));
      await publishTemp(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw objectError(sha, 'missing', this.objects.path(sha));
      throw err;
    }
  }
}

function objectError(sha: string, status: 'missing' | 'mismatch', file: string): InvalidInputError {
  return status === 'missing'
    ? new InvalidInputError('object-missing', `object ${sha} is not in the object store; import or copy it first`, { file })
    : new InvalidInputError('object-hash', `object ${sha} does not hash to its name (corrupted); restore it from a good copy`, { file });
}

async function readInlineJson(path: string): Promise<JsonValue> {
  const size = (await stat(path)).size;
  if (size > MAX_INLINE_JSON) throw new InvalidInputError('inline-json', `a ${size}-byte .json file is too large to inline (limit ${MAX_INLINE_JSON})`, { file: path });
  const value = parseJson(await readFile(path), path);
  if (!isJsonObject(value) && !Array.isArray(value)) {
    throw new InvalidInputError('inline-json', 'inline .json files must hold an object or an array', { file: path });
  }
  return value;
}

/** Regular files under `root` as state keys, in sorted order; `.pvr/` and `.pv/` are pvr's own. */
async function* walkTree(root: string, rel = ''): AsyncGenerator<{ key: string; path: string }> {
  const dir = rel ? join(root, rel) : root;
  let names: { name: string; kind: 'file' | 'dir' | 'other' }[] = [];
  try {
    for await (const d of await opendir(dir)) {
      names.push({ name: d.name, kind: d.isFile() ? 'file' : d.isDirectory() ? 'dir' : 'other' });
    }
  } catch (err) {
    throw fromSystemError(err, dir);
  }
  names = names.sort((a, b) => compareCodePoints(a.name, b.name));
  for (const { name, kind } of names) {
    const key = rel ? `${rel}/${name}` : name;
    if (!rel && (name === '.pvr' || name === '.pv')) continue;
    const path = join(root, key);
    if (kind === 'dir') yield* walkTree(root, key);
    else if (kind === 'file') yield { key, path };
    else throw new InvalidInputError('tree-entry', 'only regular files and directories can be committed (symlink or special file)', { file: path });
  }
}

/** Open an existing repo: `.pvr/json` must exist; `.pvr/config` ObjectsDir honoured as pvr does. */
export async function openRepo(dir: string): Promise<PvrRepo> {
  const pvrDir = join(dir, '.pvr');
  try {
    const st = await stat(join(pvrDir, 'json'));
    if (!st.isFile()) throw new InvalidInputError('repo', '.pvr/json is not a file', { file: dir });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new EnvironmentError('not-a-repo', 'not a pvr repository (no .pvr/json); create one with pvmigrate import or a converter', { file: dir });
    }
    throw fromSystemError(err, dir);
  }
  let objectsDir = join(pvrDir, 'objects');
  const configPath = join(pvrDir, 'config');
  const config = await readFile(configPath).then(
    (b) => parseJson(b, configPath),
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw fromSystemError(err, configPath);
    },
  );
  if (isJsonObject(config) && typeof config.ObjectsDir === 'string' && config.ObjectsDir !== '') {
    // pvr: a relative ObjectsDir is relative to the repo directory.
    objectsDir = isAbsolute(config.ObjectsDir) ? config.ObjectsDir : join(dir, config.ObjectsDir);
  }
  return new PvrRepo(dir, new ObjectStore(objectsDir));
}

/** `pvr init`: refuses an existing `.pvr`; writes `.pvr/json`, `.pvr/config` and the objects directory. */
export async function initRepo(dir: string, options: InitOptions = {}): Promise<PvrRepo> {
  const pvrDir = join(dir, '.pvr');
  const exists = await lstat(pvrDir).then(
    () => true,
    () => false,
  );
  if (exists) throw new EnvironmentError('repo-exists', 'a .pvr directory already exists here; cannot initialise an existing repository', { file: dir });
  await mkdir(pvrDir, { recursive: true });
  const objectsDir = options.objectsDir ? resolve(options.objectsDir) : join(pvrDir, 'objects');
  await mkdir(objectsDir, { recursive: true });
  const config = newJsonObject();
  if (options.objectsDir) config.ObjectsDir = objectsDir;
  await writeFileAtomically(join(pvrDir, 'config'), canonicalize(config));
  const repo = new PvrRepo(dir, new ObjectStore(objectsDir));
  const empty = newJsonObject();
  empty['#spec'] = SYSTEM_SPEC;
  await repo.writeState(options.state ?? empty);
  return repo;
}
