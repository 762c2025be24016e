"""Exec a command (virtiofsd) in a private mount namespace in which DIR is a
recursively READ-ONLY copy of the host's "/", with kernel module trees
grafted in at /usr/lib/modules/<release>.

Why: the C virtiofsd has no read-only option, and a guest running tests as
root could remount its root rw; making the source itself read-only on the
host side is the only thing a guest cannot undo.  The module trees are
grafted here (not in the guest) so the guest's mount table stays plain.

usage: python rofs.py DIR [--modules RELEASE=PATH ...] -- CMD ARGS...
Run as a script (not via preexec_fn): the runner is multi-threaded.
"""
import ctypes
import os
import sys

CLONE_NEWNS = 0x20000
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
AT_FDCWD, AT_RECURSIVE = -100, 0x8000
MOUNT_ATTR_RDONLY = 1
SYS_mount_setattr = 442  # x86_64

libc = ctypes.CDLL(None, use_errno=True)


def check(ret, what):
    if ret != 0:
        e = ctypes.get_errno()
        sys.exit(f"rofs: {what}: {os.strerror(e)}")


def mount(src, dst, fstype=None, flags=0, data=None):
    enc = lambda s: s.encode() if s is not None else None
    check(libc.mount(enc(src), enc(dst), enc(fstype), ctypes.c_ulong(flags), enc(data)),
          f"mount {src} {dst}")


def main(argv):
    sep = argv.index("--")
    target, opts, cmd = argv[0], argv[1:sep], argv[sep + 1:]
    modules = [m.split("=", 1) for o, m in zip(opts[::2], opts[1::2]) if o == "--modules"]

    check(libc.unshare(CLONE_NEWNS), "unshare")
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing leaks back to the host
    os.makedirs(target, exist_ok=True)
    mount("/", target, None, MS_BIND | MS_REC)

    if modules:
        mods = os.path.join(target, "usr/lib/modules")
        if not os.path.isdir(mods):
            # No /usr/lib/modules on this host (e.g. a container): overlay
            # /usr/lib with a tmpfs upper layer so the directory can exist.
            scratch = target + ".ovl"
            os.makedirs(scratch, exist_ok=True)
            mount("tmpfs", scratch, "tmpfs")
            for d in ("upper/modules", "work"):
                os.makedirs(os.path.join(scratch, d))
            mount("overlay", os.path.join(target, "usr/lib"), "overlay", 0,
                  f"lowerdir=/usr/lib,upperdir={scratch}/upper,workdir={scratch}/work")
        else:
            mount("tmpfs", mods, "tmpfs")
        for rel, path in modules:
            os.makedirs(os.path.join(mods, rel), exist_ok=True)
            mount(path, os.path.join(mods, rel), None, MS_BIND | MS_REC)

    # struct mount_attr {u64 attr_set, attr_clr, propagation, userns_fd}
    attr = (ctypes.c_uint64 * 4)(MOUNT_ATTR_RDONLY, 0, 0, 0)
    check(libc.syscall(SYS_mount_setattr, AT_FDCWD, target.encode(), AT_RECURSIVE,
                       ctypes.byref(attr), ctypes.sizeof(attr)), "mount_setattr ro")
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
