/**
 * The JSON form of sw-description, read with json-c's default (non-strict) leniency: `//` and `/* *\/`
 * comments, trailing commas, single-quoted strings, case-insensitive true/false/null. Objects become
 * groups, arrays become lists, so the rest of the importer sees one tree. Duplicate keys are refused
 * (json-c silently keeps the last one, which hides mistakes in a signed description).
 */
import { Cursor, type ConfigNode, type GroupNode, type Pos } from './config-tree.ts';

const COMMENTS = ['//', '/*'] as const;
const MAX_DEPTH = 200;

export function parseJsonDescription(text: string, file?: string): GroupNode {
  const c = new Cursor(text, file);
  c.skipBlank(COMMENTS);
  if (c.peek() !== '{') c.fail(`a JSON sw-description starts with '{', found ${c.describeNext()}`);
  const root = value(c, 0) as GroupNode;
  c.skipBlank(COMMENTS);
  if (!c.done) c.fail(`unexpected ${c.describeNext()} after the closing '}'`);
  return root;
}

function value(c: Cursor, depth: number): ConfigNode {
  if (depth > MAX_DEPTH) c.fail(`nesting deeper than ${MAX_DEPTH} levels`);
  c.skipBlank(COMMENTS);
  const at = c.here();
  const ch = c.peek();
  if (ch === '{') {
    c.next();
    const members = new Map<string, ConfigNode>();
    for (;;) {
      c.skipBlank(COMMENTS);
      if (c.peek() === '}') break;
      const keyAt = c.here();
      if (c.peek() !== '"' && c.peek() !== "'") c.fail(`object key (a string) or '}' expected, found ${c.describeNext()}`);
      const key = string(c);
      if (members.has(key)) c.fail(`duplicate key '${key}'`, keyAt);
      c.skipBlank(COMMENTS);
      if (c.peek() !== ':') c.fail(`':' expected after key '${key}', found ${c.describeNext()}`);
      c.next();
      members.set(key, value(c, depth + 1));
      if (!separator(c, '}')) break;
    }
    c.next();
    return { type: 'group', pos: at, members };
  }
  if (ch === '[') {
    c.next();
    const items: ConfigNode[] = [];
    for (;;) {
      c.skipBlank(COMMENTS);
      if (c.peek() === ']') break;
      items.push(value(c, depth + 1));
      if (!separator(c, ']')) break;
    }
    c.next();
    return { type: 'list', pos: at, items };
  }
  if (ch === '"' || ch === "'") return { type: 'string', pos: at, value: string(c) };
  if (/[-0-9]/.test(ch)) return number(c, at);
  if (/[A-Za-z]/.test(ch)) {
    let word = '';
    while (/[A-Za-z]/.test(c.peek())) word += c.next();
    const lower = word.toLowerCase();
    if (lower === 'true' || lower === 'false') return { type: 'bool', pos: at, value: lower === 'true' };
    if (lower === 'null') return { type: 'null', pos: at };
    c.fail(`value expected, found '${word}'`, at);
  }
  c.fail(`value expected, found ${c.describeNext()}`);
}

/** After a member or element: ',' (true, more may follow; a trailing one is fine) or the closer (false). */
function separator(c: Cursor, close: string): boolean {
  c.skipBlank(COMMENTS);
  if (c.peek() === ',') {
    c.next();
    return true;
  }
  if (c.peek() !== close) c.fail(`',' or '${close}' expected, found ${c.describeNext()}`);
  return false;
}

function string(c: Cursor): string {
  const at = c.here();
  const quote = c.next();
  let s = '';
  for (;;) {
    if (c.done) c.fail('string is never closed', at);
    const ch = c.next();
    if (ch === quote) return s;
    if (ch !== '\\') {
      s += ch;
      continue;
    }
    const e = c.next();
    const simple: Record<string, string> = { '"': '"', "'": "'", '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
    if (e in simple) s += simple[e];
    else if (e === 'u') {
      const h = c.text.slice(c.pos, c.pos + 4);
      if (!/^[0-9A-Fa-f]{4}$/.test(h)) c.fail(`\\u must be followed by 4 hex digits`);
      for (let i = 0; i < 4; i++) c.next();
      s += String.fromCharCode(parseInt(h, 16));
    } else c.fail(`unknown escape '\\${e}' in string`);
  }
}

function number(c: Cursor, at: Pos): ConfigNode {
  let tok = '';
  while (/[-+.0-9eE]/.test(c.peek())) tok += c.next();
  if (/^-?(0|[1-9][0-9]*)$/.test(tok)) {
    const v = BigInt(tok);
    if (v < -(2n ** 63n) || v > 2n ** 63n - 1n) c.fail(`integer ${tok} does not fit in 64 bits`, at);
    return { type: 'int', pos: at, value: Number.isSafeInteger(Number(v)) ? Number(v) : v };
  }
  if (/^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$/.test(tok)) return { type: 'float', pos: at, value: Number(tok) };
  c.fail(`'${tok}' is not a number`, at);
}
