"""Twin of tools/testing/selftests/filesystems/empty_mntns/nullfs_atime_test.c:
the nullfs root inode shared by every empty mount namespace is S_NOATIME, so
reading it never changes its atime (fs/nullfs.c)."""
import os

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import uapi
from helpers.proc import in_child

FILE = "filesystems/empty_mntns/nullfs_atime_test.c"


@pytest.mark.root
@pytest.mark.requires("unshare_empty_mntns")
@upstream(FILE, "global.empty_mntns_root_atime")
def test_empty_mntns_root_atime():
    """A watcher in one empty mntns stats "/", a reader in another empty
    mntns reads "/" to the end, the watcher's atime (sec and nsec) is unchanged.

    Upstream runs watcher and reader as two children synchronised by pipes;
    here the test process is the watcher and the reader runs in between in
    a child, which is the same sequence."""
    k.unshare(uapi.UNSHARE_EMPTY_MNTNS)
    before = os.stat("/")

    def reader():
        k.unshare(uapi.UNSHARE_EMPTY_MNTNS)
        with os.scandir("/") as it:
            return [e.name for e in it]
    assert in_child(reader) == []
    after = os.stat("/")
    assert (after.st_atime_ns, after.st_ino, after.st_dev) == \
        (before.st_atime_ns, before.st_ino, before.st_dev)
