/**
 * Canonical JSON exactly as gibson042/canonicaljson-go writes it (the serializer pvr uses for every state
 * and signature payload), and a parser that keeps each number's text so re-serialising never changes a
 * number through float rounding.
 */
import { InvalidInputError } from '../errors.ts';

/** A JSON number kept as its source text (canonicalised only when written). */
export class JsonNumber {
  constructor(readonly text: string) {
    if (!NUMBER_RE.test(text)) throw new InvalidInputError('json-number', `'${text}' is not a JSON number`);
  }
  toJSON(): number {
    return Number(this.text);
  }
}

export type JsonValue = null | boolean | string | number | JsonNumber | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

const NUMBER_RE = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;
const MAX_DEPTH = 256;

export function isJsonObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof JsonNumber);
}

/** A fresh object without a prototype, so keys such as `__proto__` are plain data. */
export function newJsonObject(): JsonObject {
  return Object.create(null) as JsonObject;
}

// ---------------------------------------------------------------------------------------------- numbers

// canonicaljson-go normalizeNumber, step for step: force a capital E, drop `+` and leading exponent zeros,
// locate the significant digits, then write an integer without exponent or a d.dddE±n form.
const EXP_NORMALIZER = /(?:E(?:[+]0*|(-|)0+)|e(?:[+]|(-|))0*)([0-9])/g;
const SIGNIFICANT = /^(?:0(?:\.0*|)|)([0-9.]+?)(?:0*\.?0*|)(?:E|$)/d;

export function canonicalNumber(text: string): string {
  if (!NUMBER_RE.test(text)) throw new InvalidInputError('json-number', `'${text}' is not a JSON number`);
  let s = text.replace(EXP_NORMALIZER, (_m, a: string | undefined, b: string | undefined, d: string) => `E${a ?? ''}${b ?? ''}${d}`);
  const negative = s[0] === '-';
  if (negative) s = s.slice(1);
  let exp = 0;
  let expPos = s.lastIndexOf('E');
  if (expPos === -1) expPos = s.length;
  else exp = Number.parseInt(s.slice(expPos + 1), 10);
  const m = SIGNIFICANT.exec(s);
  if (!m?.indices?.[1]) throw new InvalidInputError('json-number', `no significand in '${text}'`);
  const [sigStart, sigEnd] = m.indices[1];
  if (s[sigStart] === '0') return '0';
  const pointPos = s.indexOf('.');
  const effectivePointPos = pointPos === -1 ? expPos : pointPos;
  const significand =
    pointPos > sigStart && pointPos < sigEnd ? s.slice(sigStart, pointPos) + s.slice(pointPos + 1, sigEnd) : s.slice(sigStart, sigEnd);
  const isInt = (exp <= 0 && effectivePointPos + exp >= sigEnd) || (exp > 0 && effectivePointPos + exp + 1 >= sigEnd);
  if (effectivePointPos > 1) exp += effectivePointPos - 1;
  else if (sigStart > 0) exp -= sigStart - 1;
  const sign = negative ? '-' : '';
  if (isInt) {
    // Bounded: a huge exponent on an integer would otherwise expand to gigabytes of zeros.
    const pad = exp + 1 - significand.length;
    if (pad > 4096) throw new InvalidInputError('json-number', `number '${text.slice(0, 40)}' expands to more than 4096 digits`);
    return sign + significand + (pad > 0 ? '0'.repeat(pad) : '');
  }
  const sig = significand.length === 1 ? significand + '0' : significand;
  return `${sign}${sig[0]}.${sig.slice(1)}E${exp}`;
}

/** Go's strconv 'E' formatting of a float64, which canonicaljson-go then normalises. */
function numberText(n: number): string {
  if (!Number.isFinite(n)) throw new InvalidInputError('json-number', `${n} cannot be written as JSON`);
  return n === 0 ? '0' : n.toExponential().toUpperCase();
}

// ---------------------------------------------------------------------------------------------- strings

const HEX = '0123456789ABCDEF';

export function canonicalString(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc: string | undefined;
    if (c < 0x20 || c === 0x22 || c === 0x5c) {
      esc =
        c === 0x22 ? '\\"' : c === 0x5c ? '\\\\' : c === 0x0a ? '\\n' : c === 0x0d ? '\\r' : c === 0x09 ? '\\t' : c === 0x08 ? '\\b' : c === 0x0c ? '\\f' : `\\u00${HEX[c >> 4]}${HEX[c & 15]}`;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const next = s.charCodeAt(i + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      // A lone surrogate: canonicaljson-go keeps it as WTF-8 and writes it escaped with uppercase hex.
      esc = `\\u${c.toString(16).toUpperCase()}`;
    }
    if (esc !== undefined) {
      out += s.slice(start, i) + esc;
      start = i + 1;
    }
  }
  return out + s.slice(start) + '"';
}

/**
 * Order of Go strings (UTF-8 bytes = code points; a lone surrogate is WTF-8, i.e. its own code point).
 * JS `<` compares UTF-16 units, which differs for astral characters.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return sortUnit(a, i, x) - sortUnit(b, i, y);
  }
  return a.length - b.length;
}

// Where the two strings first differ, a unit of a surrogate pair stands for an astral code point, which sorts
// after every BMP code point; anything else sorts by its own value.
function sortUnit(s: string, i: number, c: number): number {
  if (c < 0xd800 || c > 0xdfff) return c;
  const paired =
    c <= 0xdbff ? isLow(s.charCodeAt(i + 1)) : i > 0 && s.charCodeAt(i - 1) >= 0xd800 && s.charCodeAt(i - 1) <= 0xdbff;
  return paired ? 0x10000 + c : c;
}

function isLow(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

// ---------------------------------------------------------------------------------------------- encoder

/** Canonical JSON text of a value. */
export function canonicalize(value: JsonValue): string {
  const parts: string[] = [];
  write(value, parts, 0);
  return parts.join('');
}

export function canonicalBytes(value: JsonValue): Buffer {
  return Buffer.from(canonicalize(value), 'utf8');
}

function write(v: JsonValue, out: string[], depth: number): void {
  if (depth > MAX_DEPTH) throw new InvalidInputError('json-depth', `JSON nested deeper than ${MAX_DEPTH} levels`);
  if (v === null) out.push('null');
  else if (v === true) out.push('true');
  else if (v === false) out.push('false');
  else if (typeof v === 'string') out.push(canonicalString(v));
  else if (typeof v === 'number') out.push(canonicalNumber(numberText(v)));
  else if (v instanceof JsonNumber) out.push(canonicalNumber(v.text));
  else if (Array.isArray(v)) {
    out.push('[');
    v.forEach((item, i) => {
      if (i) out.push(',');
      write(item, out, depth + 1);
    });
    out.push(']');
  } else {
    out.push('{');
    Object.keys(v)
      .sort(compareCodePoints)
      .forEach((k, i) => {
        if (i) out.push(',');
        out.push(canonicalString(k), ':');
        write(v[k] as JsonValue, out, depth + 1);
      });
    out.push('}');
  }
}

// ---------------------------------------------------------------------------------------------- parser

/** One member of the top-level object as stored: its key, the key's text between its quotes, its value's exact text. */
export interface RawPair {
  key: string;
  rawKey: string;
  raw: string;
}

export interface ParseResult {
  value: JsonValue;
  /** Top-level members in stored order with their raw value text (empty when the root is not an object). */
  pairs: RawPair[];
}

class Parser {
  pos = 0;
  constructor(
    readonly text: string,
    readonly file: string | undefined,
  ) {}

  fail(what: string): never {
    const before = this.text.slice(0, this.pos);
    const line = before.split('\n').length;
    const col = this.pos - before.lastIndexOf('\n');
    throw new InvalidInputError('json-syntax', `invalid JSON at line ${line} column ${col}: ${what}`, { file: this.file });
  }

  ws(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.pos++;
      else break;
    }
  }

  value(depth: number, pairs?: RawPair[]): JsonValue {
    if (depth > MAX_DEPTH) this.fail(`nested deeper than ${MAX_DEPTH} levels`);
    this.ws();
    const c = this.text[this.pos];
    if (c === '{') return this.object(depth, pairs);
    if (c === '[') return this.array(depth);
    if (c === '"') return this.string();
    if (c === 't') return this.literal('true', true);
    if (c === 'f') return this.literal('false', false);
    if (c === 'n') return this.literal('null', null);
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
    return this.fail(c === undefined ? 'unexpected end of input' : `unexpected character '${c}'`);
  }

  literal<T extends JsonValue>(word: string, v: T): T {
    if (!this.text.startsWith(word, this.pos)) this.fail(`expected '${word}'`);
    this.pos += word.length;
    return v;
  }

  number(): JsonNumber {
    const m = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    m.lastIndex = this.pos;
    const r = m.exec(this.text);
    if (!r || r[0] === '-' || r[0] === '') this.fail('malformed number');
    this.pos += r[0].length;
    return new JsonNumber(r[0]);
  }

  string(): string {
    const t = this.text;
    this.pos++; // opening quote
    let out = '';
    let start = this.pos;
    for (;;) {
      if (this.pos >= t.length) this.fail('unterminated string');
      const c = t.charCodeAt(this.pos);
      if (c === 0x22) {
        out += t.slice(start, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail('control character in string');
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += t.slice(start, this.pos);
      const e = t[this.pos + 1];
      const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
      if (e !== undefined && e in simple) {
        out += simple[e];
        this.pos += 2;
      } else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(t.slice(this.pos + 2, this.pos + 6))) {
        out += String.fromCharCode(Number.parseInt(t.slice(this.pos + 2, this.pos + 6), 16));
        this.pos += 6;
      } else this.fail('bad escape in string');
      start = this.pos;
    }
  }

  array(depth: number): JsonValue[] {
    this.pos++;
    const out: JsonValue[] = [];
    this.ws();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth + 1));
      this.ws();
      const c = this.text[this.pos++];
      if (c === ']') return out;
      if (c !== ',') this.fail("expected ',' or ']'");
    }
  }

  object(depth: number, pairs?: RawPair[]): JsonObject {
    this.pos++;
    const out = newJsonObject();
    this.ws();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.text[this.pos] !== '"') this.fail('expected a string key');
      const keyAt = this.pos;
      const key = this.string();
      const rawKey = this.text.slice(keyAt + 1, this.pos - 1);
      this.ws();
      if (this.text[this.pos++] !== ':') this.fail("expected ':'");
      this.ws();
      const at = this.pos;
      if (Object.prototype.hasOwnProperty.call(out, key)) this.fail(`duplicate key '${key}'`);
      out[key] = this.value(depth + 1);
      pairs?.push({ key, rawKey, raw: this.text.slice(at, this.pos) });
      this.ws();
      const c = this.text[this.pos++];
      if (c === '}') return out;
      if (c !== ',') this.fail("expected ',' or '}'");
    }
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decode strictly: canonicaljson-go refuses invalid UTF-8, and so do we. */
export function decodeUtf8(bytes: Uint8Array, file?: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new InvalidInputError('json-utf8', 'not valid UTF-8', { file });
  }
}

/** Parse JSON text (or UTF-8 bytes); duplicate keys are refused, numbers keep their text. */
export function parseJsonWithPairs(input: string | Uint8Array, file?: string): ParseResult {
  const text = typeof input === 'string' ? input : decodeUtf8(input, file);
  const p = new Parser(text, file);
  const pairs: RawPair[] = [];
  const value = p.value(0, pairs);
  p.ws();
  if (p.pos !== text.length) p.fail('trailing data after the JSON value');
  return { value, pairs };
}

export function parseJson(input: string | Uint8Array, file?: string): JsonValue {
  return parseJsonWithPairs(input, file).value;
}

/**
 * Whether the input already is the canonical serialisation of what it encodes. One trailing newline is
 * tolerated (files saved by editors and the pvtx fixtures have it); it changes neither payload rule.
 */
export function isCanonical(input: string | Uint8Array): boolean {
  const text = typeof input === 'string' ? input : decodeUtf8(input);
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  return canonicalize(parseJson(body)) === body;
}
