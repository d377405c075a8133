#!/usr/bin/env bash
# Build a realistic sample release from skel/: a busybox rootfs with a kernel, modules, firmware, an app under
# /opt started by an init script, the leftovers of Mender, RAUC and SWUpdate, hardlinks, device nodes, xattrs,
# setuid and sparse files; then rootfs.ext4 and the three artifacts made by the real tools.
#
#   build.sh OUT VERSION [formats]     formats: any of "mender rauc swu" (default all three), or "none"
#
# Writes OUT/rootfs/ (needs root: device nodes, ownership), OUT/rootfs.ext4, OUT/initrd.img, OUT/release.mender,
# OUT/release.raucb (verity) and OUT/release.swu (CMS), both signed by OUT/keys/signer.pem issued by OUT/keys/ca.pem.
# Everything in the rootfs has a fixed mtime and only /opt/sensor/etc/sensor.conf depends on VERSION,
# so two versions differ by exactly one line of the app.
# EXTRA_MB=N adds an N-MiB incompressible blob under /usr/share/sample (benchmarks grow the image with it);
# KERNEL_DEB=FILE takes the kernel and some modules from a Debian linux-image package (KERNEL_ROOT=DIR: unpacked).
set -euo pipefail
out=$1
version=$2
formats=${3:-mender rauc swu}
here=$(cd "$(dirname "$0")" && pwd)
epoch=1700000000
export SOURCE_DATE_EPOCH=$epoch E2FSPROGS_FAKE_TIME=$epoch

mkdir -p "$out"
root=$out/rootfs
rm -rf "$root"
cp -a "$here/skel" "$root"
cd "$root"
# Directories made here, not kept in skel/: git does not keep an empty directory.
mkdir -p opt/sensor/etc usr/share/mender/modules/v3
mkdir -p bin sbin usr/bin usr/sbin usr/lib/swupdate dev proc sys tmp run root var/lib/mender var/lib/rauc \
  boot/dtbs lib/modules/6.1.0-sample/kernel/drivers/net lib/firmware/brcm usr/share/sample www/swupdate
chmod 1777 tmp
chmod 0700 root

# busybox with the applet links an init system needs
cp /bin/busybox bin/busybox
for a in sh ls cat echo mount umount sleep start-stop-daemon; do ln -s busybox "bin/$a"; done
ln -s ../bin/busybox sbin/init

# Deterministic incompressible bytes, the same for every version so releases share objects.
# (openssl dies of SIGPIPE when head has enough, so pipefail is off here)
filler() { (set +o pipefail; openssl enc -aes-128-ctr -nosalt -pass "pass:pvmigrate-sample-$1" -in /dev/zero 2>/dev/null | head -c "$2"); }
# A kernel-like image (bzImage header magic at 0x202) plus a dtb, two modules and firmware.
{ head -c 514 /dev/zero; printf 'HdrS'; filler kernel 200000; } > boot/vmlinuz-6.1.0-sample
printf '\xd0\x0d\xfe\xed%s' "sample-board" > boot/dtbs/sample-board.dtb
for m in e1000e r8169; do printf 'ELF module %s\n' "$m" > "lib/modules/6.1.0-sample/kernel/drivers/net/$m.ko"; done
printf 'kernel/drivers/net/e1000e.ko:\nkernel/drivers/net/r8169.ko:\n' > lib/modules/6.1.0-sample/modules.dep
filler firmware 4096 > lib/firmware/brcm/brcmfmac43455-sdio.bin
ln lib/firmware/brcm/brcmfmac43455-sdio.bin lib/firmware/brcm/brcmfmac43455-sdio.raspberrypi,4-model-b.bin

# KERNEL_DEB=linux-image-….deb: a real Debian kernel and a subset of its modules (networking drivers) instead.
# KERNEL_ROOT=DIR: the same from an already unpacked package (dpkg -x), left as it is.
if [ -n "${KERNEL_DEB:-}" ] || [ -n "${KERNEL_ROOT:-}" ]; then
  if [ -n "${KERNEL_ROOT:-}" ]; then
    kx=$KERNEL_ROOT
  else
    kx=$out/kernel-deb
    rm -rf "$kx"
    dpkg-deb -x "$KERNEL_DEB" "$kx"
  fi
  kver=$(ls "$kx/lib/modules" | head -n 1)
  rm -f boot/vmlinuz-6.1.0-sample
  rm -rf lib/modules/6.1.0-sample
  cp "$kx/boot/vmlinuz-$kver" "boot/vmlinuz-$kver"
  mkdir -p "lib/modules/$kver/kernel/drivers/net"
  cp -a "$kx/lib/modules/$kver/kernel/drivers/net/ethernet" "lib/modules/$kver/kernel/drivers/net/"
  cp "$kx/lib/modules/$kver"/modules.* "lib/modules/$kver/"
  [ -n "${KERNEL_ROOT:-}" ] || rm -rf "$kx"
fi

# The app: its config carries the release, so releases differ by one line.
printf 'release=%s\ninterval=5\n' "$version" > opt/sensor/etc/sensor.conf
chmod 0755 opt/sensor/bin/sensord etc/init.d/S90sensor etc/init.d/rcS
chown -R 100:100 opt/sensor/etc
setfattr -n user.sensor.calibration -v 0x2a00ff opt/sensor/bin/sensord

# Updater leftovers: clients, state dirs, bootloader-env tooling.
printf '#!/bin/sh\necho mender\n' > usr/bin/mender-update
printf 'artifact_name=release-%s\n' "$version" > etc/mender/artifact_info
printf '{"inventory":1}\n' > var/lib/mender/mender-store
printf '#!/bin/sh\n# mender single-file update module\n' > usr/share/mender/modules/v3/single-file
printf '#!/bin/sh\necho rauc\n' > usr/bin/rauc
printf 'state\n' > var/lib/rauc/central.raucs
printf '#!/bin/sh\necho swupdate\n' > usr/bin/swupdate
printf '#!/bin/sh\nexec /usr/bin/swupdate -f /etc/swupdate.cfg\n' > usr/lib/swupdate/swupdate.sh
printf '<html>swupdate</html>\n' > www/swupdate/index.html
printf '#!/bin/sh\necho fw_printenv\n' > usr/bin/fw_printenv
ln usr/bin/fw_printenv usr/bin/fw_setenv
chmod 0755 usr/bin/mender-update usr/bin/rauc usr/bin/swupdate usr/lib/swupdate/swupdate.sh usr/bin/fw_printenv \
  usr/share/mender/modules/v3/single-file

# Metadata a faithful copy must keep: setuid, devices, a fifo, a sparse file, a capability xattr.
printf '#!/bin/sh\n' > usr/bin/su-helper
chmod 4755 usr/bin/su-helper
setfattr -n security.capability -v 0x0100000200200000000000000000000000000000 usr/bin/su-helper
mknod -m 0600 dev/console c 5 1
mknod -m 0666 dev/null c 1 3
mknod -m 0660 dev/mmcblk0 b 179 0
mkfifo -m 0600 run/initctl
truncate -s 8M var/lib/sparse.img
printf 'middle' | dd of=var/lib/sparse.img bs=1 seek=4194304 conv=notrunc status=none
ln etc/hostname etc/hostname.bak
if [ "${EXTRA_MB:-0}" -gt 0 ]; then
  filler blob "$((EXTRA_MB * 1048576))" > usr/share/sample/blob.bin
fi
find . -exec touch -h -d "@$epoch" {} +
cd - > /dev/null

# ext4 with fixed UUID and hash seed so the image depends only on the tree.
mb=$(( $(du -sm --apparent-size "$root" | cut -f1) * 3 / 2 + 16 ))
rm -f "$out/rootfs.ext4"
mkfs.ext4 -q -F -d "$root" -U 6f1c3c4e-7a53-4a53-9a55-5a5a5a5a5a5a -E hash_seed=6f1c3c4e-7a53-4a53-9a55-5a5a5a5a5a5b \
  -L rootfs -b 4096 -I 256 -O ^has_journal "$out/rootfs.ext4" "${mb}M" > /dev/null 2>&1

# A busybox initramfs standing in for the runtime's initrd (convert --initrd); the same bytes for every version.
ird=$out/initrd-root
rm -rf "$ird"
mkdir -p "$ird/bin" "$ird/proc" "$ird/sys" "$ird/dev"
cp /bin/busybox "$ird/bin/busybox"
ln -s busybox "$ird/bin/sh"
printf '#!/bin/sh\nmount -t proc proc /proc\nexec /bin/sh\n' > "$ird/init"
chmod 0755 "$ird/init"
find "$ird" -exec touch -h -d "@$epoch" {} +
(cd "$ird" && find . | LC_ALL=C sort | cpio -o -H newc --reproducible --quiet | gzip -n -9) > "$out/initrd.img"
rm -rf "$ird"

keys=$out/keys
mkdir -p "$keys"
if [ ! -f "$keys/signer.pem" ]; then
  # A CA (the keyring / --ca trust anchor) and a signing certificate it issued, as a fleet's PKI would have.
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=pvmigrate sample CA' \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$keys/ca.key" -out "$keys/ca.pem" 2>/dev/null
  openssl req -new -newkey rsa:2048 -nodes -subj '/CN=pvmigrate sample signer' \
    -keyout "$keys/signer.key" -out "$keys/signer.csr" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\n' > "$keys/signer.ext"
  openssl x509 -req -in "$keys/signer.csr" -CA "$keys/ca.pem" -CAkey "$keys/ca.key" -CAcreateserial -days 3650 \
    -extfile "$keys/signer.ext" -out "$keys/signer.pem" 2>/dev/null
fi

for f in $formats; do
  case $f in
  mender)
    rm -f "$out/release.mender"
    # A state script, as Mender fleets use for migrations: it becomes a review item.
    st=$out/ArtifactInstall_Leave_50_sensor
    printf '#!/bin/sh\n# keep sensor calibration across the update\ncp /data/cal /opt/sensor/etc/cal\n' > "$st"
    mender-artifact write rootfs-image -t sample-device -n "release-$version" --software-version "$version" \
      -s "$st" -f "$out/rootfs.ext4" -o "$out/release.mender" > /dev/null 2>&1
    rm -f "$st"
    ;;
  rauc)
    b=$out/rauc-bundle
    rm -rf "$b" "$out/release.raucb"
    mkdir -p "$b"
    cp "$out/rootfs.ext4" "$b/rootfs.ext4"
    printf '[update]\ncompatible=sample-device\nversion=%s\n\n[bundle]\nformat=verity\n\n[image.rootfs]\nfilename=rootfs.ext4\n' \
      "$version" > "$b/manifest.raucm"
    rauc bundle --cert="$keys/signer.pem" --key="$keys/signer.key" "$b" "$out/release.raucb" > /dev/null 2>&1
    rm -rf "$b"
    ;;
  swu)
    s=$out/swu
    rm -rf "$s" "$out/release.swu"
    mkdir -p "$s"
    gzip -n -c "$out/rootfs.ext4" > "$s/rootfs.ext4.gz"
    sum=$(sha256sum "$s/rootfs.ext4.gz" | cut -d' ' -f1)
    # A file the update drops into the app's tree, and an install script: _config and a review item.
    printf 'SENSOR_LEVEL=debug\n' > "$s/sensor.env"
    printf '#!/bin/sh\n# migrate sensor calibration\ncp /data/cal /opt/sensor/etc/cal\n' > "$s/migrate.sh"
    envsum=$(sha256sum "$s/sensor.env" | cut -d' ' -f1)
    shsum=$(sha256sum "$s/migrate.sh" | cut -d' ' -f1)
    cat > "$s/sw-description" <<EOF
software =
{
	version = "$version";
	hardware-compatibility = [ "1.0" ];
	images: (
		{
			filename = "rootfs.ext4.gz";
			device = "/dev/mmcblk0p2";
			type = "raw";
			compressed = "zlib";
			sha256 = "$sum";
		}
	);
	files: (
		{
			filename = "sensor.env";
			path = "/opt/sensor/etc/sensor.env";
			sha256 = "$envsum";
		}
	);
	scripts: (
		{
			filename = "migrate.sh";
			type = "shellscript";
			sha256 = "$shsum";
		}
	);
}
EOF
    openssl cms -sign -in "$s/sw-description" -out "$s/sw-description.sig" -signer "$keys/signer.pem" \
      -inkey "$keys/signer.key" -outform DER -nosmimecap -binary
    (cd "$s" && printf 'sw-description\nsw-description.sig\nrootfs.ext4.gz\nsensor.env\nmigrate.sh\n' | cpio -o -H crc --quiet > "$out/release.swu")
    rm -rf "$s"
    ;;
  none) ;;
  *) echo "build.sh: unknown format '$f' (mender, rauc or swu)" >&2; exit 2 ;;
  esac
done
