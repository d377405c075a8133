import type { Readable } from 'node:stream';

export type EntryType = 'file' | 'dir' | 'symlink' | 'chr' | 'blk' | 'fifo' | 'sock';

/** One filesystem entry with the metadata a faithful copy needs. */
export interface Entry {
  /** Absolute inside the tree: "/" for the root, "/etc/passwd" otherwise. */
  path: string;
  type: EntryType;
  /** Permission bits including setuid/setgid/sticky (mask 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Bytes of content for regular files (apparent size, holes included); 0 for other types. */
  size: number;
  /** Link count as the filesystem records it. */
  nlink: number;
  /**
   * Hardlink identity: entries of one tree with the same `inode` are the same file. Readers use the
   * filesystem's inode number; trees without one (tar) number the link targets.
   */
  inode: number;
  /** Symlink target. */
  target?: string;
  /** Device number of chr/blk entries. */
  rdev?: { major: number; minor: number };
  /** Extended attributes by full name ("security.capability", "user.foo"). */
  xattrs?: Record<string, Buffer>;
}

/**
 * A readable filesystem: an image (ext4, squashfs, vfat), an archive (tar) or a directory.
 * `walk` yields depth-first, each directory before its children, children sorted by name (bytewise).
 */
export interface FileTree {
  walk(): AsyncIterable<Entry>;
  /** The content of a regular file; the stream errors on corrupt data rather than yielding short content. */
  open(entry: Entry): Readable;
  /**
   * sha256 (hex) of a regular file's content, for trees that can hash on other threads faster than a
   * caller hashing open()'s stream; callers fall back to that stream when a tree has no digest.
   */
  digest?(entry: Entry): Promise<string>;
  close(): Promise<void>;
}

/** `tree`, whose close() then also runs `after` (closing the file it reads, removing its temp copy). */
export function closingAlso(tree: FileTree, after: () => Promise<void>): FileTree {
  const out: FileTree = {
    walk: () => tree.walk(),
    open: (e) => tree.open(e),
    close: async () => {
      try {
        await tree.close();
      } finally {
        await after();
      }
    },
  };
  if (tree.digest) out.digest = (e) => tree.digest!(e);
  return out;
}

/** Bytewise comparison of names, the order every walk uses. */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** "ls"-style 4-digit octal mode string, e.g. 0o4755 → "4755". */
export function modeString(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}
