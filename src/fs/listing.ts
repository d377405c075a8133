/**
 * One entry of `pvmigrate ls --json`: the same shape for every image kind, so listings of one tree read
 * from ext4, squashfs, vfat or tar (and the truth read back from the peer tools) compare field by field.
 */
export interface Listed {
  path: string;
  type: string;
  /** Four octal digits including setuid/setgid/sticky. */
  mode: string;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  /** Seconds since the epoch. */
  mtime: number;
  sha256?: string;
  target?: string;
  /** "major:minor" of a device. */
  rdev?: string;
  /** Name → value in base64. */
  xattrs?: Record<string, string>;
}
