#!/bin/busybox sh
# Guest init.  Stage 1 runs from the busybox initramfs: mount the host's /
# (virtiofs tag "root", read-only) at /newroot, prepare writable tmpfs and
# the results share under it, then switch into it -- always trying the
# nullfs-era sequence first, because whether it works IS a conformance fact:
#     chdir(new_root); pivot_root(".", "."); umount2(".", MNT_DETACH)
# Falls back to the classic switch_root way (MS_MOVE + chroot).
# Stage 2 (same file, copied to /run) writes boot.json, runs the tests and
# writes exit_status LAST, then powers off.
B=/bin/busybox
say() { echo "mntns-init: $*"; }
fatal() { say "FATAL: $*"; $B sync; $B poweroff -f; }

# JSON string escaping for error messages.
jstr() { printf '%s' "$1" | $B tr '\n' ' ' | $B sed 's/\\/\\\\/g; s/"/\\"/g'; }
jstep() {  # jstep RC MESSAGE
    if [ "$1" = 0 ]; then printf '{"ok": true, "error": null}'
    else printf '{"ok": false, "error": "%s"}' "$(jstr "$2")"; fi
}

if [ "$1" != stage2 ]; then
    $B mkdir -p /proc /sys /dev /newroot /tmp
    $B mount -t proc proc /proc
    $B mount -t sysfs sysfs /sys
    $B mount -t devtmpfs devtmpfs /dev
    for w in $($B cat /proc/cmdline 2>/dev/null); do
        case $w in
            mntns.results=*) R=${w#*=} ;;
            mntns.python=*) PY=${w#*=} ;;
            mntns.keep=*) KEEP=${w#*=} ;;
            init=*) USER_INIT=${w#*=} ;;
        esac
    done
    export R PY USER_INIT
    [ -n "$R" ] && [ -n "$PY" ] || fatal "mntns.results= / mntns.python= missing from the command line"
    $B mount -t virtiofs -o ro root /newroot || fatal "virtiofs mount of the root share failed"
    # mntns.keep=P1:P2: paths of the project, its venv or python that lie
    # under /tmp, /var/tmp, /run or /dev/shm, which get a tmpfs below: hold them aside
    # and put them back on top, so a clone in /tmp runs as one in /root.
    n=0
    for p in $(echo "$KEEP" | $B tr ':' ' '); do
        n=$((n + 1))
        $B mkdir -p /keep/$n
        $B mount --bind "/newroot$p" /keep/$n || fatal "cannot see $p in the root share"
    done
    # Writable places on top of the read-only root.
    for d in tmp var/tmp run; do
        $B mount -t tmpfs -o mode=1777 tmpfs /newroot/$d || fatal "tmpfs on /$d failed"
    done
    for d in proc sys dev; do $B mount --move /$d /newroot/$d; done
    $B mkdir -p /newroot/dev/pts /newroot/dev/shm
    $B mount -t devpts -o newinstance,ptmxmode=0666 devpts /newroot/dev/pts
    $B mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm
    n=0
    for p in $(echo "$KEEP" | $B tr ':' ' '); do
        n=$((n + 1))
        $B mkdir -p "/newroot$p"
        $B mount --move /keep/$n "/newroot$p" || fatal "cannot put $p back over the tmpfs"
    done
    $B mount -t cgroup2 cgroup2 /newroot/sys/fs/cgroup 2>/dev/null
    $B mkdir -p "/newroot$R" 2>/dev/null  # only needed if it lives under /tmp
    $B mount -t virtiofs results "/newroot$R" || fatal "virtiofs mount of the results share failed"
    $B cp /init /newroot/run/mntns-init.sh

    cd /newroot 2>/tmp/err; CHDIR_RC=$?; CHDIR_ERR=$($B cat /tmp/err)
    PIVOT_ERR=$($B pivot_root . . 2>&1); PIVOT_RC=$?
    export CHDIR_RC CHDIR_ERR PIVOT_RC PIVOT_ERR
    if [ "$PIVOT_RC" = 0 ]; then
        # We now run in the host's root, so its python can do the exact
        # umount2(".", MNT_DETACH) (busybox umount would realpath "." to "/");
        # -I -S: no site, no .pth files: it needs ctypes only, and starts faster.
        UMOUNT_ERR=$("$PY" -I -S -c 'import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).umount2(b".", 2):
    sys.exit(os.strerror(ctypes.get_errno()))' 2>&1); UMOUNT_RC=$?
        export UMOUNT_RC UMOUNT_ERR METHOD=pivot_root
        exec /bin/busybox sh /run/mntns-init.sh stage2
    fi
    export UMOUNT_RC=1 UMOUNT_ERR="not attempted: pivot_root failed" METHOD=move_chroot
    $B mount --move . / || fatal "mount --move . / failed"
    exec $B chroot . /bin/busybox sh /run/mntns-init.sh stage2
    fatal "chroot failed"
fi

# ---- stage 2: in the host's (read-only) root ----
cd /
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# The host may have no kmod (e.g. a container): give the guest busybox's
# module tools and point the kernel's request_module() at them.
# ("command -v" won't do: busybox ash reports its own applets as found.)
if [ ! -x /sbin/modprobe ] && [ ! -x /usr/sbin/modprobe ]; then
    $B mkdir -p /run/mntns/bin
    for t in modprobe insmod rmmod lsmod modinfo depmod; do
        $B ln -s /bin/busybox /run/mntns/bin/$t
    done
    export PATH=/run/mntns/bin:$PATH
    echo /run/mntns/bin/modprobe > /proc/sys/kernel/modprobe
fi

# The nullfs boot sequence worked only if all three steps did.
if [ "$CHDIR_RC$PIVOT_RC$UMOUNT_RC" = 000 ]; then NULLFS=true; else NULLFS=false; fi
{
    printf '{"nullfs_pivot_root": %s, "steps": {' $NULLFS
    printf '"chdir": %s, ' "$(jstep "$CHDIR_RC" "$CHDIR_ERR")"
    printf '"pivot_root": %s, ' "$(jstep "$PIVOT_RC" "$PIVOT_ERR")"
    printf '"umount2": %s}, ' "$(jstep "$UMOUNT_RC" "$UMOUNT_ERR")"
    printf '"method": "%s", "kernel": "%s"}\n' "$METHOD" "$($B uname -r)"
} > "$R/boot.json"
say "switched root via $METHOD (pivot_root rc=$PIVOT_RC)"

# init= on the command line names the "real init" like any initramfs would.
[ -n "$USER_INIT" ] && exec "$USER_INIT"

# What `kmod static-nodes` does on a normal boot: device nodes for modules
# that register one (loop-control, fuse, ...), so the first open of the node
# loads the module, as tests expect of a real system.
DEVNAME=/lib/modules/$($B uname -r)/modules.devname
if [ -r "$DEVNAME" ]; then
    $B grep -v '^#' "$DEVNAME" | while read -r _mod node dev; do
        [ -e "/dev/$node" ] && continue
        $B mkdir -p "/dev/$($B dirname "$node")"
        majmin=${dev#?}
        $B mknod "/dev/$node" "${dev%"$majmin"}" "${majmin%:*}" "${majmin#*:}"
    done
fi

say "running tests"
$B sh "$R/guest.sh" > "$R/pytest.log" 2>&1
rc=$?
$B sync
echo "$rc" > "$R/exit_status.tmp" && $B mv "$R/exit_status.tmp" "$R/exit_status"
$B sync
say "tests finished, exit status $rc"
$B poweroff -f
