/**
 * The parsed sw-description, the same tree whether it was written as libconfig or JSON: groups of named
 * settings, lists, arrays and scalars, each with the line:column it came from so later errors can point
 * at the source.
 */
import { InvalidInputError } from '../../src/errors.ts';

export interface Pos {
  line: number;
  column: number;
}

export type ConfigNode =
  | { type: 'group'; pos: Pos; members: Map<string, ConfigNode> }
  | { type: 'list'; pos: Pos; items: ConfigNode[] }
  | { type: 'array'; pos: Pos; items: ConfigNode[] }
  | { type: 'string'; pos: Pos; value: string }
  | { type: 'int'; pos: Pos; value: number | bigint }
  | { type: 'float'; pos: Pos; value: number }
  | { type: 'bool'; pos: Pos; value: boolean }
  | { type: 'null'; pos: Pos };

export type GroupNode = Extract<ConfigNode, { type: 'group' }>;

/** A syntax error at a position of sw-description (exit 1: the input is invalid). */
export function syntaxError(file: string | undefined, pos: Pos, message: string): InvalidInputError {
  return new InvalidInputError('sw-description-syntax', `sw-description ${pos.line}:${pos.column}: ${message}`, { file });
}

/** Plain JSON for reports (bigints that do not fit a double become strings). */
export function toPlain(node: ConfigNode): unknown {
  switch (node.type) {
    case 'group':
      return Object.fromEntries([...node.members].map(([k, v]) => [k, toPlain(v)]));
    case 'list':
    case 'array':
      return node.items.map(toPlain);
    case 'int':
      return typeof node.value === 'bigint' ? (Number.isSafeInteger(Number(node.value)) ? Number(node.value) : node.value.toString()) : node.value;
    case 'null':
      return null;
    default:
      return node.value;
  }
}

/** A character source with line/column tracking, shared by both parsers. */
export class Cursor {
  pos = 0;
  line = 1;
  column = 1;
  constructor(readonly text: string, readonly file: string | undefined) {}

  get done(): boolean {
    return this.pos >= this.text.length;
  }
  peek(offset = 0): string {
    return this.text[this.pos + offset] ?? '';
  }
  here(): Pos {
    return { line: this.line, column: this.column };
  }
  next(): string {
    const c = this.text[this.pos++] ?? '';
    if (c === '\n') {
      this.line++;
      this.column = 1;
    } else this.column++;
    return c;
  }
  startsWith(s: string): boolean {
    return this.text.startsWith(s, this.pos);
  }
  fail(message: string, at: Pos = this.here()): never {
    throw syntaxError(this.file, at, message);
  }
  /** Skip blanks and the comment styles in `styles` ('#', '//', '/*'). */
  skipBlank(styles: readonly string[]): void {
    for (;;) {
      const c = this.peek();
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') {
        this.next();
      } else if ((c === '#' && styles.includes('#')) || (this.startsWith('//') && styles.includes('//'))) {
        while (!this.done && this.peek() !== '\n') this.next();
      } else if (this.startsWith('/*') && styles.includes('/*')) {
        const at = this.here();
        const end = this.text.indexOf('*/', this.pos + 2);
        if (end < 0) this.fail('comment /* is never closed', at);
        while (this.pos < end + 2) this.next();
      } else return;
    }
  }
  describeNext(): string {
    if (this.done) return 'end of file';
    const c = this.peek();
    return /[\x21-\x7e]/.test(c) ? `'${c}'` : `character U+${c.codePointAt(0)!.toString(16).padStart(4, '0')}`;
  }
}
