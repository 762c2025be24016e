"""Twins of mount_setattr/mount_setattr_test.c, FIXTURE(mount_setattr_idmapped) (10 cases).

Real root in a private mount namespace (the harness's), on the tree of
mount_setattr_tree.py with the files /tmp/B/b and /tmp/B/BB/b hidden under
tmpfs mounts, and an ext4 filesystem on a loop device at /mnt/D.

Differences from upstream:
- Upstream builds the ext4 image for all ten cases and FAILs when mkfs.ext4,
  loop devices or ext4 are missing. Here only the six cases that use /mnt/D
  request it (`ext4_mnt_d`), and a missing piece SKIPs naming it; the four
  that never touch /mnt/D run anyway.
- Where upstream asserts only "fails", the twin asserts the errno the kernel
  gives (fs/namespace.c build_mount_kattr, can_idmap_mount), and checks that
  nothing changed.
- invalid_fd_initial_userns opens /proc/self/ns/user (checked to be the
  initial user namespace by its inode) instead of /proc/1/ns/user, which a
  sandbox or hidepid may deny even to root.
- idmap_mount_tree_invalid looks for the hidden files through a still-open
  tree fd, at the paths where they would be (upstream uses a closed fd and
  paths that do not exist in the clone, so its checks cannot fail).
"""
import errno
import os

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.ns import get_userns_fd
from helpers.proc import in_child

from suites.mount_setattr.mount_setattr_tree import is_mount_root, setattr_fd, setattr_path

FILE = "mount_setattr/mount_setattr_test.c"
pytestmark = [pytest.mark.root]

IDMAP = uapi.MOUNT_ATTR_IDMAP
CLONE_FLAGS = (uapi.AT_EMPTY_PATH | uapi.AT_NO_AUTOMOUNT | uapi.AT_SYMLINK_NOFOLLOW
               | uapi.OPEN_TREE_CLOEXEC | uapi.OPEN_TREE_CLONE)
ATTACHED_FLAGS = CLONE_FLAGS & ~uapi.OPEN_TREE_CLONE


def owner(dfd, path="."):
    st = os.stat(path, dir_fd=dfd) if dfd is not None else os.stat(path)
    return st.st_uid, st.st_gid


def open_tree_attr_idmap(fd, userns_fd):
    """open_tree_attr(fd, "", AT_EMPTY_PATH, {IDMAP, userns_fd}) without
    OPEN_TREE_CLONE: must not bypass mount_setattr's rules."""
    return k.open_tree_attr(fd, "", uapi.AT_EMPTY_PATH,
                            k.mount_attr(attr_set=IDMAP, userns_fd=userns_fd))


# --- invalid userns_fd ---------------------------------------------------------------
@upstream(FILE, "mount_setattr_idmapped.invalid_fd_negative")
def test_invalid_fd_negative(idmapped_tree):
    """userns_fd = -EBADF (above INT_MAX as a u64) is EINVAL."""
    with raises_errno(errno.EINVAL):
        setattr_path("/", 0, attr_set=IDMAP, userns_fd=-errno.EBADF)


@upstream(FILE, "mount_setattr_idmapped.invalid_fd_large")
def test_invalid_fd_large(idmapped_tree):
    """userns_fd = INT64_MAX is EINVAL."""
    with raises_errno(errno.EINVAL):
        setattr_path("/", 0, attr_set=IDMAP, userns_fd=2**63 - 1)


@upstream(FILE, "mount_setattr_idmapped.invalid_fd_closed")
def test_invalid_fd_closed(idmapped_tree):
    """A closed userns_fd is EBADF."""
    fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    os.close(fd)
    with raises_errno(errno.EBADF):
        setattr_path("/", 0, attr_set=IDMAP, userns_fd=fd)


@upstream(FILE, "mount_setattr_idmapped.invalid_fd_initial_userns")
def test_invalid_fd_initial_userns(ext4_mnt_d):
    """Idmapping a detached mount with the initial user namespace is EPERM."""
    tree_fd = k.open_tree(-errno.EBADF, ext4_mnt_d, CLONE_FLAGS & ~uapi.AT_EMPTY_PATH)
    userns = os.open("/proc/self/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    assert os.fstat(userns).st_ino == uapi.PROC_USER_INIT_INO, \
        "the test process is not in the initial user namespace"
    with raises_errno(errno.EPERM):
        setattr_fd(tree_fd, attr_set=IDMAP, userns_fd=userns)
    assert owner(tree_fd) == (0, 0)
    os.close(userns)
    os.close(tree_fd)


# --- attached vs detached ---------------------------------------------------------------
@upstream(FILE, "mount_setattr_idmapped.attached_mount_inside_current_mount_namespace")
@pytest.mark.requires("open_tree_attr")
def test_attached_mount_inside_current_mount_namespace(ext4_mnt_d):
    """An attached mount of our own namespace cannot be idmapped (EINVAL),
    neither by mount_setattr nor by open_tree_attr without OPEN_TREE_CLONE."""
    fd = k.open_tree(-errno.EBADF, ext4_mnt_d, ATTACHED_FLAGS)
    userns = get_userns_fd(0, 10000, 10000)
    with raises_errno(errno.EINVAL):
        setattr_fd(fd, attr_set=IDMAP, userns_fd=userns)
    with raises_errno(errno.EINVAL):
        open_tree_attr_idmap(fd, userns)
    assert owner(None, ext4_mnt_d) == (0, 0)
    os.close(userns)
    os.close(fd)


@upstream(FILE, "mount_setattr_idmapped.attached_mount_outside_current_mount_namespace")
@pytest.mark.requires("open_tree_attr")
def test_attached_mount_outside_current_mount_namespace(ext4_mnt_d):
    """Nor an attached mount of a namespace the caller has left (EINVAL)."""
    fd = k.open_tree(-errno.EBADF, ext4_mnt_d, ATTACHED_FLAGS)

    def child():
        k.unshare(uapi.CLONE_NEWNS)
        userns = get_userns_fd(0, 10000, 10000)
        with raises_errno(errno.EINVAL):
            setattr_fd(fd, attr_set=IDMAP, userns_fd=userns)
        with raises_errno(errno.EINVAL):
            open_tree_attr_idmap(fd, userns)
    in_child(child)
    assert owner(None, ext4_mnt_d) == (0, 0)
    os.close(fd)


@upstream(FILE, "mount_setattr_idmapped.detached_mount_inside_current_mount_namespace")
def test_detached_mount_inside_current_mount_namespace(ext4_mnt_d):
    """A detached clone can be idmapped; its files then show the mapped ids."""
    fd = k.open_tree(-errno.EBADF, ext4_mnt_d, CLONE_FLAGS)
    userns = get_userns_fd(0, 10000, 10000)
    assert setattr_fd(fd, attr_set=IDMAP, userns_fd=userns) == 0
    assert owner(fd) == (10000, 10000)
    os.close(userns)
    os.close(fd)


@upstream(FILE, "mount_setattr_idmapped.detached_mount_outside_current_mount_namespace")
def test_detached_mount_outside_current_mount_namespace(ext4_mnt_d):
    """Also from a process that has since moved to another mount namespace."""
    fd = k.open_tree(-errno.EBADF, ext4_mnt_d, CLONE_FLAGS)

    def child():
        k.unshare(uapi.CLONE_NEWNS)
        userns = get_userns_fd(0, 10000, 10000)
        assert setattr_fd(fd, attr_set=IDMAP, userns_fd=userns) == 0
    in_child(child)
    assert owner(fd) == (10000, 10000)
    os.close(fd)


@upstream(FILE, "mount_setattr_idmapped.change_idmapping")
@pytest.mark.requires("open_tree_attr")
def test_change_idmapping(ext4_mnt_d):
    """An idmapped detached mount cannot be idmapped again (EPERM), and
    open_tree_attr without OPEN_TREE_CLONE is no way around that."""
    assert owner(None, ext4_mnt_d) == (0, 0)
    fd = k.open_tree(-errno.EBADF, ext4_mnt_d, CLONE_FLAGS)
    userns = get_userns_fd(0, 10000, 10000)
    assert setattr_fd(fd, attr_set=IDMAP, userns_fd=userns) == 0
    os.close(userns)
    assert owner(fd) == (10000, 10000)

    userns = get_userns_fd(0, 20000, 10000)
    with raises_errno(errno.EPERM):
        setattr_fd(fd, attr_set=IDMAP, userns_fd=userns)
    with raises_errno(errno.EPERM):
        open_tree_attr_idmap(fd, userns)
    assert owner(fd) == (10000, 10000)
    os.close(userns)
    os.close(fd)


@upstream(FILE, "mount_setattr_idmapped.idmap_mount_tree_invalid")
def test_idmap_mount_tree_invalid(idmapped_tree):
    """Idmapping a tree whose root is ramfs (no FS_ALLOW_IDMAP) is EINVAL, and
    the files hidden under its submounts stay hidden.

    Upstream checks the files through the tree fd after closing it, at paths
    ("B/b") that do not exist in a clone of /mnt/A, so those checks cannot
    fail. Here the fd stays open, the paths are the real ones (AA/B/b,
    AA/B/BB/b), their directories are checked to be mount roots, and a
    non-recursive clone shows the files do exist underneath."""
    t = idmapped_tree
    for hidden in ("/tmp/B/b", "/tmp/B/BB/b"):
        with raises_errno(errno.ENOENT):
            os.stat(t(hidden))
    for top, name in (("/tmp", "B/b"), ("/tmp/B", "BB/b")):
        shallow = k.open_tree(-errno.EBADF, t(top), CLONE_FLAGS & ~uapi.AT_EMPTY_PATH)
        assert owner(shallow, name) == (0, 0), f"{top}/{name} missing under its mount"
        os.close(shallow)

    k.mount("testing", t("/mnt/A"), "ramfs", uapi.MS_NOATIME | uapi.MS_NODEV,
            "size=100000,mode=700")
    os.mkdir(t("/mnt/A/AA"))
    k.mount(t("/tmp"), t("/mnt/A/AA"), None, uapi.MS_BIND | uapi.MS_REC, None)
    tree_fd = k.open_tree(-errno.EBADF, t("/mnt/A"), CLONE_FLAGS | uapi.AT_RECURSIVE)
    userns = get_userns_fd(0, 10000, 10000)
    with raises_errno(errno.EINVAL):
        setattr_fd(tree_fd, attr_set=IDMAP, userns_fd=userns)
    os.close(userns)

    for hidden in ("/tmp/B/b", "/tmp/B/BB/b"):
        with raises_errno(errno.ENOENT):
            os.stat(t(hidden))
    for mnt in ("AA/B", "AA/B/BB"):
        assert is_mount_root(tree_fd, mnt), mnt
    for hidden in ("AA/B/b", "AA/B/BB/b"):
        with raises_errno(errno.ENOENT):
            os.stat(hidden, dir_fd=tree_fd)
    os.close(tree_fd)
    k.umount2(t("/mnt/A"), uapi.MNT_DETACH)
