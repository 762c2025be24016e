"""Twin of filesystems/mount_cycle/unmounted_tree_test.c (fs/namespace.c __do_loopback,
may_change_propagation).

Copying an *unmounted* mount recursively is refused (EINVAL) for
mount(MS_BIND|MS_REC) and open_tree(CLONE|AT_RECURSIVE): the tree hanging off
it is not walked. Copying just that mount still works, and changing the
propagation of an unmounted mount is refused (EINVAL).
"""
import errno
import os

import pytest

from harness.upstream import upstream
from helpers import uapi
from helpers import sys as k
from helpers.errors import raises_errno
from helpers.mounts import tmpfs
from helpers.ns import setup_userns
from helpers.proc import Partner
from suites.mount_cycle.cycle import fd_path

FILE = "filesystems/mount_cycle/unmounted_tree_test.c"
CLONE = uapi.OPEN_TREE_CLONE | uapi.OPEN_TREE_CLOEXEC


@pytest.fixture
def tree(base):
    setup_userns()
    tmpfs(base)
    for name in ("x", "y", "z", "s"):
        open(f"{base}/{name}", "w").close()
    return base


def assert_not_walked(fd, target):
    with raises_errno(errno.EINVAL):
        k.mount(fd_path(fd), target, None, uapi.MS_BIND | uapi.MS_REC)
    with raises_errno(errno.EINVAL):
        k.open_tree(fd, "", uapi.AT_EMPTY_PATH | uapi.AT_RECURSIVE | CLONE)


def assert_root_copied(fd, target):
    tfd = k.open_tree(fd, "", uapi.AT_EMPTY_PATH | CLONE)
    k.move_mount(tfd, "", uapi.AT_FDCWD, target, uapi.MOVE_MOUNT_F_EMPTY_PATH)
    k.umount2(target, uapi.MNT_DETACH)
    os.close(tfd)


@pytest.mark.userns
@upstream(FILE, "unmounted_tree.detached_nsfs_bind_not_walked")
def test_detached_nsfs_bind_not_walked(tree):
    x, y, z = (f"{tree}/{n}" for n in "xyz")
    k.mount("/proc/self/ns/net", x, None, uapi.MS_BIND)
    fd = os.open(x, os.O_PATH)
    k.umount2(x, uapi.MNT_DETACH)
    assert_not_walked(fd, y)
    k.mount(fd_path(fd), y, None, uapi.MS_BIND)          # the mount alone copies
    k.umount2(y, uapi.MNT_DETACH)
    assert_root_copied(fd, y)
    os.close(k.open_tree(fd, "", uapi.AT_EMPTY_PATH | uapi.OPEN_TREE_CLOEXEC))
    # mounted trees still copy recursively
    k.mount("/proc/self/ns/net", y, None, uapi.MS_BIND)
    k.mount(y, z, None, uapi.MS_BIND | uapi.MS_REC)
    os.close(k.open_tree(uapi.AT_FDCWD, y, uapi.AT_RECURSIVE | CLONE))


@pytest.mark.userns
@pytest.mark.requires("open_tree_clone_pidfs")
@upstream(FILE, "unmounted_tree.detached_pidfs_bind_not_walked")
def test_detached_pidfs_bind_not_walked(tree):
    x, y = f"{tree}/x", f"{tree}/y"
    pidfd = k.pidfd_open(os.getpid())
    tfd = k.open_tree(pidfd, "", uapi.AT_EMPTY_PATH | CLONE)
    k.move_mount(tfd, "", uapi.AT_FDCWD, x, uapi.MOVE_MOUNT_F_EMPTY_PATH)
    fd = os.open(x, os.O_PATH)
    k.umount2(x, uapi.MNT_DETACH)
    assert_not_walked(fd, y)
    assert_root_copied(fd, y)
    tfd2 = k.open_tree(pidfd, "", uapi.AT_EMPTY_PATH | CLONE)
    k.move_mount(tfd2, "", uapi.AT_FDCWD, y, uapi.MOVE_MOUNT_F_EMPTY_PATH)
    os.close(k.open_tree(uapi.AT_FDCWD, y, uapi.AT_RECURSIVE | CLONE))


def _vacant_child(chan, d):
    x, y, s = f"{d}/x", f"{d}/y", f"{d}/s"
    k.unshare(uapi.CLONE_NEWNS)
    k.mount("/proc/self/ns/net", x, None, uapi.MS_BIND)
    fd = os.open(x, os.O_PATH)
    k.mount(s, x, None, uapi.MS_BIND)
    chan.send("ready")
    chan.recv()                                        # the parent unlinked x
    with raises_errno(errno.EINVAL):
        k.open_tree(fd, "", uapi.AT_EMPTY_PATH | uapi.AT_RECURSIVE | CLONE)
    with raises_errno(errno.EINVAL):
        k.mount(fd_path(fd), y, None, uapi.MS_BIND | uapi.MS_REC)
    os.close(k.open_tree(fd, "", uapi.AT_EMPTY_PATH | CLONE))


@pytest.mark.userns
@upstream(FILE, "unmounted_tree.vacant_child_not_copied")
def test_vacant_child_not_copied(tree):
    child = Partner(_vacant_child, tree)
    assert child.recv() == "ready"
    os.unlink(f"{tree}/x")       # detaches the child's nsfs bind; the s-bind is left vacant
    child.send("go")
    child.join()


def _ordinary_child(chan, d):
    x, y = f"{d}/x", f"{d}/y"
    k.unshare(uapi.CLONE_NEWNS)
    k.mount("/proc/self/ns/net", x, None, uapi.MS_BIND)
    fd = os.open(x, os.O_RDONLY)
    k.umount2(x, uapi.MNT_DETACH)
    k.mount(fd_path(fd), y, None, uapi.MS_BIND)
    fdy = os.open(y, os.O_PATH)
    chan.send("ready")
    chan.recv()                                        # the parent unlinked y
    with raises_errno(errno.EINVAL):
        k.mount_setattr(fdy, "", uapi.AT_EMPTY_PATH, k.mount_attr(attr_set=uapi.MOUNT_ATTR_NOSUID))


@pytest.mark.userns
@upstream(FILE, "unmounted_tree.copy_of_detached_bind_is_ordinary")
def test_copy_of_detached_bind_is_ordinary(tree):
    child = Partner(_ordinary_child, tree)
    assert child.recv() == "ready"
    os.unlink(f"{tree}/y")       # unmounts the copy in the child's namespace
    child.send("go")
    child.join()


@pytest.mark.userns
@upstream(FILE, "unmounted_tree.detached_tree_setattr_refused")
def test_dissolved_tree_setattr_refused(tree):
    a = f"{tree}/a"
    os.mkdir(a)
    tmpfs(a)
    os.mkdir(f"{a}/b")
    tmpfs(f"{a}/b")
    tfd = k.open_tree(uapi.AT_FDCWD, tree, uapi.AT_RECURSIVE | CLONE)
    rec = uapi.AT_EMPTY_PATH | uapi.AT_RECURSIVE
    k.mount_setattr(tfd, "", rec, k.mount_attr(propagation=uapi.MS_SHARED))
    k.mount_setattr(tfd, "", rec, k.mount_attr(propagation=uapi.MS_PRIVATE))
    fd = k.open_tree(tfd, "", uapi.AT_EMPTY_PATH | uapi.OPEN_TREE_CLOEXEC)
    os.close(tfd)                                      # dissolves the tree
    with raises_errno(errno.EINVAL):
        k.mount_setattr(fd, "", rec, k.mount_attr(propagation=uapi.MS_SHARED))
    with raises_errno(errno.EINVAL):
        k.mount_setattr(fd, "", uapi.AT_EMPTY_PATH, k.mount_attr(propagation=uapi.MS_PRIVATE))
