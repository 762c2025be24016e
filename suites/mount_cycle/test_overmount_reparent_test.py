"""Twin of filesystems/mount_cycle/overmount_reparent_test.c (fs/namespace.c
do_lock_mount, fs/pnode.c propagate_umount).

A mount left unmounted by umount propagation (its overmount was reparented and
then unmounted too) must not be followed as a MOVE_MOUNT_BENEATH target: ENOENT.
"""
import errno
import os
import time

import pytest

from harness.upstream import upstream
from helpers import uapi
from helpers import sys as k
from helpers.errors import raises_errno
from helpers.mounts import detached_fs, shared_pair, tmpfs
from helpers.ns import setup_userns

FILE = "filesystems/mount_cycle/overmount_reparent_test.c"


@pytest.mark.userns
@pytest.mark.requires("move_mount_beneath")
@upstream(FILE, "overmount_reparent.dead_overmount_holder_not_followed")
def test_beneath_dead_overmount_holder_is_enoent(base):
    setup_userns()
    # Unlike upstream, a/ and b/ are made on a tmpfs over the scratch dir:
    # upstream's teardown leaves them in the host's /tmp.
    tmpfs(base)
    a, b = f"{base}/a", f"{base}/b"
    os.mkdir(a), os.mkdir(b)
    shared_pair(a, b)                                     # b: a peer of a
    os.mkdir(f"{a}/mp")
    tmpfs(f"{a}/mp")                                      # propagates X_b onto b/mp
    fd = os.open(f"{b}/mp", os.O_PATH)                    # X_b
    k.mount(None, f"{b}/mp", None, uapi.MS_PRIVATE)
    tmpfs(f"{b}/mp")                                      # overmount of X_b
    k.umount2(f"{a}/mp", uapi.MNT_DETACH)
    k.umount2(f"{b}/mp", uapi.MNT_DETACH)
    time.sleep(0.1)
    mfd = detached_fs("tmpfs")
    with raises_errno(errno.ENOENT):
        k.move_mount(mfd, "", fd, "", uapi.MOVE_MOUNT_F_EMPTY_PATH | uapi.MOVE_MOUNT_T_EMPTY_PATH
                     | uapi.MOVE_MOUNT_BENEATH)
    k.umount2(b, uapi.MNT_DETACH)
    k.umount2(a, uapi.MNT_DETACH)
    # The O_PATH fd still holds the unmounted X_b, under which 7.2.11+
    # keeps the dead overmount's place; let go of both before the scratch
    # directory is removed.
    os.close(mfd)
    os.close(fd)
