/**
 * How the runtime's node process must be started, by every launcher: runtime/pv-init and
 * runtime/initrd/init.sh spell the same settings in shell (test/runtime-soak.test.ts checks that they do),
 * and the test fixture spawns `pvmigrate run` with them. Both take effect only at process start: V8 sizes
 * its heap, and glibc its arenas, once.
 *
 * - --optimize-for-size: the runtime keeps about 8 MiB of live heap, but with V8's defaults each update
 *   cycle's short-lived garbage (request bodies, states, directory copies) grows the young generation up to
 *   2 × 16 MiB within ~150 cycles, and the old generation's sawtooth widens after it: ~25–40 MiB more RSS,
 *   never given back, that looks like a leak in a long-running PID 1. This flag caps the young generation
 *   at 1 MiB semi-spaces and grows the old one conservatively. Measured over 600 in-place updates (RSS at
 *   cycles 3/50/100/200/600): 64/83/86/102/107 MiB without it, 60/65/65/66/70 MiB with it; an update
 *   still applies in 0.13 s. (Not allowed in NODE_OPTIONS: it has to be on node's command line.)
 * - MALLOC_ARENA_MAX=2: otherwise each of libuv's pool threads (the fs work) gets a glibc arena of its
 *   own, each fragmenting on its own (their resident size kept growing over the cycles).
 */
export const RUNTIME_NODE_ARGS = ['--optimize-for-size'];
export const RUNTIME_ENV: Record<string, string> = { MALLOC_ARENA_MAX: '2' };
