#!/usr/bin/env bash
# Rebuilds the sample artifacts `npm start` converts, with the real tools (mkfs.ext4, mender-artifact, rauc,
# openssl cms, cpio) through samples/rootfs/build.sh. Needs root (the rootfs holds device nodes).
#   release-1.0.{mender,raucb,swu}   one release in each format (rauc and swu signed by ca.pem's signer)
#   release-1.1.mender               the next release: one line of the app's configuration differs
#   initrd.img                       the busybox initramfs given to convert as the runtime initrd
#   ca.pem                           the sample CA: keyring for the .raucb, CMS CA for the .swu
# Only public material is kept: the CA and signer private keys are thrown away with the build directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bash "$here/../rootfs/build.sh" "$work/r" 1.0 "mender rauc swu"
cp "$work/r/release.mender" "$here/release-1.0.mender"
cp "$work/r/release.raucb" "$here/release-1.0.raucb"
cp "$work/r/release.swu" "$here/release-1.0.swu"
cp "$work/r/initrd.img" "$here/initrd.img"
cp "$work/r/keys/ca.pem" "$here/ca.pem"
bash "$here/../rootfs/build.sh" "$work/r" 1.1 mender
cp "$work/r/release.mender" "$here/release-1.1.mender"
ls -l "$here"
