"""nullfs cannot be mounted, reconfigured or unmounted from userspace
(fs/nullfs.c; fs/namespace.c do_umount, can_umount): the type is not registered, every superblock is
SB_NOUSER, and the nullfs root of a namespace has no parent to detach from."""
import errno
import os

import pytest

from helpers import sys as k
from helpers import uapi
from helpers.errors import errno_of, name, raises_errno
from suites.nullfs.nullfs_util import CONTEXTS, enter_empty


@pytest.mark.root
@pytest.mark.requires("nullfs_root")
def test_fsopen_nullfs_is_enodev():
    """fsopen("nullfs"): ENODEV, on a kernel that does use nullfs: the type
    is never registered."""
    with raises_errno(errno.ENODEV):
        k.fsopen("nullfs", 0)


@pytest.mark.root
@pytest.mark.requires("nullfs_root")
def test_mount_t_nullfs_is_enodev(tmp_path):
    """mount -t nullfs: ENODEV, same reason."""
    with raises_errno(errno.ENODEV):
        k.mount("nullfs", str(tmp_path), "nullfs", 0)


@pytest.mark.requires("nullfs_root")
def test_not_in_proc_filesystems():
    """/proc/filesystems does not list nullfs."""
    with open("/proc/filesystems") as f:
        types = [line.split()[-1] for line in f if line.strip()]
    assert "tmpfs" in types
    assert "nullfs" not in types


pytestmark_empty = pytest.mark.requires("unshare_empty_mntns")


@pytestmark_empty
@pytest.mark.parametrize("context", CONTEXTS)
def test_fspick_root_is_einval(context):
    """fspick("/") of the nullfs root: EINVAL (SB_NOUSER, refused by
    fs_context_for_reconfigure)."""
    enter_empty(context)
    with raises_errno(errno.EINVAL):
        k.fspick(uapi.AT_FDCWD, "/", 0)


@pytestmark_empty
@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("flags", [
    pytest.param(uapi.MS_REMOUNT | uapi.MS_RDONLY, id="remount_ro"),
    pytest.param(uapi.MS_REMOUNT, id="remount"),
])
def test_ms_remount_root_is_einval(context, flags):
    """mount(MS_REMOUNT) on "/": EINVAL; the root stays read-write."""
    enter_empty(context)
    with raises_errno(errno.EINVAL):
        k.mount(None, "/", None, flags)
    assert not os.statvfs("/").f_flag & uapi.ST_RDONLY


@pytestmark_empty
@pytest.mark.parametrize("context", CONTEXTS)
def test_umount_detach_root_is_einval(context):
    """umount2("/", MNT_DETACH): EINVAL, the nullfs root has no parent."""
    enter_empty(context)
    with raises_errno(errno.EINVAL):
        k.umount2("/", uapi.MNT_DETACH)
    assert os.listdir("/") == []


@pytestmark_empty
@pytest.mark.parametrize("context, err", [
    pytest.param("init_userns", errno.EINVAL, marks=pytest.mark.root, id="init_userns-EINVAL"),
    pytest.param("userns", errno.EPERM, marks=pytest.mark.userns, id="userns-EPERM"),
])
def test_umount_root_never_turns_readonly(context, err):
    """umount2("/", 0) takes the "umount of own root = remount read-only"
    path: EPERM in a user namespace (the sb belongs to init_user_ns),
    EINVAL for real root (SB_NOUSER refuses the reconfigure). Either way
    "/" is still read-write afterwards."""
    enter_empty(context)
    got = errno_of(k.umount2, "/", 0)
    assert not os.statvfs("/").f_flag & uapi.ST_RDONLY, \
        f"umount2('/', 0) -> {name(got)} made the nullfs root read-only"
    assert got == err, f"umount2('/', 0): expected {name(err)}, got {name(got)}"
