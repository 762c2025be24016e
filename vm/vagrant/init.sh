#!/bin/busybox sh
# initrd init of a Vagrant machine: the cloud kernels build virtio_blk and
# virtio_net as modules, so load them (in dependency order, from /mods),
# mount the box's root read-only and hand over to its systemd.
B=/bin/busybox
fail() { echo "mntns-vagrant-initrd: FATAL: $*"; exec $B sh; }
$B mkdir -p /proc /sys /dev /newroot
$B mount -t proc proc /proc
$B mount -t sysfs sysfs /sys
$B mount -t devtmpfs devtmpfs /dev
for m in $($B cat /mods/order); do $B insmod /mods/$m || fail "insmod $m"; done
ROOT=LABEL=root
for w in $($B cat /proc/cmdline); do case $w in root=*) ROOT=${w#root=} ;; esac; done
i=0
until DEV=$($B findfs "$ROOT" 2>/dev/null); do
    i=$((i + 1)); [ $i -gt 300 ] && fail "no root device $ROOT after 30 s"
    $B sleep 0.1
done
$B mount -o ro "$DEV" /newroot || fail "mount $DEV"
$B umount /proc /sys
$B mount --move /dev /newroot/dev
exec $B switch_root /newroot /sbin/init
