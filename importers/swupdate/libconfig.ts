/**
 * libconfig parser with the grammar of libconfig 1.7/1.8 (lib/scanner.l, lib/grammar.y), as swupdate
 * reads sw-description. Refused with line:column: @include (swupdate forbids it), duplicate setting
 * names, mixed-type arrays. Accepted as libconfig 1.7 does: trailing commas in lists and arrays.
 */
import { Cursor, type ConfigNode, type GroupNode, type Pos } from './config-tree.ts';

const COMMENTS = ['#', '//', '/*'] as const;
const NAME_START = /[A-Za-z*]/;
const NAME_CHAR = /[-A-Za-z0-9_*]/;
/** Deeper nesting than this is not a description but an attack on the stack. */
const MAX_DEPTH = 200;

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** `notes` receives findings that are valid libconfig but not portable (trailing commas before 1.7). */
export function parseLibconfig(text: string, file?: string, notes?: string[]): GroupNode {
  const p = new Parser(new Cursor(text, file), notes);
  return p.file();
}

class Parser {
  constructor(
    private readonly c: Cursor,
    private readonly notes: string[] | undefined,
  ) {}

  file(): GroupNode {
    const root: GroupNode = { type: 'group', pos: this.c.here(), members: new Map() };
    this.settings(root, '', 0);
    return root;
  }

  private blank(): void {
    this.c.skipBlank(COMMENTS);
    if (this.c.startsWith('@include')) this.c.fail('@include is not allowed in sw-description (the whole description must be in one file)');
  }

  /** Settings until `close` ('' = end of file). */
  private settings(group: GroupNode, close: string, depth: number): void {
    for (;;) {
      this.blank();
      if (close === '' ? this.c.done : this.c.peek() === close) return;
      if (this.c.done) this.c.fail(`unexpected end of file: '${close}' expected`);
      const at = this.c.here();
      const name = this.name();
      if (group.members.has(name)) this.c.fail(`duplicate setting name '${name}'`, at);
      this.blank();
      const sep = this.c.peek();
      if (sep !== '=' && sep !== ':') this.c.fail(`'=' or ':' expected after '${name}', found ${this.c.describeNext()}`);
      this.c.next();
      this.blank();
      group.members.set(name, this.value(depth));
      this.blank();
      if (this.c.peek() === ';' || this.c.peek() === ',') this.c.next();
    }
  }

  private name(): string {
    if (!NAME_START.test(this.c.peek())) this.c.fail(`setting name expected, found ${this.c.describeNext()}`);
    let s = '';
    while (NAME_CHAR.test(this.c.peek())) s += this.c.next();
    if (this.c.peek() === '.') this.c.fail(`'.' is not allowed in a setting name ('${s}.…')`);
    return s;
  }

  private value(depth: number): ConfigNode {
    if (depth > MAX_DEPTH) this.c.fail(`nesting deeper than ${MAX_DEPTH} levels`);
    const at = this.c.here();
    const ch = this.c.peek();
    if (ch === '{') {
      this.c.next();
      const g: GroupNode = { type: 'group', pos: at, members: new Map() };
      this.settings(g, '}', depth + 1);
      this.c.next();
      return g;
    }
    if (ch === '(') return this.sequence('list', ')', at, depth);
    if (ch === '[') return this.sequence('array', ']', at, depth);
    return this.scalar();
  }

  private sequence(type: 'list' | 'array', close: string, at: Pos, depth: number): ConfigNode {
    this.c.next();
    const items: ConfigNode[] = [];
    for (;;) {
      this.blank();
      if (this.c.peek() === close) break;
      if (this.c.done) this.c.fail(`unexpected end of file: '${close}' expected to close the ${type} at ${at.line}:${at.column}`);
      const item = type === 'list' ? this.value(depth + 1) : this.scalar();
      if (type === 'array' && items.length > 0 && item.type !== items[0].type) {
        this.c.fail(`mismatched element type in array: ${item.type} after ${items[0].type}`, item.pos);
      }
      items.push(item);
      this.blank();
      if (this.c.peek() === ',') {
        const comma = this.c.here();
        this.c.next();
        this.blank();
        if (this.c.peek() === close) this.notes?.push(`trailing comma at ${comma.line}:${comma.column}: accepted since libconfig 1.7, a syntax error for older ones (Debian 12's swupdate uses 1.5)`);
      } else if (this.c.peek() !== close) this.c.fail(`',' or '${close}' expected in ${type}, found ${this.c.describeNext()}`);
    }
    this.c.next();
    return type === 'list' ? { type: 'list', pos: at, items } : { type: 'array', pos: at, items };
  }

  private scalar(): ConfigNode {
    const at = this.c.here();
    const ch = this.c.peek();
    if (ch === '"') return { type: 'string', pos: at, value: this.strings() };
    if (/[-+.0-9]/.test(ch)) return this.number(at);
    if (/[A-Za-z]/.test(ch)) {
      let word = '';
      while (NAME_CHAR.test(this.c.peek())) word += this.c.next();
      const lower = word.toLowerCase();
      if (lower === 'true' || lower === 'false') return { type: 'bool', pos: at, value: lower === 'true' };
      this.c.fail(`value expected, found '${word}' (strings need double quotes)`, at);
    }
    this.c.fail(`value expected, found ${this.c.describeNext()}`);
  }

  /** One or more adjacent string literals, concatenated. */
  private strings(): string {
    let out = '';
    for (;;) {
      out += this.string();
      const save = { pos: this.c.pos, line: this.c.line, column: this.c.column };
      this.blank();
      if (this.c.peek() !== '"') {
        Object.assign(this.c, save);
        return out;
      }
    }
  }

  private string(): string {
    const at = this.c.here();
    this.c.next();
    let s = '';
    for (;;) {
      if (this.c.done) this.c.fail('string is never closed', at);
      const ch = this.c.next();
      if (ch === '"') return s;
      if (ch !== '\\') {
        s += ch;
        continue;
      }
      const e = this.c.next();
      const simple: Record<string, string> = { '\\': '\\', '"': '"', n: '\n', r: '\r', t: '\t', f: '\f', a: '\x07', b: '\b', v: '\v' };
      if (e in simple) s += simple[e];
      else if (e === 'x' && /^[0-9A-Fa-f]{2}$/.test(this.c.peek() + this.c.peek(1))) s += String.fromCharCode(parseInt(this.c.next() + this.c.next(), 16));
      else s += '\\' + e; // libconfig keeps an unknown escape literally
    }
  }

  private number(at: Pos): ConfigNode {
    let tok = '';
    while (/[-+.0-9A-Za-z]/.test(this.c.peek())) tok += this.c.next();
    const m = /^([-+]?)(?:0[xX]([0-9A-Fa-f]+)|0[bB]([01]+)|0[oOqQ]([0-7]+)|([0-9]+))(L{0,2})$/.exec(tok);
    if (m) {
      const [, sign, hex, bin, oct, dec, suffix] = m;
      let v = hex !== undefined ? BigInt('0x' + hex) : bin !== undefined ? BigInt('0b' + bin) : oct !== undefined ? BigInt('0o' + oct) : BigInt(dec);
      // libconfig reads hex as unsigned bits: 0xFFFFFFFF is -1 as int, larger hex values become int64.
      if (hex !== undefined && !suffix && v > BigInt(INT32_MAX) && v <= 0xffffffffn) v -= 0x100000000n;
      if (sign === '-') v = -v;
      if (v < INT64_MIN || v > INT64_MAX) this.c.fail(`integer ${tok} does not fit in 64 bits`, at);
      const fits32 = v >= BigInt(INT32_MIN) && v <= BigInt(INT32_MAX);
      const value = !suffix && fits32 ? Number(v) : Number.isSafeInteger(Number(v)) ? Number(v) : v;
      return { type: 'int', pos: at, value };
    }
    if (/^[-+]?(([0-9]*\.[0-9]*([eE][-+]?[0-9]+)?)|([0-9]+(\.[0-9]*)?[eE][-+]?[0-9]+))$/.test(tok) && /[0-9]/.test(tok)) {
      return { type: 'float', pos: at, value: Number(tok) };
    }
    this.c.fail(`'${tok}' is not a number`, at);
  }
}
