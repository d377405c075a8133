/** A seeded xorshift32 generator, so a fuzz round that fails can be replayed: rand(n) is in [0, n). */
export function seededRandom(seed: number): (n: number) => number {
  let s = seed | 0 || 1;
  return (n: number) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % n;
  };
}
