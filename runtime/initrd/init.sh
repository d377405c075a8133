#!/bin/sh
# /init of the pvmigrate initrd (dash, with busybox applets). Kernel-specific glue around the runtime, which stays the
# same program as `pvmigrate run`:
#   stage 1: mount /proc /sys /dev, load the kernel modules listed in /lib/modules/pv-load-order, then move
#            everything onto a tmpfs and switch_root to it, because pivot_root (the namespace driver's
#            container start) refuses to work when the root is the initramfs itself.
#   stage 2: mount the storage disk on /storage, then run the runtime as the child of this shell, which
#            stays PID 1 and reaps every orphan through `wait` (as runtime/pv-init does). Exit status 3 of
#            the runtime ("reboot") becomes a real reboot through the kernel after sync; anything else
#            powers the machine off. A kernel panic (init exiting) never happens on purpose.
#   update inbox: each <storage>/inbox/*.tgz (a pvmigrate export) is installed through the control socket
#            as locals/<name> and run once, after it is renamed *.tgz.taken so the next boot leaves it.
# Settings come from the kernel command line (name=value words without a dot reach init's environment):
#   PV_STORAGE_DEV (default /dev/vda), PV_STORAGE_FSTYPE (ext4), PV_DRIVER (namespace), and the runtime's own
#   PV_UPDATER_COMMIT_DELAY, PV_UPDATER_GOALS_TIMEOUT, PV_SECUREBOOT_MODE, PV_SECUREBOOT_CHECKSUM.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
RUNTIME=/usr/lib/pvmigrate/runtime.mjs
CTRL=/pv/pv-ctrl

say() { echo "pv-init: $*"; }

halt_machine() {
  # $1: reboot | poweroff. Everything durable is on /storage: flush it and unmount before the kernel acts.
  sync
  umount /storage 2>/dev/null || mount -o remount,ro /storage 2>/dev/null
  sync
  say "$1"
  "$1" -f
  # Only reached if the kernel refused; the sysrq path needs no cooperation from anything.
  echo 1 > /proc/sys/kernel/sysrq
  if [ "$1" = reboot ]; then echo b > /proc/sysrq-trigger; else echo o > /proc/sysrq-trigger; fi
  while :; do sleep 60; done
}

stage1() {
  mount -t proc -o nosuid,nodev,noexec proc /proc
  mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
  mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev
  while read -r ko; do
    insmod "/lib/modules/$ko" || say "insmod $ko failed"
  done < /lib/modules/pv-load-order
  mkdir -p /newroot
  mount -t tmpfs -o mode=0755 pv-root /newroot
  # Moved, not copied, so the initrd's content is never held twice; /bin (busybox) goes last and the
  # remaining steps run the moved busybox, as /usr (util-linux) is gone by then.
  for d in /*; do
    case "$d" in /newroot | /proc | /sys | /dev | /bin | /init) ;; *) mv "$d" /newroot/ ;; esac
  done
  # switch_root checks that /init is still here (proof that / is the initramfs), so copy this one.
  cp /init /newroot/init
  mv /bin /newroot/
  bb=/newroot/bin/busybox
  for m in proc sys dev; do $bb mkdir -p "/newroot/$m" && $bb mount --move "/$m" "/newroot/$m"; done
  exec $bb switch_root /newroot /init stage2
}

wait_for_device() {
  i=0
  while [ ! -b "$1" ]; do
    i=$((i + 1))
    [ "$i" -gt 100 ] && return 1
    sleep 0.1
  done
}

inbox() {
  # Wait for the control socket (the runtime creates it before starting its containers).
  i=0
  while [ ! -S "$CTRL" ]; do
    i=$((i + 1))
    [ "$i" -gt 600 ] && { say "inbox: no control socket after 60 s"; return 1; }
    sleep 0.1
  done
  for f in /storage/inbox/*.tgz; do
    [ -f "$f" ] || continue
    name=$(basename "$f" .tgz)
    mv "$f" "$f.taken" && sync
    say "inbox: installing $f as locals/$name"
    node "$RUNTIME" pvcontrol --socket "$CTRL" steps install "$f.taken" "locals/$name" &&
      node "$RUNTIME" pvcontrol --socket "$CTRL" commands run "locals/$name" &&
      say "inbox: locals/$name is running"
  done
}

stage2() {
  mkdir -p /run /tmp /storage /pv
  mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /run
  mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp
  dev=${PV_STORAGE_DEV:-/dev/vda}
  wait_for_device "$dev" || { say "storage device $dev did not appear"; halt_machine poweroff; }
  mount -t "${PV_STORAGE_FSTYPE:-ext4}" "$dev" /storage || { say "cannot mount $dev on /storage"; halt_machine poweroff; }
  say "storage $dev mounted on /storage"
  PV_INIT=1
  export PV_INIT
  runtime=
  stopping=
  trap 'stopping=1; [ -n "$runtime" ] && kill -TERM "$runtime" 2>/dev/null' TERM INT
  [ -d /storage/inbox ] && inbox &
  # Memory settings of runtime/node-settings.ts: flat RSS over many update cycles.
  MALLOC_ARENA_MAX=2 node --optimize-for-size "$RUNTIME" run --storage /storage --ctrl "$CTRL" --driver "${PV_DRIVER:-namespace}" --verbose &
  runtime=$!
  status=0
  # `wait` returns early on a trapped signal, and reaps orphans re-parented to this PID 1 meanwhile.
  while kill -0 "$runtime" 2>/dev/null; do
    wait "$runtime"
    status=$?
  done
  say "runtime exited with status $status"
  if [ "$status" -eq 3 ] && [ -z "$stopping" ]; then halt_machine reboot; fi
  halt_machine poweroff
}

if [ "$1" = stage2 ]; then stage2; else stage1; fi
