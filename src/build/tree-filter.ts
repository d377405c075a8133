import type { Readable } from 'node:stream';
import type { Entry, FileTree } from '../fs/file-tree.ts';

export interface FilterOptions {
  /** Entries to keep (by their path in the source tree). Ancestors of kept entries are kept as well. */
  select(path: string): boolean;
  /** Re-root the view: only entries at or below this directory, which becomes "/" (default "/"). */
  root?: string;
  /** Link counts inside this view for hardlinked files, by inode (a link group split across views shrinks). */
  linkCounts?: ReadonlyMap<number, number>;
}

function rebase(path: string, root: string): string | undefined {
  if (root === '/') return path;
  if (path === root) return '/';
  return path.startsWith(root + '/') ? path.slice(root.length) : undefined;
}

/**
 * A subset view of a tree. Streams: a directory that is not itself selected is held back until a selected
 * entry appears below it (then it is emitted first, with its own metadata), so memory is bounded by the
 * depth of the tree, not its size. The root is always emitted, so an empty selection is an empty tree.
 */
export function filterTree(tree: FileTree, options: FilterOptions): FileTree {
  const root = options.root ?? '/';
  return {
    async *walk(): AsyncIterable<Entry> {
      const pending: Entry[] = [];
      for await (const src of tree.walk()) {
        const path = rebase(src.path, root);
        if (path === undefined) continue;
        let entry: Entry = path === src.path ? src : { ...src, path };
        const links = options.linkCounts?.get(src.inode);
        if (entry.type !== 'dir' && links !== undefined && links !== entry.nlink) entry = { ...entry, nlink: links };
        while (pending.length > 0 && !isAncestor(pending.at(-1)!.path, path)) pending.pop();
        if (path === '/' || options.select(src.path)) {
          yield* pending.splice(0);
          yield entry;
          // A kept directory is emitted already; its children find it by path, not on the stack.
        } else if (entry.type === 'dir') {
          pending.push(entry);
        }
      }
    },
    open(entry: Entry): Readable {
      return tree.open(root === '/' ? entry : { ...entry, path: root + entry.path });
    },
    // A view does not own its source: whoever opened the tree closes it once every view is done.
    async close() {},
  };
}

function isAncestor(dir: string, path: string): boolean {
  return dir === '/' || path.startsWith(dir + '/');
}
