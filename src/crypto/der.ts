/**
 * A minimal, bounds-checked DER (and BER indefinite-length) reader: enough of X.690 to walk CMS and X.509
 * structures. Every length is checked against its enclosing element, so corrupt input ends in a DerError
 * instead of a wrong read.
 */
export class DerError extends Error {}

export interface Tlv {
  /** Identifier octet (class, constructed bit, tag number < 31). */
  tag: number;
  /** The whole element, header included (what signatures and name comparisons use). */
  raw: Buffer;
  /** The contents octets. */
  value: Buffer;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8String: 0x0c,
  SEQUENCE: 0x30,
  SET: 0x31,
  UTCTime: 0x17,
  GeneralizedTime: 0x18,
} as const;

/** Context-specific tag [n], constructed or primitive. */
export const ctx = (n: number, constructed = true): number => (constructed ? 0xa0 : 0x80) | n;

/** Nesting of indefinite-length elements we follow before calling the input hostile. */
const MAX_BER_DEPTH = 32;

/**
 * Read one element at `pos` of `buf`, which must lie entirely inside `buf`. Besides DER this accepts BER's
 * indefinite length on constructed elements (what `openssl cms -stream` writes), as OpenSSL's d2i does.
 */
export function readTlv(buf: Buffer, pos = 0, depth = 0): Tlv {
  if (pos + 2 > buf.length) throw new DerError(`element header at ${pos} runs past the end`);
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-byte tag at ${pos} is not used by CMS or X.509`);
  let len = buf[pos + 1]!;
  let hdr = 2;
  if (len === 0x80) {
    if (!(tag & 0x20)) throw new DerError(`indefinite length on a primitive element at ${pos}`);
    if (depth >= MAX_BER_DEPTH) throw new DerError(`indefinite-length elements nested deeper than ${MAX_BER_DEPTH}`);
    let p = pos + 2;
    while (!(buf[p] === 0 && buf[p + 1] === 0)) {
      if (p + 2 > buf.length) throw new DerError(`indefinite-length element at ${pos} has no end-of-contents`);
      p += readTlv(buf, p, depth + 1).raw.length;
    }
    return { tag, raw: buf.subarray(pos, p + 2), value: buf.subarray(pos + 2, p) };
  }
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n > 4) throw new DerError(`length of ${n} octets at ${pos} is too large`);
    if (pos + 2 + n > buf.length) throw new DerError(`length octets at ${pos} run past the end`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos + 2 + i]!;
    hdr += n;
  }
  const end = pos + hdr + len;
  if (end > buf.length) throw new DerError(`element at ${pos} declares ${len} bytes, only ${buf.length - pos - hdr} remain`);
  return { tag, raw: buf.subarray(pos, end), value: buf.subarray(pos + hdr, end) };
}

/** The elements of a constructed value, in order. */
export function children(el: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let pos = 0;
  while (pos < el.value.length) {
    const c = readTlv(el.value, pos);
    out.push(c);
    pos += c.raw.length;
  }
  return out;
}

/** Parse a whole buffer as exactly one element. */
export function parseDer(buf: Buffer): Tlv {
  const el = readTlv(buf, 0);
  if (el.raw.length !== buf.length) throw new DerError(`${buf.length - el.raw.length} trailing bytes after the element`);
  return el;
}

export function expectTag(el: Tlv | undefined, tag: number, what: string): Tlv {
  if (!el) throw new DerError(`${what} is missing`);
  if (el.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, found 0x${el.tag.toString(16)}`);
  return el;
}

/** Dotted form of an OBJECT IDENTIFIER's contents. */
export function oidString(el: Tlv): string {
  const v = el.value;
  if (el.tag !== TAG.OID || v.length === 0) throw new DerError('expected an OBJECT IDENTIFIER');
  const parts: number[] = [];
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    n = n * 128 + (v[i]! & 0x7f);
    if (!(v[i]! & 0x80)) {
      if (parts.length === 0) parts.push(n < 80 ? Math.floor(n / 40) : 2, n < 80 ? n % 40 : n - 80);
      else parts.push(n);
      n = 0;
    }
  }
  return parts.join('.');
}

/** DER encoding of one element, for the one structure we must build (the KDF's ECC-CMS-SharedInfo). */
export function encodeTlv(tag: number, value: Buffer): Buffer {
  const len = value.length;
  let hdr: Buffer;
  if (len < 0x80) hdr = Buffer.from([tag, len]);
  else {
    const bytes: number[] = [];
    for (let l = len; l > 0; l = Math.floor(l / 256)) bytes.unshift(l & 0xff);
    hdr = Buffer.from([tag, 0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([hdr, value]);
}

/** Decode UTCTime / GeneralizedTime. */
export function decodeTime(el: Tlv): Date {
  const s = el.value.toString('latin1');
  const m = el.tag === TAG.UTCTime ? /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s) : /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s);
  if (!m) throw new DerError(`unsupported time '${s}'`);
  let year = Number(m[1]);
  if (el.tag === TAG.UTCTime) year += year < 50 ? 2000 : 1900;
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}
