/**
 * Signature include/exclude matching exactly as the Pantavisor runtime does it (PV signature.c
 * `_filter_json`): glibc `fnmatch(pattern, key, FNM_PATHNAME)`, where a pattern ending in `/**` becomes
 * its directory matched with FNM_LEADING_DIR and a bare `**` becomes the empty pattern (matching no key).
 */

const MAX_PATTERN = 1024;

/** fnmatch(3) with FNM_PATHNAME (and optionally FNM_LEADING_DIR); no FNM_PERIOD, escapes honoured. */
export function fnmatch(pattern: string, s: string, leadingDir = false): boolean {
  if (pattern.length > MAX_PATTERN) return false;
  // Memoised on (pattern index, string index): `*` backtracking stays O(pattern × string).
  const memo = new Map<number, boolean>();
  const width = s.length + 1;
  const match = (p: number, i: number): boolean => {
    const id = p * width + i;
    const hit = memo.get(id);
    if (hit !== undefined) return hit;
    const r = step(p, i);
    memo.set(id, r);
    return r;
  };
  const step = (p: number, i: number): boolean => {
    if (p === pattern.length) return i === s.length || (leadingDir && s[i] === '/');
    const c = pattern[p]!;
    if (c === '*') {
      // A star never crosses '/'.
      for (let j = i; ; j++) {
        if (match(p + 1, j)) return true;
        if (j >= s.length || s[j] === '/') return false;
      }
    }
    if (i >= s.length) return false;
    if (c === '?') return s[i] !== '/' && match(p + 1, i + 1);
    if (c === '[') {
      const b = bracket(pattern, p, s[i]!);
      if (b !== undefined) return b.matched && s[i] !== '/' && match(b.next, i + 1);
      return s[i] === '[' && match(p + 1, i + 1); // unterminated: a literal '['
    }
    if (c === '\\' && p + 1 < pattern.length) return s[i] === pattern[p + 1] && match(p + 2, i + 1);
    return s[i] === c && match(p + 1, i + 1);
  };
  return match(0, 0);
}

const CLASSES: Record<string, RegExp> = {
  alpha: /[A-Za-z]/,
  digit: /[0-9]/,
  alnum: /[A-Za-z0-9]/,
  upper: /[A-Z]/,
  lower: /[a-z]/,
  space: /\s/,
  xdigit: /[0-9A-Fa-f]/,
  punct: /[!-/:-@[-`{-~]/,
};

/** A bracket expression at pattern[p] ('['): whether ch matches and where the pattern continues. */
function bracket(pattern: string, p: number, ch: string): { matched: boolean; next: number } | undefined {
  let i = p + 1;
  const negate = pattern[i] === '!' || pattern[i] === '^';
  if (negate) i++;
  let matched = false;
  let first = true;
  while (i < pattern.length) {
    let c = pattern[i]!;
    if (c === ']' && !first) return { matched: matched !== negate, next: i + 1 };
    first = false;
    if (c === '[' && pattern[i + 1] === ':') {
      const end = pattern.indexOf(':]', i + 2);
      const re = end > 0 ? CLASSES[pattern.slice(i + 2, end)] : undefined;
      if (re) {
        if (re.test(ch)) matched = true;
        i = end + 2;
        continue;
      }
    }
    if (c === '\\' && i + 1 < pattern.length) c = pattern[++i]!;
    if (pattern[i + 1] === '-' && pattern[i + 2] !== undefined && pattern[i + 2] !== ']') {
      let hi = pattern[i + 2]!;
      let skip = 3;
      if (hi === '\\' && pattern[i + 3] !== undefined) {
        hi = pattern[i + 3]!;
        skip = 4;
      }
      if (ch >= c && ch <= hi) matched = true;
      i += skip;
      continue;
    }
    if (ch === c) matched = true;
    i++;
  }
  return undefined;
}

/** One include/exclude pattern as the runtime applies it to a state key. */
export function pvsPatternMatches(pattern: string, key: string): boolean {
  if (pattern === '**') return fnmatch('', key, true);
  if (pattern.endsWith('/**')) return fnmatch(dirname(pattern), key, true);
  return fnmatch(pattern, key, false);
}

/** dirname(3) of a pattern ending in '/**' (trailing slashes dropped; no slash left → '.'). */
function dirname(path: string): string {
  let p = path;
  while (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  const slash = p.lastIndexOf('/');
  if (slash === -1) return '.';
  if (slash === 0) return '/';
  let d = p.slice(0, slash);
  while (d.length > 1 && d.endsWith('/')) d = d.slice(0, -1);
  return d;
}
