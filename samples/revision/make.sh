#!/bin/sh
# Rebuild the container root filesystems of the two sample revision trees with the real mksquashfs
# (squashfs-tools), reproducibly (fixed times, root-owned, no xattrs):
#   a/app/root.squashfs   demo app 1.0
#   b/app/root.squashfs   demo app 1.1
# Everything else in a/ and b/ is committed as is. Run from anywhere: sh samples/revision/make.sh
# Kept tiny on purpose: the images hold no shell or libc, so they serve format, signing, diff and export
# demos but do not boot (validate --boot needs a runnable root filesystem, e.g. test/runtime-fixture.ts).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build() { # tree, version
  root="$work/root-$2"
  mkdir -p "$root/etc" "$root/usr/bin"
  printf 'NAME="pvmigrate demo app"\nVERSION_ID=%s\n' "$2" >"$root/etc/os-release"
  printf '#!/bin/sh\necho "demo app %s"\nexec sleep infinity\n' "$2" >"$root/usr/bin/app"
  chmod 0755 "$root/usr/bin/app"
  mksquashfs "$root" "$here/$1/app/root.squashfs" -noappend -quiet -comp gzip -all-root -no-xattrs \
    -mkfs-time 1700000000 -all-time 1700000000 >/dev/null
}

build a 1.0
build b 1.1
ls -l "$here"/a/app/root.squashfs "$here"/b/app/root.squashfs
