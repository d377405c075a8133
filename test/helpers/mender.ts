/** The `inspect --json` / toJSON() document of a Mender artifact, as the mender-*.test.ts files read it. */
export interface MenderJson {
  formatVersion: number;
  name: string;
  signed: boolean;
  verified: boolean | null;
  provides: Record<string, string>;
  depends: Record<string, string[]>;
  scripts: string[];
  payloads: {
    type: string | null;
    files: { name: string; size: number; sha256: string; compression: string }[];
    provides: Record<string, string>;
    depends: Record<string, unknown>;
    clearsProvides: string[];
    metaData: unknown;
  }[];
}
