// squashfs-tools' own view of an image: `unsquashfs -lln` parsed, the independent truth squashfs tests compare with.
import assert from 'node:assert/strict';
import type { Entry } from '../../src/fs/file-tree.ts';
import { sh } from './env.ts';

const TYPE_CHAR: Record<string, Entry['type']> = { '-': 'file', d: 'dir', l: 'symlink', c: 'chr', b: 'blk', p: 'fifo', s: 'sock' };

/** Permission string of ls -l (with s/S/t/T) → mode bits. */
function parsePerms(p: string): number {
  let m = 0;
  const bit = (c: string, on: string[], v: number) => (on.includes(c) ? v : 0);
  m |= bit(p[1]!, ['r'], 0o400) | bit(p[2]!, ['w'], 0o200) | bit(p[3]!, ['x', 's'], 0o100) | bit(p[3]!, ['s', 'S'], 0o4000);
  m |= bit(p[4]!, ['r'], 0o40) | bit(p[5]!, ['w'], 0o20) | bit(p[6]!, ['x', 's'], 0o10) | bit(p[6]!, ['s', 'S'], 0o2000);
  m |= bit(p[7]!, ['r'], 0o4) | bit(p[8]!, ['w'], 0o2) | bit(p[9]!, ['x', 't'], 0o1) | bit(p[9]!, ['t', 'T'], 0o1000);
  return m;
}

export interface UnsquashfsEntry {
  type: Entry['type'];
  mode: number;
  uid: number;
  gid: number;
  /** A file's size, or a device's "major:minor". */
  size: string;
  /** "YYYY-MM-DD HH:MM", UTC. */
  mtime: string;
  target?: string;
}

/** `unsquashfs -lln` of `image`, keyed by tree path ("/" for the root). */
export function unsquashfsList(image: string): Map<string, UnsquashfsEntry> {
  const out = new Map<string, UnsquashfsEntry>();
  const text = sh('unsquashfs', ['-lln', '-d', '', image], { env: { TZ: 'UTC' } });
  for (const line of text.split('\n')) {
    if (!line) continue;
    const m = /^(\S{10}) (\d+)\/(\d+)\s+(\d+,\s*\d+|\d+) (\d{4}-\d\d-\d\d \d\d:\d\d) (.*)$/.exec(line);
    assert.ok(m, `unparsed unsquashfs line: ${line}`);
    const type = TYPE_CHAR[m[1]![0]!]!;
    let name = m[6]!;
    let target: string | undefined;
    if (type === 'symlink') {
      const i = name.indexOf(' -> ');
      target = name.slice(i + 4);
      name = name.slice(0, i);
    }
    const path = name === '' ? '/' : name.startsWith('/') ? name : '/' + name;
    out.set(path, { type, mode: parsePerms(m[1]!), uid: Number(m[2]), gid: Number(m[3]), size: m[4]!.replace(/,\s*/, ':'), mtime: m[5]!, target });
  }
  return out;
}

/** Seconds since the epoch as unsquashfs prints them (UTC, to the minute). */
export function utcMinute(sec: number): string {
  return new Date(sec * 1000).toISOString().slice(0, 16).replace('T', ' ');
}
