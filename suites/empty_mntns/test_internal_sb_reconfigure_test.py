"""Twin of tools/testing/selftests/filesystems/empty_mntns/internal_sb_reconfigure_test.c:
the nullfs superblock under an empty mount namespace cannot be reconfigured
from userspace, and the root never turns read-only (fs/fs_context.c
fs_context_for_reconfigure refuses SB_NOUSER; fs/namespace.c do_umount)."""
import errno
import os

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.ns import enter_userns

FILE = "filesystems/empty_mntns/internal_sb_reconfigure_test.c"


@pytest.mark.requires("unshare_empty_mntns")
@pytest.mark.userns
@upstream(FILE, "internal_sb_reconfigure.nullfs_root")
def test_nullfs_root():
    """In a user ns + empty mntns: fspick("/") EINVAL, MS_REMOUNT|MS_RDONLY
    EINVAL, umount2("/", 0) EPERM, and statfs("/") is not ST_RDONLY.

    Stricter than upstream, which accepts any errno from umount2("/", 0):
    the kernel takes the "umount of own root -> remount read-only" path,
    which needs CAP_SYS_ADMIN over the superblock's user namespace
    (init_user_ns for nullfs), so inside a user namespace it is EPERM."""
    enter_userns()
    k.unshare(uapi.UNSHARE_EMPTY_MNTNS)
    with raises_errno(errno.EINVAL):
        k.fspick(uapi.AT_FDCWD, "/", 0)
    with raises_errno(errno.EINVAL):
        k.mount(None, "/", None, uapi.MS_REMOUNT | uapi.MS_RDONLY)
    with raises_errno(errno.EPERM):
        k.umount2("/", 0)
    assert not os.statvfs("/").f_flag & uapi.ST_RDONLY
