/**
 * Host programs copied into the initrd with the shared libraries they load: the libraries come from
 * `ldd` (the dynamic loader's own answer), and each is placed at the path the loader resolved it from,
 * with the content of the file it points to. ELF machine types are checked so an initrd never mixes
 * architectures.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readSync, realpathSync } from 'node:fs';
import { EnvironmentError, InvalidInputError } from '../../src/errors.ts';

const MACHINES: Record<number, string> = { 0x03: 'x86', 0x3e: 'x86-64', 0x28: 'arm', 0xb7: 'aarch64', 0xf3: 'riscv', 0x08: 'mips' };

/** The ELF machine of a file ('x86-64', 'aarch64', …), or an error naming the file when it is not ELF. */
export function elfMachine(path: string): string {
  const head = Buffer.alloc(20);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, 20, 0);
  } finally {
    closeSync(fd);
  }
  if (head.readUInt32BE(0) !== 0x7f454c46) throw new InvalidInputError('not-elf', `${path} is not an ELF executable`, { file: path });
  const machine = head[5] === 2 ? head.readUInt16BE(18) : head.readUInt16LE(18);
  return MACHINES[machine] ?? `machine-${machine}`;
}

/** A program and the libraries the dynamic loader maps for it: `path` is where each goes in the initrd. */
export interface Placed {
  path: string;
  from: string;
}

/** Shared libraries of `program` (empty for a static one), as ldd resolves them on this host. */
export function sharedLibraries(program: string): Placed[] {
  const r = spawnSync('ldd', [program], { encoding: 'utf8' });
  if (r.error) throw new EnvironmentError('missing-tool', `ldd is needed to find the libraries of ${program} (${r.error.message}); install libc-bin`, { file: program });
  const out = `${r.stdout}${r.stderr}`;
  if (/not a dynamic executable|statically linked/.test(out)) return [];
  if (r.status !== 0) throw new EnvironmentError('ldd-failed', `ldd ${program} failed: ${out.trim().split('\n')[0]}`, { file: program });
  const libs: Placed[] = [];
  for (const line of out.split('\n')) {
    if (/=> not found/.test(line)) throw new EnvironmentError('missing-library', `${program} needs a library this host lacks: ${line.trim()}`, { file: program });
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or the loader itself "/lib64/ld-linux-x86-64.so.2 (0x…)"
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (m) libs.push({ path: m[1], from: realpathSync(m[1]) });
  }
  return libs;
}

/** Where `command` is on PATH (resolved), or an error saying which package provides it. */
export function hostCommand(command: string, pkg: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  const path = r.stdout.trim();
  if (r.status !== 0 || !path.startsWith('/')) throw new EnvironmentError('missing-tool', `the initrd needs '${command}' from this host; apt-get install ${pkg}`);
  return path;
}
