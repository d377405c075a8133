/**
 * Streaming writer for cpio newc (070701) archives, the format the kernel unpacks as an initramfs.
 *
 * Deterministic: members are written sorted by name (bytewise, so a directory precedes its contents),
 * with inode numbers assigned in that order, one fixed mtime, and uid/gid as given (0 by default). File
 * data is streamed from its source, never loaded whole (a node binary is ~100 MB).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { InvalidInputError } from '../../src/errors.ts';

export type InitrdMember =
  | { type: 'dir'; path: string; mode: number }
  | { type: 'file'; path: string; mode: number; /** host file to copy */ from: string }
  | { type: 'data'; path: string; mode: number; data: Buffer }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'char'; path: string; mode: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
/** The newc size field is 32 bits. */
const MAX_SIZE = 0xffffffff;

const pad4 = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);

function header(f: { ino: number; mode: number; nlink: number; mtime: number; size: number; rdevMajor?: number; rdevMinor?: number; nameSize: number }): Buffer {
  const fields = [f.ino, f.mode, 0, 0, f.nlink, f.mtime, f.size, 0, 0, f.rdevMajor ?? 0, f.rdevMinor ?? 0, f.nameSize, 0];
  return Buffer.from('070701' + fields.map((v) => v.toString(16).padStart(8, '0')).join(''), 'latin1');
}

function entry(ino: number, name: string, mode: number, mtime: number, size: number, extra: { nlink?: number; rdevMajor?: number; rdevMinor?: number } = {}): Buffer {
  const nameBytes = Buffer.from(name + '\0', 'utf8');
  const head = header({ ino, mode, nlink: extra.nlink ?? 1, mtime, size, rdevMajor: extra.rdevMajor, rdevMinor: extra.rdevMinor, nameSize: nameBytes.length });
  return Buffer.concat([head, nameBytes, pad4(head.length + nameBytes.length)]);
}

/** Archive names are relative ("bin/sh"), without "." or ".." components. */
function checkName(path: string): string {
  const name = path.replace(/^\/+/, '');
  if (!name || name.split('/').some((p) => p === '' || p === '.' || p === '..')) throw new InvalidInputError('cpio-name', `initrd member name '${path}' is not a clean relative path`);
  return name;
}

/** The archive as a stream of chunks: sorted members, then the TRAILER!!! entry. */
export async function* cpioNewc(members: Iterable<InitrdMember>, options: { mtime?: number } = {}): AsyncGenerator<Buffer> {
  const mtime = options.mtime ?? 0;
  const sorted = [...members].map((m) => ({ m, name: checkName(m.path) })).sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].name === sorted[i - 1].name) throw new InvalidInputError('cpio-name', `initrd member '${sorted[i].name}' is listed twice`);
  }
  let ino = 0;
  for (const { m, name } of sorted) {
    ino++;
    switch (m.type) {
      case 'dir':
        yield entry(ino, name, S_IFDIR | (m.mode & 0o7777), mtime, 0, { nlink: 2 });
        break;
      case 'symlink': {
        const target = Buffer.from(m.target, 'utf8');
        yield entry(ino, name, S_IFLNK | 0o777, mtime, target.length);
        yield Buffer.concat([target, pad4(target.length)]);
        break;
      }
      case 'char':
        yield entry(ino, name, S_IFCHR | (m.mode & 0o7777), mtime, 0, { rdevMajor: m.major, rdevMinor: m.minor });
        break;
      case 'data':
        if (m.data.length > MAX_SIZE) throw new InvalidInputError('cpio-size', `initrd member '${name}' is larger than newc's 4 GiB limit`);
        yield entry(ino, name, S_IFREG | (m.mode & 0o7777), mtime, m.data.length);
        yield Buffer.concat([m.data, pad4(m.data.length)]);
        break;
      case 'file': {
        const size = (await stat(m.from)).size;
        if (size > MAX_SIZE) throw new InvalidInputError('cpio-size', `initrd member '${name}' (${m.from}) is larger than newc's 4 GiB limit`, { file: m.from });
        yield entry(ino, name, S_IFREG | (m.mode & 0o7777), mtime, size);
        let copied = 0;
        if (size > 0) for await (const chunk of createReadStream(m.from, { end: size - 1 }) as AsyncIterable<Buffer>) {
          copied += chunk.length;
          yield chunk;
        }
        // A file that changed size while read would shift every later header.
        if (copied !== size) throw new InvalidInputError('cpio-size', `${m.from} changed size while it was archived (${size} → ${copied} bytes)`, { file: m.from });
        yield pad4(size);
        break;
      }
    }
  }
  yield entry(ino + 1, 'TRAILER!!!', 0, 0, 0);
}
