"""The two upstream FIXTUREs of mount_setattr/mount_setattr_test.c, rebuilt
under a scratch directory, plus the small readers the tests share.

Upstream mounts straight over /tmp and /mnt. Here both live under a private
tmpfs mounted on a scratch directory (BASE/tmp, BASE/mnt), so the host's /tmp
and /mnt are never covered; `Tree("/mnt/A")` gives BASE/mnt/A, so the tests
keep upstream's paths. Everything else (mount flags, options, order, the rbind
of /tmp into /mnt/A/AA, devpts stacked on /tmp/B/BB after the rbind) is
upstream's.

Layout (tmpfs* = tmpfs "testing", MS_NOATIME|MS_NODEV, "size=100000,mode=700"):

    /tmp            tmpfs*            (+ target1/, target2/)
    /tmp/B          tmpfs*
    /tmp/B/BB       tmpfs*, then devpts (RELATIME|NOEXEC|RDONLY) on top
    /mnt            tmpfs*            (size=256m for the idmapped fixture)
    /mnt/A          tmpfs*
    /mnt/A/AA       rbind of /tmp     (so /mnt/A/AA/B, /mnt/A/AA/B/BB: tmpfs*)
    /mnt/B          ramfs (NOATIME|NODEV|NOSUID), with the directory BB
    /mnt/A/AA/data  a file; /mnt/A/AA/symlink -> /mnt/A/AA/data
"""
import errno
import os
import shutil
import subprocess

import pytest

from helpers import loop
from helpers import sys as k
from helpers import uapi
from helpers.mounts import mountinfo

TMPFS_FLAGS = uapi.MS_NOATIME | uapi.MS_NODEV
TMPFS_OPTS = "size=100000,mode=700"

# The four mounts a recursive mount_setattr on /mnt/A walks ("the 4 paths").
FOUR = ("/mnt/A", "/mnt/A/AA", "/mnt/A/AA/B", "/mnt/A/AA/B/BB")

# --- what a mount's flags look like: statvfs f_flag bits as names -------------
ST_NAMES = {
    uapi.ST_RDONLY: "ro",
    uapi.ST_NOSUID: "nosuid",
    uapi.ST_NODEV: "nodev",
    uapi.ST_NOEXEC: "noexec",
    uapi.ST_SYNCHRONOUS: "sync",
    uapi.ST_MANDLOCK: "mand",
    uapi.ST_NOATIME: "noatime",
    uapi.ST_NODIRATIME: "nodiratime",
    uapi.ST_RELATIME: "relatime",
    uapi.ST_NOSYMFOLLOW: "nosymfollow",
}
_ST_KNOWN = sum(ST_NAMES)


def mnt_flags(path):
    """The per-mount flags of `path` (upstream read_mnt_flags()), as names.
    Strictatime has no statvfs bit: it shows as neither noatime nor relatime."""
    flag = os.statvfs(path).f_flag
    assert not flag & ~_ST_KNOWN, f"{path}: unknown statvfs f_flag bits {flag & ~_ST_KNOWN:#x}"
    return frozenset(name for bit, name in ST_NAMES.items() if flag & bit)


def is_shared(path):
    """upstream is_shared_mount(), but matching the mount by id, not by mount point."""
    mnt_id = k.mnt_id_old(path)
    for entry in mountinfo():
        if entry.mnt_id == mnt_id:
            return any(opt.startswith("shared:") for opt in entry.optional)
    raise AssertionError(f"{path}: mount {mnt_id} is not in /proc/self/mountinfo")


def is_mount_root(dfd, path=""):
    """STATX_ATTR_MOUNT_ROOT of dfd/path (path "" means dfd itself)."""
    flags = uapi.AT_EMPTY_PATH if path == "" else 0
    stx = k.statx(dfd, path, flags, 0)
    assert stx.stx_attributes_mask & uapi.STATX_ATTR_MOUNT_ROOT, \
        "statx does not report STATX_ATTR_MOUNT_ROOT: the answer would be vacuous"
    return bool(stx.stx_attributes & uapi.STATX_ATTR_MOUNT_ROOT)


def setattr_path(path, flags=uapi.AT_RECURSIVE, **attr):
    """mount_setattr(-1, path, flags, &{attr}, sizeof) as upstream calls it."""
    return k.mount_setattr(-1, path, flags, k.mount_attr(**attr))


def setattr_fd(fd, flags=uapi.AT_EMPTY_PATH, **attr):
    return k.mount_setattr(fd, "", flags, k.mount_attr(**attr))


# --- the trees -------------------------------------------------------------------
class Tree:
    """Maps upstream's absolute paths into the scratch tree: tree("/mnt/A")."""

    def __init__(self, base):
        self.base = base

    def __call__(self, path):
        assert path.startswith("/"), path
        return self.base + path

    @property
    def four(self):
        return [self(p) for p in FOUR]

    def flags(self, paths=FOUR):
        return {p: mnt_flags(self(p)) for p in paths}


def _create_root_owned_file(path):
    """upstream: mknod(path, S_IFREG | 0644, 0) then chown(path, 0, 0)."""
    os.mknod(path, 0o644 | 0o100000)
    os.chown(path, 0, 0)


def build_tree(base, hidden_files=False, mnt_size="100000"):
    """The FIXTURE_SETUP tree (see the module docstring). hidden_files: the
    idmapped fixture's /tmp/B/b and /tmp/B/BB/b, created before the tmpfs
    mounts that cover them."""
    k.mount("tmpfs", base, "tmpfs", 0, "mode=755")
    t = Tree(base)
    os.mkdir(t("/tmp"))
    os.mkdir(t("/mnt"))

    k.mount("testing", t("/tmp"), "tmpfs", TMPFS_FLAGS, TMPFS_OPTS)
    os.mkdir(t("/tmp/B"))
    if hidden_files:
        _create_root_owned_file(t("/tmp/B/b"))
    k.mount("testing", t("/tmp/B"), "tmpfs", TMPFS_FLAGS, TMPFS_OPTS)
    os.mkdir(t("/tmp/B/BB"))
    if hidden_files:
        _create_root_owned_file(t("/tmp/B/BB/b"))
    os.mkdir(t("/tmp/target1"))
    os.mkdir(t("/tmp/target2"))
    k.mount("testing", t("/tmp/B/BB"), "tmpfs", TMPFS_FLAGS, TMPFS_OPTS)

    k.mount("testing", t("/mnt"), "tmpfs", TMPFS_FLAGS, f"size={mnt_size},mode=700")
    os.mkdir(t("/mnt/A"))
    k.mount("testing", t("/mnt/A"), "tmpfs", TMPFS_FLAGS, TMPFS_OPTS)
    os.mkdir(t("/mnt/A/AA"))
    k.mount(t("/tmp"), t("/mnt/A/AA"), None, uapi.MS_BIND | uapi.MS_REC, None)

    os.mkdir(t("/mnt/B"))
    k.mount("testing", t("/mnt/B"), "ramfs", uapi.MS_NOATIME | uapi.MS_NODEV | uapi.MS_NOSUID, None)
    os.mkdir(t("/mnt/B/BB"))

    k.mount("testing", t("/tmp/B/BB"), "devpts",
            uapi.MS_RELATIME | uapi.MS_NOEXEC | uapi.MS_RDONLY, None)

    fd = os.open(t("/mnt/A/AA/data"), os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o777)
    os.close(fd)
    os.symlink(t("/mnt/A/AA/data"), t("/mnt/A/AA/symlink"))
    return t


# --- ext4 on a loop device (the idmapped fixture's /mnt/D) ------------------------


def require_ext4_tools():
    """SKIP naming the missing piece; upstream has no SKIP and FAILs instead."""
    if shutil.which("mkfs.ext4") is None:
        pytest.skip("needs mkfs.ext4 (e2fsprogs) in PATH to build the ext4 image")
    loop.need()


def mount_ext4_image(tree, defer):
    """upstream: 2 GiB sparse /mnt/C/ext4.img, `mkfs.ext4 -q`, then
    `mount -o loop -t ext4 /mnt/C/ext4.img /mnt/D/`."""
    require_ext4_tools()
    os.mkdir(tree("/mnt/C"))
    os.mkdir(tree("/mnt/D"))
    image = tree("/mnt/C/ext4.img")
    with open(image, "wb") as f:
        f.truncate(2 << 30)
    mkfs = subprocess.run(["mkfs.ext4", "-q", "-F", image], capture_output=True, text=True)
    assert mkfs.returncode == 0, f"mkfs.ext4 failed ({mkfs.returncode}): {mkfs.stderr}"
    n = loop.attach(image)
    dev = f"/dev/loop{n}"
    # Detached as soon as mounted (run_now): on a device in use the kernel
    # turns LOOP_CLR_FD into autoclear, so the loop device goes away with the
    # ext4 mount, i.e. with the test's mount namespace.
    detach = defer(loop.detach, n)
    try:
        k.mount(dev, tree("/mnt/D"), "ext4", 0, None)
    except OSError as e:
        if e.errno == errno.ENODEV:  # mount(2): no such filesystem type
            pytest.skip("needs ext4 (CONFIG_EXT4_FS): mount -t ext4 says ENODEV")
        raise
    detach.run_now()
    mnt_id = k.mnt_id_old(tree("/mnt/D"))
    fstype = {e.mnt_id: e.fstype for e in mountinfo()}.get(mnt_id)
    assert fstype == "ext4", f"/mnt/D is {fstype!r} after mounting {dev}"
    return tree("/mnt/D")
