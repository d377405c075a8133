import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { InvalidInputError } from '../errors.ts';
import { compareNames, type Entry, type FileTree } from '../fs/file-tree.ts';
import type { RandomAccessSource } from '../fs/source.ts';
import type { TarMember } from '../fs/tar/members.ts';
import { memberContent, openTar, scanTar } from '../fs/tar/reader.ts';

/** What a container needs from an image config (docker save config / OCI image config). */
export interface ImageConfig {
  entrypoint: string[];
  cmd: string[];
  env: string[];
  workdir: string | null;
  volumes: string[];
  platform: string;
}

export interface ImageArchive {
  kind: 'docker' | 'oci';
  /** Repo tag or OCI ref name, when the archive carries one. */
  ref: string | null;
  config: ImageConfig;
  /** The layers applied in order with whiteouts, as one tree. */
  open(): Promise<FileTree>;
}

const MAX_JSON = 4 * 1024 * 1024;
const MAX_LAYERS = 256;

async function readJson(src: RandomAccessSource, m: TarMember, what: string): Promise<unknown> {
  if (m.dataSize > MAX_JSON) throw new InvalidInputError('image-json', `${what} is ${m.dataSize} bytes; not plausible image metadata`, { file: src.name });
  const buf = await src.read(m.dataOffset, m.dataSize);
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw new InvalidInputError('image-json', `${what} is not JSON: ${(err as Error).message}`, { file: src.name });
  }
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : typeof v === 'string' ? [v] : [];
}

function configOf(doc: unknown): ImageConfig {
  const d = (doc ?? {}) as Record<string, unknown>;
  const c = ((d.config ?? d.Config ?? {}) as Record<string, unknown>) ?? {};
  return {
    entrypoint: strings(c.Entrypoint),
    cmd: strings(c.Cmd),
    env: strings(c.Env),
    workdir: typeof c.WorkingDir === 'string' && c.WorkingDir.startsWith('/') ? c.WorkingDir : null,
    volumes: Object.keys((c.Volumes ?? {}) as object).filter((v) => v.startsWith('/')).sort(),
    platform: `${typeof d.os === 'string' ? d.os : 'linux'}/${typeof d.architecture === 'string' ? d.architecture : 'unknown'}`,
  };
}

/** The members of a tar by normalised name ("./x" → "x"), when it looks like an image archive; undefined otherwise. */
async function membersOf(src: RandomAccessSource): Promise<Map<string, TarMember> | undefined> {
  const head = await src.read(0, Math.min(512, src.size));
  if (head.length < 263 || head.subarray(257, 262).toString('latin1') !== 'ustar') return undefined;
  const members = new Map<string, TarMember>();
  for await (const m of scanTar(src)) members.set(m.path.replace(/^\.\//, ''), m);
  return members.has('manifest.json') || members.has('oci-layout') ? members : undefined;
}

/** sha256 of a member, checked against its OCI digest before the content is trusted. */
async function checkDigest(src: RandomAccessSource, m: TarMember, digest: string): Promise<void> {
  const h = createHash('sha256');
  for await (const chunk of memberContent(src, m) as AsyncIterable<Buffer>) h.update(chunk);
  if (`sha256:${h.digest('hex')}` !== digest) throw new InvalidInputError('image-digest', `blob ${digest} does not match its content`, { file: src.name });
}

function need(members: Map<string, TarMember>, name: string, src: RandomAccessSource, what: string): TarMember {
  const m = members.get(name);
  if (!m || m.type !== 'file') throw new InvalidInputError('image-member', `${what} '${name}' is not in the archive`, { file: src.name });
  return m;
}

function blobName(digest: unknown, src: RandomAccessSource): string {
  if (typeof digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(digest)) throw new InvalidInputError('image-digest', `unsupported digest '${String(digest)}' (sha256 only)`, { file: src.name });
  return `blobs/sha256/${digest.slice(7)}`;
}

/**
 * A `docker save` archive (manifest.json) or an OCI image layout tar (oci-layout + index.json), by content.
 * Only the first image of the archive is taken. Layers are tars (gzip, xz or zstd allowed), applied in order.
 */
export async function openImageArchive(src: RandomAccessSource): Promise<ImageArchive | undefined> {
  const members = await membersOf(src);
  if (!members) return undefined;
  let layers: { member: TarMember; digest?: string }[];
  let config: ImageConfig;
  let ref: string | null = null;
  let kind: ImageArchive['kind'];
  if (members.has('manifest.json')) {
    kind = 'docker';
    const manifest = (await readJson(src, need(members, 'manifest.json', src, 'manifest'), 'manifest.json')) as Record<string, unknown>[];
    const first = Array.isArray(manifest) ? manifest[0] : undefined;
    if (!first || typeof first.Config !== 'string' || !Array.isArray(first.Layers)) {
      throw new InvalidInputError('image-json', 'manifest.json has no image with Config and Layers', { file: src.name });
    }
    config = configOf(await readJson(src, need(members, first.Config, src, 'image config'), first.Config));
    layers = strings(first.Layers).map((l) => ({ member: need(members, l, src, 'layer') }));
    ref = strings(first.RepoTags)[0] ?? null;
  } else {
    kind = 'oci';
    const index = (await readJson(src, need(members, 'index.json', src, 'index'), 'index.json')) as { manifests?: { digest?: string; mediaType?: string; annotations?: Record<string, string> }[] };
    let desc = index.manifests?.[0];
    let manifest: Record<string, unknown> = {};
    for (let depth = 0; depth < 4 && desc; depth++) {
      const m = need(members, blobName(desc.digest, src), src, 'manifest blob');
      await checkDigest(src, m, desc.digest!);
      manifest = (await readJson(src, m, desc.digest!)) as Record<string, unknown>;
      ref ??= desc.annotations?.['org.opencontainers.image.ref.name'] ?? null;
      const nested = manifest.manifests as typeof index.manifests;
      desc = Array.isArray(nested) ? nested[0] : undefined;
    }
    const cfgDesc = manifest.config as { digest?: string } | undefined;
    const cfg = need(members, blobName(cfgDesc?.digest, src), src, 'config blob');
    await checkDigest(src, cfg, cfgDesc!.digest!);
    config = configOf(await readJson(src, cfg, 'image config'));
    const descs = (Array.isArray(manifest.layers) ? manifest.layers : []) as { digest?: string }[];
    layers = descs.map((l) => ({ member: need(members, blobName(l.digest, src), src, 'layer blob'), digest: l.digest }));
  }
  if (layers.length > MAX_LAYERS) throw new InvalidInputError('image-layers', `${layers.length} layers; at most ${MAX_LAYERS} are accepted`, { file: src.name });
  return {
    kind,
    ref,
    config,
    async open() {
      const trees: FileTree[] = [];
      try {
        for (const [i, l] of layers.entries()) {
          if (l.digest) await checkDigest(src, l.member, l.digest);
          trees.push(await openTar(src.slice(l.member.dataOffset, l.member.dataSize, `${src.name} (layer ${i + 1})`)));
        }
        return await mergeLayers(trees);
      } catch (err) {
        for (const t of trees) await t.close();
        throw err;
      }
    },
  };
}

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

function under(path: string, dir: string): boolean {
  return dir === '/' ? path !== '/' : path.startsWith(dir + '/');
}

/**
 * Layers applied as the OCI image spec says: a later layer's entry replaces an earlier one, `.wh.<name>` deletes
 * <name> (and everything below it), `.wh..wh..opq` hides everything the lower layers had in that directory.
 * Whiteout files themselves never appear. Metadata only is held; content is read from the layer that won.
 */
export async function mergeLayers(layers: FileTree[]): Promise<FileTree> {
  const merged = new Map<string, { entry: Entry; layer: number }>();
  for (const [i, layer] of layers.entries()) {
    const seen: Entry[] = [];
    for await (const e of layer.walk()) seen.push(e);
    const drop = (pred: (p: string) => boolean) => {
      for (const p of [...merged.keys()]) if (pred(p) && (merged.get(p)!.layer < i)) merged.delete(p);
    };
    for (const e of seen) {
      const name = e.path.slice(e.path.lastIndexOf('/') + 1);
      const dir = e.path.slice(0, e.path.lastIndexOf('/')) || '/';
      if (name === OPAQUE) drop((p) => under(p, dir));
      else if (name.startsWith(WHITEOUT)) {
        const gone = `${dir === '/' ? '' : dir}/${name.slice(WHITEOUT.length)}`;
        drop((p) => p === gone || under(p, gone));
      }
    }
    for (const e of seen) {
      const name = e.path.slice(e.path.lastIndexOf('/') + 1);
      if (name.startsWith(WHITEOUT)) continue;
      const old = merged.get(e.path);
      // A non-directory replacing a directory takes the whole subtree with it.
      if (old?.entry.type === 'dir' && e.type !== 'dir') drop((p) => under(p, e.path));
      merged.set(e.path, { entry: { ...e, inode: e.inode + (i + 1) * 2 ** 32 }, layer: i });
    }
  }
  const sorted = [...merged.values()].sort((a, b) => comparePaths(a.entry.path, b.entry.path));
  const owner = new Map(sorted.map((s) => [s.entry.inode, s]));
  return {
    async *walk() {
      for (const s of sorted) yield s.entry;
    },
    open(entry: Entry): Readable {
      const s = owner.get(entry.inode)!;
      return layers[s.layer]!.open({ ...entry, inode: entry.inode - (s.layer + 1) * 2 ** 32 });
    },
    async close() {
      for (const l of layers) await l.close();
    },
  };
}

/** Depth-first order with children sorted bytewise: compare component by component. */
function comparePaths(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const c = compareNames(pa[i]!, pb[i]!);
    if (c !== 0) return c;
  }
  return pa.length - pb.length;
}
