import { sha256Of } from '../../src/crypto/sha256-stream.ts';
import { InvalidInputError } from '../../src/errors.ts';
import type { TarStreamEntry } from '../../src/fs/tar/stream.ts';

/**
 * `header.tar*` / `header-augment.tar*`: header-info, state scripts, then per payload `headers/NNNN/type-info`,
 * `meta-data` (and v2 `files`), read with the rules mender-artifact applies.
 */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export interface HeaderInfo {
  name: string;
  /** One per payload; null for a bootstrap (empty) payload. */
  payloadTypes: (string | null)[];
  /** v3 artifact_provides; v2: artifact_name. */
  provides: Record<string, string>;
  /** v3 artifact_depends; v2: device_type from device_types_compatible. */
  depends: Record<string, string[]>;
}

export interface PayloadHeader {
  /** What type-info says (mender-artifact 3.9–4.3 write "" for rootfs-image). */
  typeInfoType?: string | null;
  provides?: Record<string, string>;
  depends?: Record<string, string | string[]>;
  clearsProvides?: string[];
  /** null when absent or empty. */
  metaData: JsonObject | null;
  /** v2 `headers/NNNN/files`. */
  files?: string[];
}

/** A state script of the header: reported (Pantavisor has no equivalent) and offered as a payload for review. */
export interface StateScript {
  name: string;
  size: number;
  sha256: string;
}

export interface Header {
  info: HeaderInfo;
  scripts: StateScript[];
  payloads: PayloadHeader[];
  warnings: string[];
}

const MAX_HEADER_FILE = 1 << 20;
const SCRIPT = /^([A-Za-z]+)_(Enter|Leave|Error)_[0-9][0-9](_\S+)?$/;
const ARTIFACT_STATES = new Set(['ArtifactInstall', 'ArtifactReboot', 'ArtifactCommit', 'ArtifactRollback', 'ArtifactRollbackReboot', 'ArtifactFailure']);

class HeaderReader {
  constructor(
    readonly file: string,
    readonly member: string,
  ) {}

  fail(what: string): never {
    throw new InvalidInputError('mender-header', `${this.member}: ${what}`, { file: this.file });
  }

  async json(e: TarStreamEntry): Promise<Json | undefined> {
    if (e.member.size > MAX_HEADER_FILE) this.fail(`${e.member.path} is ${e.member.size} bytes, more than a header file may hold (${MAX_HEADER_FILE})`);
    const parts: Buffer[] = [];
    for await (const c of e.body()) parts.push(c);
    const text = Buffer.concat(parts).toString('utf8');
    if (text.trim() === '') return undefined;
    try {
      return JSON.parse(text) as Json;
    } catch (err) {
      this.fail(`${e.member.path} is not valid JSON (${(err as Error).message})`);
    }
  }

  object(v: Json | undefined, what: string): JsonObject {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(`${what} must be a JSON object`);
    return v;
  }

  onlyKeys(o: JsonObject, allowed: string[], what: string): void {
    for (const k of Object.keys(o)) if (!allowed.includes(k)) this.fail(`${what} has the unknown key '${k}'`);
  }

  strings(v: Json | undefined, what: string): string[] {
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) this.fail(`${what} must be an array of strings`);
    return v as string[];
  }

  stringMap(v: Json | undefined, what: string): Record<string, string> {
    const o = this.object(v, what);
    for (const [k, x] of Object.entries(o)) if (typeof x !== 'string') this.fail(`${what}.${k} must be a string`);
    return o as Record<string, string>;
  }

  /** Names, groups and device types: printable, at most 256 bytes (mender-artifact utils/validation.go). */
  label(v: string, what: string): string {
    if (Buffer.byteLength(v) > 256 || !/^[\x20-\x7e\u00a0-\uffff]+$/u.test(v)) this.fail(`${what} '${v.slice(0, 40)}' must be 1–256 printable characters`);
    return v;
  }

  payloadTypes(v: Json | undefined, key: string): (string | null)[] {
    if (!Array.isArray(v) || v.length === 0) this.fail(`header-info ${key} must be a non-empty array`);
    return v.map((p, i) => {
      const o = this.object(p, `header-info ${key}[${i}]`);
      if (o.type !== null && typeof o.type !== 'string') this.fail(`header-info ${key}[${i}].type must be a string or null`);
      return o.type === '' ? null : o.type;
    });
  }

  headerInfo(j: Json | undefined, version: 2 | 3): HeaderInfo {
    const o = this.object(j, 'header-info');
    if (version === 2) {
      this.onlyKeys(o, ['artifact_name', 'updates', 'device_types_compatible'], 'header-info');
      if (typeof o.artifact_name !== 'string') this.fail('header-info has no artifact_name');
      const name = this.label(o.artifact_name, 'artifact_name');
      const devices = this.strings(o.device_types_compatible, 'header-info device_types_compatible');
      if (devices.length === 0) this.fail("header-info lists no device type (device_types_compatible is empty)");
      return { name, payloadTypes: this.payloadTypes(o.updates, 'updates'), provides: { artifact_name: name }, depends: { device_type: devices } };
    }
    this.onlyKeys(o, ['payloads', 'artifact_provides', 'artifact_depends'], 'header-info');
    const provides = this.stringMap(o.artifact_provides, 'header-info artifact_provides');
    if (typeof provides.artifact_name !== 'string' || provides.artifact_name === '') this.fail('header-info artifact_provides has no artifact_name');
    this.label(provides.artifact_name, 'artifact_name');
    if (provides.artifact_group !== undefined) this.label(provides.artifact_group, 'artifact_group');
    const dep = this.object(o.artifact_depends, 'header-info artifact_depends');
    const depends: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(dep)) depends[k] = this.strings(v, `header-info artifact_depends.${k}`);
    if (!depends.device_type?.length) this.fail("header-info artifact_depends has no device_type (Invalid Artifact. No 'device-type' found.)");
    for (const d of depends.device_type) this.label(d, 'device type');
    return { name: provides.artifact_name, payloadTypes: this.payloadTypes(o.payloads, 'payloads'), provides, depends };
  }

  typeInfo(j: Json | undefined, version: 2 | 3, into: PayloadHeader, path: string): void {
    const o = this.object(j ?? {}, path);
    if (o.type !== undefined && o.type !== null && typeof o.type !== 'string') this.fail(`${path} type must be a string or null`);
    into.typeInfoType = o.type as string | null | undefined;
    if (version === 2) return; // the v2 reader takes nothing else from type-info
    this.onlyKeys(o, ['type', 'artifact_provides', 'artifact_depends', 'clears_artifact_provides'], path);
    if (o.artifact_provides !== undefined && o.artifact_provides !== null) into.provides = this.stringMap(o.artifact_provides, `${path} artifact_provides`);
    if (o.artifact_depends !== undefined && o.artifact_depends !== null) {
      const dep = this.object(o.artifact_depends, `${path} artifact_depends`);
      for (const [k, v] of Object.entries(dep)) if (typeof v !== 'string') this.strings(v, `${path} artifact_depends.${k}`);
      into.depends = dep as Record<string, string | string[]>;
    }
    if (o.clears_artifact_provides !== undefined && o.clears_artifact_provides !== null) into.clearsProvides = this.strings(o.clears_artifact_provides, `${path} clears_artifact_provides`);
  }
}

/**
 * Read a decoded header tar. `augment` = header-augment: no scripts, and its header-info only says which
 * payload types are overridden.
 */
export async function readHeader(entries: AsyncIterable<TarStreamEntry>, o: { file: string; member: string; version: 2 | 3; augment: boolean }): Promise<Header> {
  const r: HeaderReader = new HeaderReader(o.file, o.member);
  const warnings: string[] = [];
  let info: HeaderInfo | undefined;
  let augmentTypes: (string | null)[] = [];
  const scripts: StateScript[] = [];
  const payloads: PayloadHeader[] = [];
  let inPayloads = false;
  for await (const e of entries) {
    const path = e.member.path;
    if (e.member.type === 'dir') continue; // mender-artifact writes none; other tools may
    if (!info) {
      if (path !== 'header-info') r.fail(`the first file must be header-info, found '${path}'`);
      const j = await r.json(e);
      if (o.augment) {
        const a = r.object(j, 'header-info');
        augmentTypes = r.payloadTypes(a.payloads, 'payloads');
        info = { name: '', payloadTypes: augmentTypes, provides: {}, depends: {} };
      } else {
        info = r.headerInfo(j, o.version);
      }
      for (let i = 0; i < info.payloadTypes.length; i++) payloads.push({ metaData: null });
      continue;
    }
    if (e.member.type !== 'file') r.fail(`'${path}' is a ${e.member.type}; header entries are regular files`);
    if (path.startsWith('scripts/')) {
      if (inPayloads || o.augment) r.fail(`state script '${path}' after the payload headers`);
      const name = path.slice(8);
      const m = SCRIPT.exec(name);
      if (!m) warnings.push(`state script '${name}' does not follow <State>_<Enter|Leave|Error>_<NN>[_suffix]`);
      else if (!ARTIFACT_STATES.has(m[1])) warnings.push(`state script '${name}' is for state ${m[1]}, which runs from the device, not from an artifact`);
      scripts.push({ name, ...(await sha256Of(e.body())) });
      continue;
    }
    const m = /^headers\/(\d{4})\/([^/]+)$/.exec(path);
    if (!m) r.fail(`unexpected file '${path}' (expected header-info, scripts/* or headers/NNNN/*)`);
    inPayloads = true;
    const index = Number(m[1]);
    if (index >= payloads.length) r.fail(`'${path}' is for payload ${index}, but header-info lists ${payloads.length}`);
    const p = payloads[index];
    switch (m[2]) {
      case 'type-info':
        r.typeInfo(await r.json(e), o.version, p, path);
        break;
      case 'meta-data': {
        const j = await r.json(e);
        p.metaData = j === undefined ? null : r.object(j, `${path} (meta-data)`);
        break;
      }
      case 'files':
        if (o.version !== 2) r.fail(`'${path}' belongs to format version 2`);
        {
          const f = r.object(await r.json(e), path);
          p.files = r.strings(f.files, `${path} files`);
        }
        break;
      default:
        r.fail(`unsupported file '${path}' in a payload header`);
    }
  }
  if (!info) r.fail('it holds no header-info');
  // type-info must agree with header-info; "" is the empty-type quirk of mender-artifact 3.9–4.3 writers.
  info.payloadTypes.forEach((t, i) => {
    const ti = payloads[i].typeInfoType;
    if (o.augment || ti === undefined || ti === '' || ti === t) return;
    if (ti === null && t === null) return;
    r.fail(`headers/${String(i).padStart(4, '0')}/type-info says type '${ti}' but header-info lists '${t}'`);
  });
  return { info, scripts, payloads, warnings };
}

/** mender-artifact's augment merge: the augment overrides key by key, objects merge recursively, type clashes fail. */
export function mergeJson(orig: Json | undefined, aug: Json | undefined, what: string, file: string): Json | undefined {
  if (aug === undefined || aug === null) return orig;
  if (orig === undefined || orig === null) return aug;
  const isObj = (v: Json): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObj(orig) && isObj(aug)) {
    const out: JsonObject = { ...orig };
    for (const [k, v] of Object.entries(aug)) out[k] = mergeJson(orig[k], v, `${what}.${k}`, file) as Json;
    return out;
  }
  if (Array.isArray(orig) !== Array.isArray(aug) || typeof orig !== typeof aug) {
    throw new InvalidInputError('mender-augment', `header-augment cannot override ${what}: its type differs from the original`, { file });
  }
  return aug;
}
