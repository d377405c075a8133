import type { JsonObject } from '../revision/canonical-json.ts';

/**
 * Where the source metadata lives in a revision. A key ending in /build.json is tooling metadata the runtime's
 * parser ignores (pantavisor-format §1.3 step 4), so a new version or artifact hash never forces a reboot
 * and is never mistaken for a container or a BSP object.
 */
export const SOURCE_KEY = 'pvmigrate/build.json';
export const SOURCE_SPEC = 'pvmigrate-source@1';

export type SourceFormat = 'mender' | 'rauc' | 'swupdate' | 'ext4' | 'squashfs' | 'disk' | 'tar' | 'docker' | 'oci';

export interface SourceInfo {
  format: SourceFormat;
  /** File name of the artifact (no directory: outputs must not depend on where it was read from). */
  file: string;
  sha256: string;
  size: number;
  name?: string;
  version?: string;
  /** Mender device types, RAUC compatible, SWUpdate hardware-compatibility (empty for bare images). */
  compatible: string[];
  provides?: Record<string, string>;
  /** docker/OCI image archives that came with the artifact (same zip) and became containers. */
  images?: { file: string; sha256: string; ref?: string }[];
}

export function sourceJson(info: SourceInfo): JsonObject {
  const doc: JsonObject = {
    '#spec': SOURCE_SPEC,
    compatible: [...info.compatible],
    file: info.file,
    format: info.format,
    sha256: info.sha256,
    size: info.size,
  };
  if (info.name !== undefined) doc.name = info.name;
  if (info.version !== undefined) doc.version = info.version;
  if (info.provides !== undefined) doc.provides = { ...info.provides };
  if (info.images !== undefined) doc.images = info.images.map((i) => ({ ...i }));
  return doc;
}
