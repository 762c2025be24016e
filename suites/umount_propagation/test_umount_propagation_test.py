"""Twin of tools/testing/selftests/filesystems/umount_propagation/umount_propagation_test.c
(fs/pnode.c propagate_mount_busy): a synchronous umount fails with EBUSY while a mount it would
pull out of a slave namespace through propagation is in use.

Difference from upstream: the base directory is made under a tmpfs mounted
over /tmp in the test's own mount namespace (nothing touches the host /tmp);
the child/parent byte handshake is a step-by-step peer process."""
import errno
import os

import pytest

from harness.upstream import upstream
from helpers.cleanup import scratch_dir
from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.mounts import make_rprivate, mountinfo, tmpfs
from helpers.ns import new_mntns
from helpers.proc import Peer

FILE = "filesystems/umount_propagation/umount_propagation_test.c"
STATE = {}


@pytest.fixture
def paths(defer):
    """FIXTURE_SETUP: shared tmpfs base with a tmpfs on base/victim."""
    k.unshare(uapi.CLONE_NEWNS)
    make_rprivate("/")
    tmpfs("/tmp")
    base = scratch_dir(defer, prefix="umount_propagation.")
    tmpfs(base)
    k.mount(None, base, None, uapi.MS_SHARED)
    victim = f"{base}/victim"
    os.mkdir(victim)
    tmpfs(victim)
    return base, victim


def slave_copy_beneath(base, victim):
    """Peer: slave namespace; a recursive clone of base moved beneath victim."""
    new_mntns(uapi.MS_SLAVE)
    fd = k.open_tree(uapi.AT_FDCWD, base, uapi.OPEN_TREE_CLONE | uapi.OPEN_TREE_CLOEXEC | uapi.AT_RECURSIVE)
    k.move_mount(fd, "", uapi.AT_FDCWD, victim, uapi.MOVE_MOUNT_F_EMPTY_PATH | uapi.MOVE_MOUNT_BENEATH)
    STATE["fd"] = fd
    return k.mnt_id_old(fd=fd)


def still_attached(mnt_id):
    return any(m.mnt_id == mnt_id for m in mountinfo())


def close_copy():
    os.close(STATE.pop("fd"))


@pytest.mark.root
@pytest.mark.requires("move_mount_beneath")
@upstream(FILE, "umount_propagation.busy_copy_pulled_out")
def test_busy_copy_pulled_out(paths):
    """umount2(victim, 0) is EBUSY while the slave's copy beneath it is held
    open; once the slave closes it the same umount succeeds."""
    base, victim = paths
    with Peer() as slave:
        copy = slave.run(slave_copy_beneath, base, victim)
        with raises_errno(errno.EBUSY):
            k.umount2(victim, 0)
        assert slave.run(still_attached, copy), "the slave's copy left its mount table"
        slave.run(close_copy)
        k.umount2(victim, 0)
