#!/bin/sh
# Rebuild the demo Mender artifacts in this directory with the real tools (mke2fs from e2fsprogs, mender-artifact):
# a tiny ext4 root filesystem, release 1.0 and 1.1, as a fleet on Mender would ship them.
#   demo-1.0.mender, demo-1.1.mender   rootfs-image, gzip, device type pvmigrate-demo, unsigned
# Run from anywhere: sh samples/mender/make.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Fixed timestamps and ids so a rebuild gives the same images.
export E2FSPROGS_FAKE_TIME=1700000000

build() { # version, app.conf content
  v=$1
  root="$work/root-$v"
  mkdir -p "$root/etc/init.d" "$root/bin" "$root/sbin" "$root/usr/bin" "$root/var/lib/app" "$root/boot" \
    "$root/lib/modules/6.1.0-demo/kernel"
  printf 'NAME="pvmigrate demo"\nVERSION_ID=%s\n' "$v" >"$root/etc/os-release"
  printf 'demo-device\n' >"$root/etc/hostname"
  printf '%s\n' "$2" >"$root/etc/app.conf"
  printf '#!/bin/sh\necho "demo app %s"\n' "$v" >"$root/usr/bin/app"
  printf '#!/bin/sh\n/usr/bin/app\n' >"$root/etc/init.d/S90app"
  chmod 0755 "$root/usr/bin/app" "$root/etc/init.d/S90app"
  # Placeholders where a BSP lives, so the converter finds a kernel and modules (not bootable: no real
  # kernel or shell, to keep the samples a few KB; samples/rootfs/build.sh makes a bootable release).
  { head -c 514 /dev/zero; printf 'HdrS demo kernel placeholder'; } >"$root/boot/vmlinuz-6.1.0-demo"
  printf '' >"$root/lib/modules/6.1.0-demo/modules.dep"
  ln -s busybox "$root/bin/sh"
  ln -s ../bin/busybox "$root/sbin/init"
  find "$root" -exec touch -h -d @1700000000 {} +
  mke2fs -q -F -t ext4 -b 1024 -N 48 -O ^has_journal -U 6f1b1a2e-5c1d-4d8e-9a10-00000000000${v##*.} \
    -E hash_seed=6f1b1a2e-5c1d-4d8e-9a10-000000000000,root_owner=0:0 -L demo-root -d "$root" "$work/rootfs-$v.ext4" 512 >/dev/null
  mender-artifact write rootfs-image -f "$work/rootfs-$v.ext4" -n "demo-$v" -t pvmigrate-demo \
    --software-version "$v" -o "$here/demo-$v.mender" >"$work/log" 2>&1 || { cat "$work/log"; exit 1; }
}

build 1.0 'greeting=hello'
build 1.1 'greeting=hello again'
ls -l "$here"/*.mender
