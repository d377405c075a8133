/**
 * The revision exchange tarball, as `pvr export` writes it (pantacor/pvr libpvr/repolib.go `Export`):
 * `json` first (the canonical state, so a reader can check it before any object), then `objects/<sha>`
 * for every object the state references; no directory entries; gzip when the name ends `.tgz`/`.gz`.
 * Both directions stream; objects are hashed on the way through and nothing is left behind on failure.
 */
import { Sha256Meter } from '../crypto/sha256-stream.ts';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { EnvironmentError, InvalidInputError, fromSystemError } from '../errors.ts';
import { fsyncDir, publishTemp, tempPathFor, writeFileAtomically } from '../fs/atomic.ts';
import { canonicalize, isJsonObject, parseJson } from './canonical-json.ts';
import { initRepo, type PvrRepo } from './pvr-repo.ts';
import { objectRefs, type State } from './state.ts';
import { tarStream, type TarMember } from '../fs/tar/stream.ts';
import { END_OF_ARCHIVE, fileHeader, padding } from './tar.ts';

/** The state JSON is read whole; a bigger one is not a revision. */
const MAX_STATE_JSON = 64 * 1024 * 1024;

export function isGzipName(file: string): boolean {
  const f = file.toLowerCase();
  return f.endsWith('.tgz') || f.endsWith('.gz');
}

export interface ExportResult {
  objects: number;
  bytes: number;
}

/** Write `repo` as an export tarball at `outFile` (temp file, fsync, rename). */
export async function exportRepo(repo: PvrRepo, outFile: string): Promise<ExportResult> {
  const state = await repo.readState();
  const json = Buffer.from(canonicalize(state), 'utf8');
  const shas = [...objectRefs(state).keys()].sort();
  for (const sha of shas) {
    if (!(await repo.objects.has(sha))) {
      throw new InvalidInputError('object-missing', `object ${sha} (${objectRefs(state).get(sha)![0]}) is missing from the repository; cannot export`, { file: repo.objects.path(sha) });
    }
  }
  let bytes = 0;
  async function* members(): AsyncGenerator<Buffer> {
    yield fileHeader('json', json.length);
    yield json;
    yield padding(json.length);
    for (const sha of shas) {
      const path = repo.objects.path(sha);
      const size = (await stat(path)).size;
      yield fileHeader(`objects/${sha}`, size);
      const meter = new Sha256Meter();
      yield* meter.through(createReadStream(path, { highWaterMark: 1 << 20 }));
      // The object changed under us (or was corrupt): an export must never carry a wrong object.
      if (meter.size !== size || meter.digest() !== sha) {
        throw new InvalidInputError('object-hash', `object ${sha} does not hash to its name (corrupted); restore it before exporting`, { file: path });
      }
      bytes += size;
      yield padding(size);
    }
    yield END_OF_ARCHIVE;
  }
  const tmp = tempPathFor(outFile);
  try {
    const stages: NodeJS.ReadWriteStream[] = isGzipName(outFile) ? [createGzip()] : [];
    await pipeline([Readable.from(members()), ...stages, createWriteStream(tmp, { mode: 0o644, highWaterMark: 1 << 20 })]);
    await publishTemp(tmp, outFile);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err instanceof InvalidInputError ? err : fromSystemError(err, outFile);
  }
  return { objects: shas.length, bytes };
}

/** Member names the exchange format allows; `./` prefixes (GNU tar of a directory) are tolerated. */
function memberKind(name: string): { kind: 'json' } | { kind: 'object'; sha: string } | { kind: 'dir' } | undefined {
  const n = name.startsWith('./') ? name.slice(2) : name;
  if (n === 'json') return { kind: 'json' };
  if (n === 'objects/' || n === 'objects') return { kind: 'dir' };
  const m = /^objects\/([0-9a-f]{64})$/.exec(n);
  return m ? { kind: 'object', sha: m[1]! } : undefined;
}

/**
 * What a member of an export is, refusing anything else: a name other than json and objects/<sha256>, a
 * json or object that is not a plain regular file (links, devices, sparse files), an objects/ that is not
 * a directory.
 */
function exportMember(m: TarMember, file: string): { kind: 'json' } | { kind: 'object'; sha: string } | { kind: 'dir' } {
  const kind = memberKind(m.path);
  if (kind === undefined) throw new InvalidInputError('tar-member', `unexpected member '${m.path}': an export holds only json and objects/<sha256>`, { file });
  if (kind.kind === 'dir') {
    if (m.type !== 'dir') throw new InvalidInputError('tar-member', `member '${m.path}' must be a directory`, { file });
  } else if (m.type !== 'file' || m.sparse) {
    throw new InvalidInputError('tar-member', `member '${m.path}' is not a regular file (${m.sparse ? 'sparse' : m.type})`, { file });
  }
  return kind;
}

/** The json member's bytes, bounded before any is read. */
async function readState(m: TarMember, body: AsyncIterable<Buffer>, file: string): Promise<Buffer> {
  if (m.size > MAX_STATE_JSON) throw new InvalidInputError('state-format', `json member of ${m.size} bytes is too large`, { file });
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c);
  return Buffer.concat(chunks);
}

async function* gunzipIfNeeded(file: string): AsyncGenerator<Buffer> {
  const h = await open(file, 'r');
  const head = Buffer.alloc(2);
  try {
    await h.read(head, 0, 2, 0);
  } finally {
    await h.close();
  }
  // By content, not by name: pvtx accepts both plain and gzip tarballs.
  const gz = head[0] === 0x1f && head[1] === 0x8b;
  const src = createReadStream(file, { highWaterMark: 1 << 20 });
  if (!gz) {
    yield* src as AsyncIterable<Buffer>;
    return;
  }
  const gunzip = createGunzip();
  src.on('error', (err) => gunzip.destroy(err));
  try {
    yield* src.pipe(gunzip) as AsyncIterable<Buffer>;
  } catch (err) {
    // zlib reports corrupt or truncated input with its own codes: that is invalid input, not an I/O failure.
    if ((err as NodeJS.ErrnoException).code?.startsWith('Z_')) {
      throw new InvalidInputError('gzip', `corrupt gzip data (${(err as Error).message}); the tarball is damaged`, { file });
    }
    throw err;
  } finally {
    src.destroy();
  }
}

export interface ImportResult {
  dir: string;
  state: State;
  objects: number;
  bytes: number;
}

/**
 * Import an export tarball into a new repository at `outDir` (which must not exist). Refuses any member
 * other than `json` and `objects/<sha>`, a path outside, a wrong hash, an object the state does not name
 * and a referenced object that is absent. The repository appears only when everything checked out.
 */
export async function importTarball(file: string, outDir: string): Promise<ImportResult> {
  await stat(file).catch((err: unknown) => {
    throw fromSystemError(err, file);
  });
  const exists = await stat(outDir).then(
    () => true,
    () => false,
  );
  if (exists) throw new EnvironmentError('exists', 'output directory already exists; choose a new path', { file: outDir });
  await mkdir(dirname(outDir), { recursive: true }).catch((err: unknown) => {
    throw fromSystemError(err, dirname(outDir));
  });
  const tmpDir = join(dirname(outDir), `.${basename(outDir)}.import-${process.pid}-${Date.now().toString(36)}`);
  try {
    const repo = await initRepo(tmpDir);
    let state: State | undefined;
    let stateBytes: Buffer = Buffer.alloc(0);
    const seen = new Set<string>();
    let bytes = 0;
    const name = (n: string): string => `${file}: member '${n}'`;
    for await (const { member, body } of tarStream(gunzipIfNeeded(file), file)) {
      const kind = exportMember(member, file);
      if (kind.kind === 'dir') continue;
      if (kind.kind === 'json') {
        if (state) throw new InvalidInputError('tar-member', 'the archive holds json twice', { file });
        stateBytes = await readState(member, body(), file);
        const value = parseJson(stateBytes, name('json'));
        if (!isJsonObject(value)) throw new InvalidInputError('state-format', 'json member is not a JSON object', { file });
        state = value;
        continue;
      }
      if (seen.has(kind.sha)) throw new InvalidInputError('tar-member', `object ${kind.sha} appears twice`, { file });
      seen.add(kind.sha);
      const r = await repo.objects.putExpected(kind.sha, Readable.from(body()), name(member.path));
      bytes += r.size;
    }
    if (!state) throw new InvalidInputError('tar-member', 'the archive holds no json member (the state)', { file });
    const refs = objectRefs(state);
    for (const sha of seen) {
      if (!refs.has(sha)) throw new InvalidInputError('tar-member', `object ${sha} is not referenced by the state`, { file });
    }
    const missing = [...refs.keys()].filter((s) => !seen.has(s));
    if (missing.length) {
      throw new InvalidInputError('object-missing', `${missing.length} object(s) the state references are not in the archive, e.g. ${missing[0]} (${refs.get(missing[0]!)![0]})`, { file });
    }
    // Kept byte for byte as received (as pvr does), so validate still sees a non-canonical state for what it is.
    await writeFileAtomically(repo.statePath, stateBytes);
    await rename(tmpDir, outDir);
    await fsyncDir(dirname(outDir));
    return { dir: outDir, state, objects: seen.size, bytes };
  } catch (err) {
    await rm(tmpDir, { recursive: true, force: true });
    throw err;
  }
}

export interface ExportIndex {
  state: State;
  /** Object sizes as the archive's headers give them (contents not read, so not verified). */
  sizes: Map<string, number>;
}

/**
 * The state and object sizes of an export tarball in one pass that skips object contents: enough for a
 * diff, without copying gigabytes into a temporary repository. Member names are held to the same rules.
 */
export async function readExportIndex(file: string): Promise<ExportIndex> {
  let state: State | undefined;
  const sizes = new Map<string, number>();
  for await (const { member, body } of tarStream(gunzipIfNeeded(file), file)) {
    const kind = exportMember(member, file);
    if (kind.kind === 'object') sizes.set(kind.sha, member.size);
    if (kind.kind !== 'json') continue;
    if (state) throw new InvalidInputError('tar-member', 'the archive holds json twice', { file });
    const value = parseJson(await readState(member, body(), file), `${file}: member 'json'`);
    if (!isJsonObject(value)) throw new InvalidInputError('state-format', 'json member is not a JSON object', { file });
    state = value;
  }
  if (!state) throw new InvalidInputError('tar-member', 'the archive holds no json member (the state)', { file });
  return { state, sizes };
}
