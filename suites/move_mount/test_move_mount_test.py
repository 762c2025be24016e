"""Twins of tools/testing/selftests/filesystems/move_mount/move_mount_test.c.

MOVE_MOUNT_BENEATH onto "/" (a clone of the root slid between the namespace's
nullfs root and the old root) and the MNT_LOCKED transfer/containment rules
of attach_recursive_mnt (fs/namespace.c).

Difference from upstream, on purpose: upstream creates /mnt_dir and
/chroot_dir in the real "/" of the machine. Here the fixture first builds a
private root: a tmpfs over /tmp (in the test's own mount namespace, so the
host's /tmp is untouched), a tmpfs "newroot" inside it, pivot_root into that
and detach the old root (keeping a bind of /proc, which setup_userns
needs). "/" is then a tmpfs sitting directly on the
namespace root (nullfs on 7.x), which is what upstream's "/" is on a
machine booted without an initramfs, and every directory the cases create
lives in that throw-away tmpfs. The two cases that create nothing also run
on the stack the machine booted with ("booted": in a VM runner guest, "/"
sits on the initramfs' rootfs, which sits on nullfs), in the test's copy of
the namespace.
"""
import errno
import os

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.mounts import detached_fs, make_rprivate, statmount, tmpfs
from helpers.ns import setup_userns

FILE = "filesystems/move_mount/move_mount_test.c"

BENEATH = uapi.MOVE_MOUNT_F_EMPTY_PATH | uapi.MOVE_MOUNT_BENEATH


def private_root():
    """pivot_root into a fresh tmpfs (see the module docstring)."""
    tmpfs("/tmp")
    os.mkdir("/tmp/newroot")
    tmpfs("/tmp/newroot")
    os.mkdir("/tmp/newroot/old")
    os.mkdir("/tmp/newroot/proc")
    k.pivot_root("/tmp/newroot", "/tmp/newroot/old")
    os.chdir("/")
    k.mount("/old/proc", "/proc", None, uapi.MS_BIND | uapi.MS_REC)
    k.umount2("/old", uapi.MNT_DETACH)
    os.rmdir("/old")


@pytest.fixture
def orig_root_id(request):
    """FIXTURE_SETUP(move_mount): unshare(CLONE_NEWNS), rprivate, id of "/";
    then the private root, unless the case asks for the booted stack."""
    k.unshare(uapi.CLONE_NEWNS)
    make_rprivate("/")
    if getattr(request, "param", "private_root") == "private_root":
        private_root()
    root_id = k.mnt_id_unique("/")
    assert root_id != 0
    return root_id


def clone_root(recursive=False):
    """open_tree("/", OPEN_TREE_CLONE) -> (fd, unique id of the clone)."""
    flags = uapi.OPEN_TREE_CLONE | uapi.OPEN_TREE_CLOEXEC | (uapi.AT_RECURSIVE if recursive else 0)
    fd = k.open_tree(uapi.AT_FDCWD, "/", flags)
    clone_id = k.mnt_id_unique(fd=fd)
    assert clone_id != 0
    return fd, clone_id


def beneath_root(fd):
    """fchdir into the clone and move it beneath "/"."""
    os.fchdir(fd)
    k.move_mount(fd, "", uapi.AT_FDCWD, "/", BENEATH)
    os.close(fd)


def setup_locked_overmount():
    """Upstream setup_locked_overmount(): tmpfs A on /mnt_dir, tmpfs B on top,
    then a user+mount namespace in which both are MNT_LOCKED."""
    k.unshare(uapi.CLONE_NEWNS)
    make_rprivate("/")
    os.mkdir("/mnt_dir")
    tmpfs("/mnt_dir")
    tmpfs("/mnt_dir")
    setup_userns()
    with raises_errno(errno.EINVAL):
        k.umount2("/mnt_dir", uapi.MNT_DETACH)


@pytest.mark.root
@pytest.mark.requires("move_mount_beneath", "move_mount_beneath_root")
@upstream(FILE, "move_mount.beneath_rootfs_success")
@pytest.mark.parametrize("orig_root_id", ["private_root", "booted"], indirect=True)
def test_beneath_rootfs_success(orig_root_id):
    """A clone of "/" moved beneath "/" becomes the root after chroot(".")."""
    fd, clone_id = clone_root()
    assert clone_id != orig_root_id
    beneath_root(fd)
    os.chroot(".")
    assert k.mnt_id_unique("/") == clone_id
    k.umount2(".", uapi.MNT_DETACH)


@pytest.mark.root
@pytest.mark.requires("move_mount_beneath", "move_mount_beneath_root")
@upstream(FILE, "move_mount.beneath_rootfs_old_root_stacked")
@pytest.mark.parametrize("orig_root_id", ["private_root", "booted"], indirect=True)
def test_beneath_rootfs_old_root_stacked(orig_root_id):
    """After BENEATH "/", the old root sits on top of the clone (its parent)."""
    fd, clone_id = clone_root()
    assert clone_id != orig_root_id
    beneath_root(fd)
    os.chroot(".")
    assert statmount(orig_root_id, uapi.STATMOUNT_MNT_BASIC).mnt_parent_id == clone_id
    k.umount2(".", uapi.MNT_DETACH)


@pytest.mark.root
@pytest.mark.requires("move_mount_beneath")
@upstream(FILE, "move_mount.beneath_rootfs_in_chroot_fail")
def test_beneath_rootfs_in_chroot_fail(orig_root_id):
    """In a chroot onto a plain directory, "/" is not a mount root: EINVAL.

    Needs no nullfs root: the EINVAL comes from the mount-root check, which
    6.5+ kernels already have."""
    os.mkdir("/chroot_dir")
    assert k.mnt_id_unique("/chroot_dir") == orig_root_id
    os.chdir("/chroot_dir")
    os.chroot(".")
    fd, clone_id = clone_root()
    assert clone_id != orig_root_id
    os.fchdir(fd)
    with raises_errno(errno.EINVAL):
        k.move_mount(fd, "", uapi.AT_FDCWD, "/", BENEATH)


@pytest.mark.root
@pytest.mark.requires("move_mount_beneath", "move_mount_beneath_root")
@upstream(FILE, "move_mount.beneath_rootfs_in_chroot_success")
def test_beneath_rootfs_in_chroot_success(orig_root_id):
    """In a chroot onto a mount root, BENEATH "/" slides the clone under it.

    Moving beneath the caller's root came with the nullfs-root series (7.0);
    6.5..6.18 refuse it in can_move_mount_beneath() (target == fs->root:
    EINVAL, seen on 6.18), so this SKIPs there on move_mount_beneath_root."""
    os.mkdir("/chroot_dir")
    tmpfs("/chroot_dir")
    chroot_id = k.mnt_id_unique("/chroot_dir")
    os.chdir("/chroot_dir")
    os.chroot(".")
    assert k.mnt_id_unique("/") == chroot_id
    fd, clone_id = clone_root()
    beneath_root(fd)
    os.chroot(".")
    assert k.mnt_id_unique("/") == clone_id
    assert statmount(chroot_id, uapi.STATMOUNT_MNT_BASIC).mnt_parent_id == clone_id
    k.umount2(".", uapi.MNT_DETACH)


@pytest.mark.root
@pytest.mark.requires("move_mount_beneath", "move_mount_beneath_root", "move_mount_beneath_locked")
@upstream(FILE, "move_mount.beneath_rootfs_locked_transfer")
def test_beneath_rootfs_locked_transfer(orig_root_id):
    """The locked root loses MNT_LOCKED once the caller's own clone is beneath it."""
    setup_userns()
    make_rprivate("/")
    fd, clone_id = clone_root(recursive=True)
    beneath_root(fd)
    os.chroot(".")
    assert k.mnt_id_unique("/") == clone_id
    k.umount2(".", uapi.MNT_DETACH)
    assert k.mnt_id_unique("/") == clone_id


@pytest.mark.root
@pytest.mark.requires("move_mount_beneath", "move_mount_beneath_root", "move_mount_beneath_locked")
@upstream(FILE, "move_mount.beneath_rootfs_locked_containment")
def test_beneath_rootfs_locked_containment(orig_root_id):
    """The clone placed beneath a locked root inherits the lock: EINVAL on umount."""
    setup_userns()
    make_rprivate("/")
    with raises_errno(errno.EINVAL):
        k.umount2("/", uapi.MNT_DETACH)
    fd, clone_id = clone_root(recursive=True)
    beneath_root(fd)
    os.chroot(".")
    assert k.mnt_id_unique("/") == clone_id
    k.umount2(".", uapi.MNT_DETACH)
    assert k.mnt_id_unique("/") == clone_id
    with raises_errno(errno.EINVAL):
        k.umount2("/", uapi.MNT_DETACH)


@pytest.mark.root
@pytest.mark.requires("move_mount_beneath", "move_mount_beneath_locked")
@upstream(FILE, "move_mount.beneath_non_rootfs_locked_transfer")
def test_beneath_non_rootfs_locked_transfer(orig_root_id):
    """A detached tmpfs moved beneath a locked overmount unlocks the overmount.

    Moving beneath a locked mount at all is new: 6.5 ... 7.0 refuse it
    (IS_MNT_LOCKED(mnt_to) -> EINVAL in can_move_mount_beneath, seen on
    6.18 and 7.0.13); the move_mount_beneath_locked probe finds it from 7.1."""
    setup_locked_overmount()
    mfd = detached_fs()
    new_id = k.mnt_id_unique(fd=mfd)
    k.move_mount(mfd, "", uapi.AT_FDCWD, "/mnt_dir", BENEATH)
    k.umount2("/mnt_dir", uapi.MNT_DETACH)
    assert k.mnt_id_unique("/mnt_dir") == new_id


@pytest.mark.root
@pytest.mark.requires("move_mount_beneath", "move_mount_beneath_locked")
@upstream(FILE, "move_mount.beneath_non_rootfs_locked_containment")
def test_beneath_non_rootfs_locked_containment(orig_root_id):
    """The mount moved beneath a locked overmount takes over its lock.

    Gated on move_mount_beneath_locked, as the transfer case."""
    setup_locked_overmount()
    mfd = detached_fs()
    new_id = k.mnt_id_unique(fd=mfd)
    k.move_mount(mfd, "", uapi.AT_FDCWD, "/mnt_dir", BENEATH)
    k.umount2("/mnt_dir", uapi.MNT_DETACH)
    assert k.mnt_id_unique("/mnt_dir") == new_id
    with raises_errno(errno.EINVAL):
        k.umount2("/mnt_dir", uapi.MNT_DETACH)
